"""Kaldi fbank / LFR / CMVN front end (tasu.encoders.frontend)."""
from __future__ import annotations

import numpy as np
import pytest

from tasu.encoders.frontend import (
    CMVN,
    SENSEVOICE_FBANK,
    FbankConfig,
    WavFrontend,
    apply_lfr,
    fbank,
    mel_banks,
    mel_scale,
    num_frames,
    read_am_mvn,
    write_am_mvn,
)


def _wave(n: int = 16000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    return (0.05 * rng.standard_normal(n) + 0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def _knf(wave: np.ndarray, cfg: FbankConfig) -> np.ndarray:
    knf = pytest.importorskip("kaldi_native_fbank")
    o = knf.FbankOptions()
    o.frame_opts.dither = 0
    o.frame_opts.window_type = cfg.window
    o.frame_opts.snip_edges = cfg.snip_edges
    o.frame_opts.samp_freq = cfg.sample_rate
    o.mel_opts.num_bins = cfg.num_bins
    o.use_energy = cfg.use_energy
    o.energy_floor = cfg.energy_floor
    f = knf.OnlineFbank(o)
    f.accept_waveform(cfg.sample_rate, wave.tolist())
    f.input_finished()
    return np.stack([f.get_frame(i) for i in range(f.num_frames_ready)])


@pytest.mark.parametrize("cfg", [
    FbankConfig(), SENSEVOICE_FBANK, FbankConfig(window="hanning", snip_edges=False),
    FbankConfig(num_bins=40, use_energy=True, energy_floor=1.0), FbankConfig(window="blackman"),
])
def test_fbank_matches_kaldi_native_fbank(cfg: FbankConfig) -> None:
    wave = _wave(7321) * 32768
    ref = _knf(wave, cfg)
    ours = fbank(wave, cfg)
    assert ours.shape == ref.shape == (num_frames(len(wave), cfg), cfg.num_bins + cfg.use_energy)
    np.testing.assert_allclose(ours, ref, rtol=1e-3, atol=1e-3)


def test_frame_counts() -> None:
    cfg = FbankConfig()
    assert (cfg.window_size, cfg.window_shift, cfg.fft_size) == (400, 160, 512)
    assert [num_frames(n, cfg) for n in (0, 399, 400, 559, 560, 16000)] == [0, 0, 1, 1, 2, 98]
    assert fbank(np.zeros(399), cfg).shape == (0, 80)
    assert num_frames(16000, FbankConfig(snip_edges=False)) == 100


def test_sine_energy_lands_in_its_mel_bin() -> None:
    cfg = FbankConfig()
    for f0 in (300.0, 1000.0, 4000.0):
        wave = 10000 * np.sin(2 * np.pi * f0 * np.arange(16000) / 16000)
        peak = int(fbank(wave, cfg).mean(axis=0).argmax())
        m = mel_scale(f0)
        lo, hi = mel_scale(cfg.low_freq), mel_scale(cfg.sample_rate / 2)
        centres = lo + (hi - lo) / (cfg.num_bins + 1) * np.arange(1, cfg.num_bins + 1)
        assert abs(peak - int(np.abs(centres - m).argmin())) <= 1, f0
    w = mel_banks(cfg)
    assert w.shape == (80, 257) and (w >= 0).all() and (w <= 1).all() and (w[:, -1] == 0).all()


def test_silence_is_floored_not_minus_inf() -> None:
    out = fbank(np.zeros(1600), FbankConfig())
    assert np.isfinite(out).all() and np.allclose(out, np.log(np.finfo(np.float32).eps))


def test_lfr_stacks_with_left_padding_and_repeats_the_last_frame() -> None:
    x = np.arange(13, dtype=np.float32)[:, None]  # [T=13, D=1]
    out = apply_lfr(x, 7, 6)
    assert out.shape == (3, 7)  # ceil(13 / 6)
    np.testing.assert_array_equal(out[0], [0, 0, 0, 0, 1, 2, 3])  # 3 copies of frame 0 in front
    np.testing.assert_array_equal(out[1], [3, 4, 5, 6, 7, 8, 9])
    np.testing.assert_array_equal(out[2], [9, 10, 11, 12, 12, 12, 12])  # last frame repeated
    x2 = np.stack([np.arange(6), 10 + np.arange(6)], axis=1).astype(np.float32)  # D=2: frames stay whole
    np.testing.assert_array_equal(apply_lfr(x2, 3, 2)[0], [0, 10, 0, 10, 1, 11])
    assert apply_lfr(np.zeros((0, 80)), 7, 6).shape == (0, 560)
    assert apply_lfr(x, 1, 1).shape == (13, 1)


AM_MVN = """<Nnet>
<Splice> 3 3
[ 0 ]
<AddShift> 3 3
<LearnRateCoef> 0 [ -1.5 2 0.25 ]
<Rescale> 3 3
<LearnRateCoef> 0 [ 0.5 1 4 ]
</Nnet>
"""


def test_am_mvn_read_and_apply(tmp_path) -> None:
    p = tmp_path / "am.mvn"
    p.write_text(AM_MVN)
    cmvn = read_am_mvn(p)
    np.testing.assert_array_equal(cmvn.shift, [-1.5, 2, 0.25])
    np.testing.assert_array_equal(cmvn.scale, [0.5, 1, 4])
    x = np.array([[1.5, -2, 0], [3.5, 0, 1]], dtype=np.float32)
    np.testing.assert_allclose(cmvn(x), [[0, 0, 1], [1, 2, 5]])
    with pytest.raises(ValueError, match="dim 3"):
        cmvn(np.zeros((2, 4)))
    q = tmp_path / "rt.mvn"
    write_am_mvn(q, np.array([1.0, -2.0]), np.array([0.5, 3.0]))
    back = read_am_mvn(q)
    np.testing.assert_allclose(back.shift, [1, -2])
    np.testing.assert_allclose(back.scale, [0.5, 3])


def test_bad_am_mvn_names_the_file(tmp_path) -> None:
    p = tmp_path / "am.mvn"
    p.write_text(AM_MVN.replace("<Rescale>", "<Other>"))
    with pytest.raises(ValueError, match=r"am\.mvn: no <Rescale>"):
        read_am_mvn(p)
    p.write_text(AM_MVN.replace("0.25", "x"))
    with pytest.raises(ValueError, match=r"am\.mvn:5: non-numeric"):
        read_am_mvn(p)
    with pytest.raises(FileNotFoundError, match="nope.mvn"):
        read_am_mvn(tmp_path / "nope.mvn")


def test_wav_frontend_is_fbank_lfr_cmvn() -> None:
    rng = np.random.default_rng(1)
    cmvn = CMVN(rng.standard_normal(560).astype(np.float32), rng.random(560).astype(np.float32))
    fe = WavFrontend(cmvn=cmvn)
    wave = _wave(16000)
    out = fe(wave)
    assert out.shape == (fe.output_frames(len(wave)), 560) == (17, 560)  # ceil(98 / 6)
    expect = cmvn(apply_lfr(fbank(wave.astype(np.float64) * 32768, SENSEVOICE_FBANK), 7, 6))
    np.testing.assert_allclose(out, expect, rtol=1e-5, atol=1e-5)
