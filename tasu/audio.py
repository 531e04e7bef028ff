"""Audio of Kaldi data dirs and plain files: decoding, downmixing, cutting segments.

A ``wav.scp`` value is a plain file (any format soundfile reads), a ``command |`` pipe or a
``foo.ark:123`` offset; every reader returns ``(float32 mono samples, sample rate)`` and raises
:class:`tasu.data.DataError` naming the file (and ``wav.scp`` line) when it cannot.
"""
from __future__ import annotations

import io
import os
import re
import struct
import subprocess
from typing import Literal

import numpy as np

from tasu.data import KALDI_WS, DataDir, DataError, location

__all__ = ["WavKind", "wav_entry_kind", "read_audio", "read_recording", "recording_duration", "load_audio"]

_ARK_RE = re.compile(r".+:\d+(\[[^\]]*\])?")


WavKind = Literal["pipe", "ark", "file"]


def wav_entry_kind(value: str) -> WavKind:
    """Classify a wav.scp value: ``"pipe"`` (``cmd |``), ``"ark"`` (``x.ark:123``) or ``"file"``."""
    if value.endswith("|"):
        return "pipe"
    if _ARK_RE.fullmatch(value) and not os.path.exists(value):
        return "ark"
    return "file"


def _to_mono_float(samples: np.ndarray) -> np.ndarray:
    """(frames[, channels]) int/float samples -> float32 mono in [-1, 1]."""
    x = np.asarray(samples)
    if x.ndim == 2:
        pass
    elif x.ndim == 1:
        x = x[:, None]
    else:
        raise ValueError(f"audio array has shape {x.shape}; expected (samples,) or (samples, channels)")
    if x.dtype == np.uint8:
        y = (x.astype(np.float32) - 128.0) / 128.0
    elif np.issubdtype(x.dtype, np.signedinteger):
        y = x.astype(np.float32) / float(2 ** (8 * x.dtype.itemsize - 1))
    elif np.issubdtype(x.dtype, np.floating):
        y = x.astype(np.float32)
    else:
        raise ValueError(f"unsupported sample type {x.dtype}")
    mono = y.mean(axis=1, dtype=np.float32) if y.shape[1] > 1 else y[:, 0]
    return np.clip(mono, -1.0, 1.0).astype(np.float32, copy=False)


def _bounds(n: int, sr: int, start: float, end: float | None) -> tuple[int, int]:
    """Sample range of [start, end) seconds in an ``n``-sample signal (end clipped)."""
    a = min(max(int(round(start * sr)), 0), n)
    b = n if end is None else min(max(int(round(end * sr)), a), n)
    return a, b


def _require_file(path: str) -> None:
    """FileNotFoundError with a hint when a plain wav.scp path does not exist."""
    if not os.path.exists(path):
        hint = "; if this is a command, end it with '|'" if any(c in KALDI_WS for c in path) else \
            " (relative paths are resolved against the current directory)"
        raise FileNotFoundError(f"audio file {path!r} does not exist{hint}")


def _read_plain(path: str, start: float, end: float | None) -> tuple[np.ndarray, int]:
    """Read [start, end) of an audio file with soundfile (only that range is decoded)."""
    import soundfile as sf

    _require_file(path)
    with sf.SoundFile(path) as f:
        sr = f.samplerate
        a, b = _bounds(f.frames, sr, start, end)
        if a:
            f.seek(a)
        data = f.read(b - a, dtype="float32", always_2d=True)
    return data, sr


def _read_pipe(command: str) -> tuple[np.ndarray, int]:
    """Run ``command`` in a shell and decode the audio it writes to stdout."""
    import soundfile as sf

    proc = subprocess.run(command, shell=True, capture_output=True, check=False)
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RuntimeError(f"command failed with exit status {proc.returncode}"
                           + (f": {err[-1]}" if err else ""))
    if not proc.stdout:
        raise RuntimeError("command wrote no audio to stdout")
    data, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=True)
    return data, sr


def _read_ark(spec: str) -> tuple[np.ndarray, int]:
    """Read a wave entry of a Kaldi archive (``foo.ark:123``) with kaldiio."""
    import kaldiio

    obj = kaldiio.load_mat(spec)
    if not isinstance(obj, tuple):
        raise ValueError(f"archive entry is a {np.shape(obj)} matrix (features?), not audio")
    sr, data = obj
    return data, int(sr)


def _read_value(value: str, start: float, end: float | None) -> tuple[np.ndarray, int]:
    """Samples [start, end) s of a wav.scp value (file, ``cmd |`` or ``x.ark:off``), and the rate."""
    kind = wav_entry_kind(value)
    if kind == "file":
        data, sr = _read_plain(value, start, end)
    else:
        data, sr = _read_pipe(value[:-1]) if kind == "pipe" else _read_ark(value)
        a, b = _bounds(len(data), sr, start, end)
        data = data[a:b]
    return _to_mono_float(data), sr


_READ_ERRORS = (OSError, RuntimeError, ValueError, AssertionError, EOFError, struct.error)


def read_audio(value: str) -> tuple[np.ndarray, int]:
    """Float32 mono waveform of one wav.scp-style value (a path, ``cmd |`` or ``x.ark:off``).

    Raises :class:`DataError` naming the value and the cause.
    """
    try:
        wave, sr = _read_value(value, 0.0, None)
    except _READ_ERRORS as e:
        raise DataError(f"{value}: cannot read audio: {str(e) or type(e).__name__}") from e
    if not np.isfinite(wave).all():
        raise DataError(f"{value}: audio contains NaN or infinite samples")
    return wave, sr


def read_recording(dd: DataDir, rec_id: str, *, start: float = 0.0,
                   end: float | None = None) -> tuple[np.ndarray, int]:
    """Samples [start, end) s of a wav.scp recording as float32 mono (may be empty)."""
    if dd.wav_scp is None:
        raise DataError(f"{location(dd.path / 'wav.scp')}file is missing; cannot load recording {rec_id!r}")
    if rec_id not in dd.wav_scp:
        raise DataError(f"{location(dd.path / 'wav.scp')}no entry for recording {rec_id!r}")
    value = dd.wav_scp[rec_id]
    here = dd.where("wav.scp", rec_id)
    try:
        wave, sr = _read_value(value, start, end)
    except _READ_ERRORS as e:
        cause = str(e) or type(e).__name__
        raise DataError(f"{here}cannot read audio of {rec_id!r} ({wav_entry_kind(value)} {value!r}): {cause}") from e
    if not np.isfinite(wave).all():
        raise DataError(f"{here}audio of {rec_id!r} contains NaN or infinite samples")
    return wave, sr


def recording_duration(dd: DataDir, rec_id: str, *, decode: bool = True) -> float | None:
    """Duration (s) of a wav.scp recording: plain files from their header only;
    pipes and archives are decoded, or skipped (None) when ``decode`` is False.
    """
    value = (dd.wav_scp or {}).get(rec_id)
    if value is None or wav_entry_kind(value) != "file":
        if not decode:
            return None
        wave, sr = read_recording(dd, rec_id)
        frames = wave.size
    else:
        import soundfile as sf

        try:
            _require_file(value)
            info = sf.info(value)
        except (OSError, RuntimeError) as e:
            raise DataError(f"{dd.where('wav.scp', rec_id)}cannot read the audio header of {rec_id!r} "
                            f"(file {value!r}): {e}") from e
        frames, sr = info.frames, info.samplerate
    if frames <= 0:
        raise DataError(f"{dd.where('wav.scp', rec_id)}audio of {rec_id!r} is empty (0 samples)")
    return frames / sr


def load_audio(dd: DataDir, uid: str) -> tuple[np.ndarray, int]:
    """Float32 mono waveform in [-1, 1] of utterance ``uid`` and its sample rate.

    Applies ``segments`` when present; multichannel audio is averaged to mono.
    """
    if dd.segments is not None:
        if uid not in dd.segments:
            raise DataError(f"{location(dd.path / 'segments')}no segment for utterance {uid!r}")
        rec, start, end = dd.segments[uid]
        wave, sr = read_recording(dd, rec, start=start, end=end)
        if wave.size == 0:
            raise DataError(f"{dd.where('segments', uid)}segment {uid!r} [{start}, {end}] s selects no audio "
                            f"from recording {rec!r} ({dd.where('wav.scp', rec).rstrip(': ')}); "
                            "check the times against the recording length")
        return wave, sr
    wave, sr = read_recording(dd, uid)
    if wave.size == 0:
        raise DataError(f"{dd.where('wav.scp', uid)}audio of {uid!r} is empty (0 samples)")
    return wave, sr
