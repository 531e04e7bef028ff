"""Kaldi-compatible log-mel filterbank, low frame rate stacking (LFR) and CMVN, in numpy.

:func:`fbank` follows Kaldi's ``compute-fbank-feats`` (and ``kaldi-native-fbank``, which
FunASR/SenseVoice use): frames of ``frame_length_ms`` every ``frame_shift_ms`` with
``snip_edges`` (only whole frames), DC removal, pre-emphasis, a window (``povey`` is
Kaldi's default, SenseVoice uses ``hamming``), zero padding to a power of two, power
spectrum, triangular mel filters on Kaldi's mel scale ``1127 ln(1 + f/700)`` and
``log(max(x, FLT_EPSILON))``. Dither is 0 (deterministic). :func:`apply_lfr` and
:func:`read_am_mvn` / :class:`CMVN` are FunASR's LFR and ``am.mvn`` CMVN.

No torchaudio: its registry build breaks ``import transformers`` beside CPU torch.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FLT_EPSILON = float(np.finfo(np.float32).eps)
WINDOWS = ("povey", "hamming", "hanning", "rectangular", "blackman")


@dataclass(frozen=True)
class FbankConfig:
    """Kaldi fbank options (Kaldi's defaults, except ``num_bins`` 80 and no dither)."""

    sample_rate: int = 16000
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    num_bins: int = 80
    window: str = "povey"
    preemph: float = 0.97
    remove_dc_offset: bool = True
    snip_edges: bool = True
    low_freq: float = 20.0
    high_freq: float = 0.0  # <= 0: offset from the Nyquist frequency
    use_energy: bool = False  # prepend a log-energy column (raw energy, floored)
    energy_floor: float = 0.0
    round_to_power_of_two: bool = True
    blackman_coeff: float = 0.42

    def __post_init__(self) -> None:
        if self.window not in WINDOWS:
            raise ValueError(f"unknown window {self.window!r}; known: {', '.join(WINDOWS)}")
        if self.num_bins < 3 or self.frame_shift_ms <= 0 or self.frame_length_ms <= 0:
            raise ValueError(f"bad fbank options: {self}")

    @property
    def window_size(self) -> int:
        return int(self.sample_rate * 0.001 * self.frame_length_ms)

    @property
    def window_shift(self) -> int:
        return int(self.sample_rate * 0.001 * self.frame_shift_ms)

    @property
    def fft_size(self) -> int:
        n = self.window_size
        return 1 << (n - 1).bit_length() if self.round_to_power_of_two else n


# SenseVoiceSmall / Paraformer front end (FunASR ``WavFrontend``: hamming, 80 bins, 25/10 ms)
SENSEVOICE_FBANK = FbankConfig(window="hamming")


def num_frames(num_samples: int, cfg: FbankConfig) -> int:
    """Frames Kaldi makes of ``num_samples`` samples."""
    if cfg.snip_edges:
        return 0 if num_samples < cfg.window_size else 1 + (num_samples - cfg.window_size) // cfg.window_shift
    return (num_samples + cfg.window_shift // 2) // cfg.window_shift


def window_function(cfg: FbankConfig) -> np.ndarray:
    n = cfg.window_size
    a = 2 * np.pi / (n - 1)
    i = np.arange(n, dtype=np.float64)
    if cfg.window == "povey":
        return (0.5 - 0.5 * np.cos(a * i)) ** 0.85
    if cfg.window == "hamming":
        return 0.54 - 0.46 * np.cos(a * i)
    if cfg.window == "hanning":
        return 0.5 - 0.5 * np.cos(a * i)
    if cfg.window == "blackman":
        b = cfg.blackman_coeff
        return b - 0.5 * np.cos(a * i) + (0.5 - b) * np.cos(2 * a * i)
    return np.ones(n)


def mel_scale(freq: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log(1.0 + np.asarray(freq, dtype=np.float64) / 700.0)


def mel_banks(cfg: FbankConfig) -> np.ndarray:
    """``[num_bins, fft_size // 2 + 1]`` triangular weights (Kaldi ``MelBanks``, no VTLN)."""
    nyquist = 0.5 * cfg.sample_rate
    high = cfg.high_freq if cfg.high_freq > 0 else nyquist + cfg.high_freq
    if not 0 <= cfg.low_freq < high <= nyquist:
        raise ValueError(f"bad mel range low_freq={cfg.low_freq} high_freq={high} (Nyquist {nyquist})")
    n_fft_bins = cfg.fft_size // 2
    mel_low, mel_high = mel_scale(cfg.low_freq), mel_scale(high)
    delta = (mel_high - mel_low) / (cfg.num_bins + 1)
    left = mel_low + delta * np.arange(cfg.num_bins)[:, None]
    center, right = left + delta, left + 2 * delta
    mel = mel_scale(cfg.sample_rate / cfg.fft_size * np.arange(n_fft_bins))[None, :]
    up, down = (mel - left) / (center - left), (right - mel) / (right - center)
    w = np.where((mel > left) & (mel < right), np.where(mel <= center, up, down), 0.0)
    return np.concatenate([w, np.zeros((cfg.num_bins, 1))], axis=1)  # Nyquist bin: weight 0


def _frames(wave: np.ndarray, cfg: FbankConfig) -> np.ndarray:
    n, size, shift = num_frames(len(wave), cfg), cfg.window_size, cfg.window_shift
    if n == 0:
        return np.zeros((0, size))
    if cfg.snip_edges:
        idx = np.arange(n)[:, None] * shift + np.arange(size)[None, :]
        return wave[idx]
    # Kaldi without snip_edges: centred frames, reflected at both ends
    start = np.arange(n)[:, None] * shift + shift // 2 - size // 2 + np.arange(size)[None, :]
    m = len(wave)
    idx = np.where(start < 0, -start - 1, start)
    idx = np.where(idx >= m, 2 * m - 1 - idx, idx)
    return wave[idx]


def fbank(wave: np.ndarray, cfg: FbankConfig = FbankConfig()) -> np.ndarray:
    """Mono waveform (Kaldi's scale: the int16 range; FunASR multiplies [-1, 1] audio by 32768) -> ``[T, num_bins]``.

    ``[T, 1 + num_bins]`` with the log energy first when ``cfg.use_energy``.
    """
    wave = np.asarray(wave, dtype=np.float64)
    if wave.ndim != 1:
        raise ValueError(f"expected a mono waveform, got shape {wave.shape}")
    x = _frames(wave, cfg)
    if cfg.remove_dc_offset:
        x = x - x.mean(axis=1, keepdims=True)
    log_energy = np.log(np.maximum((x ** 2).sum(axis=1), FLT_EPSILON))
    if cfg.energy_floor > 0:
        log_energy = np.maximum(log_energy, np.log(cfg.energy_floor))
    if cfg.preemph != 0:
        x = np.concatenate([x[:, :1] * (1 - cfg.preemph), x[:, 1:] - cfg.preemph * x[:, :-1]], axis=1)
    x = x * window_function(cfg)
    power = np.abs(np.fft.rfft(x, n=cfg.fft_size, axis=1)) ** 2
    feats = np.log(np.maximum(power @ mel_banks(cfg).T, FLT_EPSILON))
    if cfg.use_energy:
        feats = np.concatenate([log_energy[:, None], feats], axis=1)
    return feats.astype(np.float32)


def apply_lfr(feats: np.ndarray, m: int = 7, n: int = 6) -> np.ndarray:
    """Stack ``m`` frames every ``n`` frames (FunASR LFR): ``[T, D]`` -> ``[ceil(T/n), m*D]``.

    The input is left-padded with ``(m-1)//2`` copies of its first frame; windows running
    past the end repeat the last frame.
    """
    feats = np.asarray(feats, dtype=np.float32)
    if m == 1 and n == 1:
        return feats
    t, d = feats.shape
    if t == 0:
        return np.zeros((0, m * d), dtype=np.float32)
    padded = np.concatenate([np.repeat(feats[:1], (m - 1) // 2, axis=0), feats], axis=0)
    t_lfr = -(-t // n)
    idx = np.minimum(np.arange(t_lfr)[:, None] * n + np.arange(m)[None, :], len(padded) - 1)
    return padded[idx].reshape(t_lfr, m * d)


def lfr_length(num_frames_in: int, n: int = 6) -> int:
    return -(-num_frames_in // n)


@dataclass(frozen=True)
class CMVN:
    """Feature normalisation ``(x + shift) * scale`` (FunASR ``am.mvn``: shift = -mean, scale = 1/std)."""

    shift: np.ndarray
    scale: np.ndarray

    def __call__(self, feats: np.ndarray) -> np.ndarray:
        if feats.shape[-1] != self.shift.shape[0]:
            raise ValueError(f"CMVN has dim {self.shift.shape[0]}, features have dim {feats.shape[-1]}")
        return ((feats + self.shift) * self.scale).astype(np.float32)


_VEC_RE = re.compile(r"\[([^\]]*)\]")


def read_am_mvn(path: Path) -> CMVN:
    """Read a Kaldi nnet text file with ``<AddShift>`` and ``<Rescale>`` components (FunASR ``am.mvn``).

    Each component is followed (on its line or a later one) by ``<LearnRateCoef> 0 [ v1 v2 ... ]``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CMVN file not found: {path}")
    vecs: dict[str, np.ndarray] = {}
    pending: tuple[str, int] | None = None
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        for tag in ("<AddShift>", "<Rescale>"):
            if tag in line:
                pending = (tag, lineno)
        if pending is not None and "[" in line:
            m = _VEC_RE.search(line)
            if m is None:
                raise ValueError(f"{path}:{lineno}: expected '[ v1 v2 ... ]' on one line after {pending[0]}")
            try:
                vecs[pending[0]] = np.array(m.group(1).split(), dtype=np.float32)
            except ValueError as e:
                raise ValueError(f"{path}:{lineno}: non-numeric value in {pending[0]} vector: {e}") from None
            pending = None
    missing = [t for t in ("<AddShift>", "<Rescale>") if t not in vecs]
    if missing:
        raise ValueError(f"{path}: no {' and no '.join(missing)} vector (expected FunASR am.mvn)")
    shift, scale = vecs["<AddShift>"], vecs["<Rescale>"]
    if shift.shape != scale.shape:
        raise ValueError(f"{path}: <AddShift> has {shift.size} values, <Rescale> has {scale.size}")
    return CMVN(shift, scale)


def write_am_mvn(path: Path, shift: np.ndarray, scale: np.ndarray) -> None:
    """Write an ``am.mvn`` file in FunASR's layout (used by tests and tools)."""
    d = len(shift)
    fmt = lambda v: " ".join(f"{x:.8g}" for x in v)  # noqa: E731
    Path(path).write_text(
        f"<Nnet>\n<Splice> {d} {d}\n[ 0 ]\n<AddShift> {d} {d}\n<LearnRateCoef> 0 [ {fmt(shift)} ]\n"
        f"<Rescale> {d} {d}\n<LearnRateCoef> 0 [ {fmt(scale)} ]\n</Nnet>\n", encoding="utf-8")


@dataclass(frozen=True)
class WavFrontend:
    """Waveform in [-1, 1] -> fbank (int16 scale) -> LFR -> CMVN: SenseVoice's input features."""

    fbank: FbankConfig = SENSEVOICE_FBANK
    lfr_m: int = 7
    lfr_n: int = 6
    cmvn: CMVN | None = None
    int16_scale: bool = True

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        w = np.asarray(wave, dtype=np.float64)
        feats = fbank(w * 32768.0 if self.int16_scale else w, self.fbank)
        feats = apply_lfr(feats, self.lfr_m, self.lfr_n)
        return feats if self.cmvn is None else self.cmvn(feats)

    def output_frames(self, num_samples: int) -> int:
        return lfr_length(num_frames(num_samples, self.fbank), self.lfr_n) if (self.lfr_m, self.lfr_n) != (1, 1) \
            else num_frames(num_samples, self.fbank)

    @property
    def dim(self) -> int:
        return self.lfr_m * (self.fbank.num_bins + int(self.fbank.use_energy))
