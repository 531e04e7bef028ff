"""PSD on hand-made posteriors."""
import numpy as np
import pytest

from tasu.psd import psd_compress

B = 3  # blank id in a 4-unit inventory


def logp(rows):
    p = np.asarray(rows, dtype=np.float64)
    with np.errstate(divide="ignore"):  # a zero probability is -inf, as a real log-softmax can give
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


def random_batch(rng, B=40, V=9, blank=8):
    """Peaky CTC-like posteriors: runs of units and blanks, with soft tails."""
    lengths = rng.integers(0, 60, size=B)
    T = int(lengths.max())
    x = np.full((B, T, V), -9.0)
    for b in range(B):
        t = 0
        while t < T:
            u = blank if rng.random() < 0.5 else int(rng.integers(V - 1))
            d = int(rng.integers(1, 4))
            x[b, t:t + d] = rng.normal(0, 1.5, size=(min(d, T - t), V))
            x[b, t:t + d, u] += rng.uniform(0, 5)
            t += d
    x -= np.log(np.exp(x).sum(-1, keepdims=True))
    return x.astype(np.float32), lengths


def _torch_path(x, lengths, blank_id, threshold=0.5):
    """The accelerator path of psd_compress_batch, run on CPU tensors (CPU input goes through numpy)."""
    import torch

    from tasu.psd import _psd_batch_torch

    return _psd_batch_torch(torch.as_tensor(x), torch.as_tensor(lengths), blank_id, threshold)


@pytest.mark.parametrize("V", [9, 191])   # 191: hama's size, several vector widths of the softmax
@pytest.mark.parametrize("path", ["numpy", "torch"])
def test_batched_and_loop_psd_equal_the_reference_on_random_batches(path, V):
    from tasu.psd import psd_compress_batch, psd_compress_loop

    batched = psd_compress_batch if path == "numpy" else _torch_path
    rng = np.random.default_rng(0)
    blank = V - 1
    for thr in (0.3, 0.5, 0.9):
        x, lengths = random_batch(rng, V=V, blank=blank)
        out = batched(x, lengths, blank_id=blank, threshold=thr)
        assert len(out) == len(lengths)
        for b, n in enumerate(lengths):
            ref = psd_compress(x[b, :n], blank, thr)
            loop = psd_compress_loop(x[b, :n], blank, thr)
            assert out[b].shape == ref.shape == loop.shape   # the same frames kept and merged
            # float32 softmax against the float64 reference: equal to float32 rounding
            np.testing.assert_allclose(out[b], ref, rtol=0, atol=1e-6)
            np.testing.assert_allclose(loop, ref, rtol=0, atol=1e-7)
    assert sum(o.shape[0] for o in out) > 100  # the batches are not trivially empty


def test_batched_psd_rejects_bad_lengths():
    from tasu.psd import psd_compress_batch

    for batched in (psd_compress_batch, _torch_path):
        with pytest.raises(ValueError, match="do not fit"):
            batched(np.zeros((2, 5, 4)), [3, 6], blank_id=3)


def test_ctc_greedy_merges_repeats_and_drops_blanks():
    from tasu.psd import ctc_greedy

    x = logp([[.9, 0, 0, .1], [.9, 0, 0, .1], [0, 0, 0, 1], [.9, 0, 0, .1], [0, .8, 0, .2], [0, 0, 0, 1]])
    assert ctc_greedy(x, B) == [0, 0, 1]
    assert ctc_greedy(np.zeros((0, 4)), B) == []


@pytest.mark.parametrize("path", ["numpy", "torch"])
def test_batched_psd_handles_empty_and_all_blank_utterances_and_torch_input(path):
    import torch

    from tasu.psd import psd_compress_batch

    batched = psd_compress_batch if path == "numpy" else _torch_path
    rng = np.random.default_rng(1)
    x, lengths = random_batch(rng)
    lengths[1] = 0                                   # an empty utterance in the middle
    x[2, :, :] = np.log(np.full(9, 0.01 / 8))        # all blank: nothing survives
    x[2, :, 8] = np.log(0.99)
    out = batched(torch.from_numpy(x).double(), torch.tensor(lengths), blank_id=8)
    assert out[1].shape == (0, 9) and out[2].shape == (0, 9)
    for b in (0, 3):
        ref = psd_compress(x[b, :lengths[b]], 8)
        np.testing.assert_allclose(out[b], ref, rtol=0, atol=1e-7)  # float64 input: float64 maths
    assert psd_compress_batch(np.zeros((0, 4, 3), np.float32), [], blank_id=2) == []
