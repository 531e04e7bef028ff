"""PSD on hand-made posteriors."""
import numpy as np
import pytest

from tasu.psd import psd_compress

B = 3  # blank id in a 4-unit inventory


def logp(rows):
    p = np.asarray(rows, dtype=np.float64)
    return np.log(p / p.sum(1, keepdims=True)).astype(np.float32)


def test_merges_runs_and_drops_blanks():
    x = logp([[.9, .05, .0, .05],   # a
              [.8, .1, .0, .1],     # a  (same run)
              [.0, .0, .0, 1.],     # blank
              [.1, .8, .0, .1],     # b
              [.0, .0, .0, 1.],     # blank
              [.0, .0, .0, 1.]])    # blank
    y = psd_compress(x, B, threshold=0.5)
    assert y.shape == (2, 4)
    np.testing.assert_allclose(y[0], [.85, .075, 0, .075], atol=1e-5)
    np.testing.assert_allclose(y[1], [.1, .8, 0, .1], atol=1e-5)


def test_repeat_across_blank_stays_two_rows():
    x = logp([[.9, 0, 0, .1], [0, 0, 0, 1], [.9, 0, 0, .1]])
    assert psd_compress(x, B).shape[0] == 2


def test_threshold_drops_uncertain_frames():
    # argmax is unit 0 but blank mass 0.45: kept at threshold .5, dropped at .4
    x = logp([[.55, 0, 0, .45]])
    assert psd_compress(x, B, 0.5).shape[0] == 1
    assert psd_compress(x, B, 0.4).shape[0] == 0


def test_all_blank_is_empty_and_rows_sum_to_one():
    assert psd_compress(logp([[0, 0, 0, 1]] * 5), B).shape == (0, 4)
    rng = np.random.default_rng(0)
    y = psd_compress(np.log(rng.dirichlet(np.ones(4), size=50)).astype(np.float32), B)
    np.testing.assert_allclose(y.sum(1), 1, atol=1e-5)


def test_rejects_bad_shape():
    with pytest.raises(ValueError):
        psd_compress(np.zeros(5, dtype=np.float32), B)
