#!/usr/bin/env python3
"""A robustness suite from real recordings: a Kaldi data dir under the conditions users meet.

    python -m tasu.bin.make_conditions --data data/arctic_dev --babble_from data/arctic_train \\
        --audio_dir db/conditions --out_root data [--conditions speed0.9 speed1.1 telephone reverb \\
        babble10 pink10 brown10] [--seed 0]

Each condition writes ``<out_root>/<set>_<condition>/`` (the set's ``text`` and ``utt2spk``, and a
``wav.scp`` of new 16-bit wavs under ``<audio_dir>/<set>_<condition>/``):

- ``speed0.9``, ``speed1.1``: sox ``speed`` (tempo and pitch, as Kaldi's speed perturbation),
  back at the recording's rate;
- ``telephone``: band-limited to 300-3 400 Hz, 8 kHz, 8-bit mu-law (the G.711 line);
- ``reverb``: sox ``reverb 50 50 100`` (reverberance, HF damping, room scale; the effect's
  tail kept), a medium room;
- ``babble<SNR>``: four other real recordings (``--babble_from``, a data dir none of whose
  recordings is in the set) summed, added at SNR dB; ``pink<SNR>``, ``brown<SNR>``: generated
  1/f and 1/f^2 noise at SNR dB. The SNR is of the whole recording's power.

Deterministic: the same inputs, condition and ``--seed`` give the same bytes (each recording's
noise is drawn from a generator seeded by the seed, the condition and the utterance id; sox's
effects here draw nothing at random, and their dither is off). A condition whose ``wav.scp`` exists is complete and is
skipped (``wav.scp`` is written last, and every wav under a temporary name first). sox missing,
or an input that cannot be read, is an error naming the file.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

log = logging.getLogger("tasu.make_conditions")

CONDITIONS = ("speed0.9", "speed1.1", "telephone", "reverb", "babble10", "pink10", "brown10")
_NOISE = re.compile(r"(babble|pink|brown)(-?\d+(?:\.\d+)?)")
_SOX = {"speed0.9": ["speed", "0.9"], "speed1.1": ["speed", "1.1"],
        "telephone": ["sinc", "300-3400"], "reverb": ["pad", "0", "0.5", "reverb", "50", "50", "100"]}


class ConditionError(RuntimeError):
    """A condition that cannot be built; the message names the file or tool."""


def check_condition(name: str) -> None:
    if name not in _SOX and not _NOISE.fullmatch(name):
        raise ConditionError(f"unknown condition {name!r} (known: speed0.9 speed1.1 telephone reverb, "
                             "babble<SNR> pink<SNR> brown<SNR>)")


def _seed(seed: int, *parts: str) -> int:
    h = hashlib.sha256("\t".join([str(seed), *parts]).encode()).digest()
    return int.from_bytes(h[:8], "little")


def sox_effect(wave: np.ndarray, sr: int, condition: str, where: str) -> tuple[np.ndarray, int]:
    """``wave`` through sox's effect of ``condition``: ``(samples, rate)``."""
    sox = shutil.which("sox")
    if sox is None:
        raise ConditionError(f"{where}: condition {condition} needs sox (apt install sox), not found on PATH")
    pcm = (np.clip(wave, -1, 1) * 32767).astype("<i2").tobytes()
    out_rate = 8000 if condition == "telephone" else sr
    cmd = [sox, "-D", "-t", "raw", "-r", str(sr), "-e", "signed", "-b", "16", "-c", "1", "-",
           "-t", "raw", "-r", str(out_rate), "-e", "signed", "-b", "16", "-c", "1", "-", *_SOX[condition]]
    if condition.startswith("speed"):
        cmd += ["rate", str(sr)]
    r = subprocess.run(cmd, input=pcm, capture_output=True)
    if r.returncode != 0:
        raise ConditionError(f"{where}: sox {' '.join(cmd[1:])} failed: {r.stderr.decode(errors='replace')[-300:]}")
    out = np.frombuffer(r.stdout, dtype="<i2").astype(np.float32) / 32768
    if condition == "telephone":  # the line's 8-bit mu-law coding
        out = mu_law(out)
    return out, out_rate


def mu_law(x: np.ndarray, mu: int = 255) -> np.ndarray:
    """``x`` coded to 8-bit mu-law and back (the G.711 quantisation)."""
    y = np.sign(x) * np.log1p(mu * np.abs(np.clip(x, -1, 1))) / np.log1p(mu)
    q = np.round((y + 1) / 2 * mu) / mu * 2 - 1
    return (np.sign(q) * ((1 + mu) ** np.abs(q) - 1) / mu).astype(np.float32)


def coloured_noise(n: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of pink (power 1/f) or brown (1/f^2) noise, unit power."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = f[1] if len(f) > 1 else 1.0
    spec /= np.sqrt(f) if kind == "pink" else f
    x = np.fft.irfft(spec, n)
    return (x / max(np.sqrt(np.mean(x ** 2)), 1e-12)).astype(np.float32)


def babble(n: int, sources: list[np.ndarray], rng: np.random.Generator, k: int = 4) -> np.ndarray:
    """``k`` of ``sources`` (real recordings at the target's rate), each from a random offset and
    looped to ``n`` samples, summed; unit power."""
    if len(sources) < k:
        raise ConditionError(f"babble needs {k} other recordings, got {len(sources)}")
    out = np.zeros(n, dtype=np.float64)
    for i in rng.choice(len(sources), size=k, replace=False):
        s = sources[i]
        start = int(rng.integers(len(s)))
        out += np.resize(np.roll(s, -start), n)
    return (out / max(np.sqrt(np.mean(out ** 2)), 1e-12)).astype(np.float32)


def add_noise(wave: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``wave`` plus ``noise`` scaled to ``snr_db`` below its power, kept within [-1, 1]."""
    p = float(np.mean(wave.astype(np.float64) ** 2))
    out = wave + noise * np.sqrt(p / 10 ** (snr_db / 10) / max(float(np.mean(noise ** 2)), 1e-12))
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    return (out / peak * 0.99 if peak > 0.99 else out).astype(np.float32)


def apply(condition: str, wave: np.ndarray, sr: int, uid: str, seed: int, where: str,
          sources: list[np.ndarray] | None = None) -> tuple[np.ndarray, int]:
    """One recording under ``condition``: ``(samples, rate)``."""
    check_condition(condition)
    if condition in _SOX:
        return sox_effect(wave, sr, condition, where)
    kind, snr = _NOISE.fullmatch(condition).groups()
    rng = np.random.default_rng(_seed(seed, condition, uid))
    if kind == "babble":
        if sources is None:
            raise ConditionError(f"{condition}: give --babble_from, a data dir of other real recordings")
        noise = babble(len(wave), sources, rng)
    else:
        noise = coloured_noise(len(wave), kind, rng)
    return add_noise(wave, noise, float(snr)), sr


def make_condition(data: Path, condition: str, out_root: Path, audio_dir: Path, seed: int = 0,
                   babble_from: Path | None = None) -> Path:
    """``<out_root>/<set>_<condition>``: the data dir ``data`` under ``condition`` (skipped when
    complete)."""
    import soundfile as sf

    from tasu.audio import load_audio, read_audio
    from tasu.data import DataDir, write_kv
    from tasu.encoders.base import resample

    check_condition(condition)
    name = f"{data.name}_{condition}"
    out, wavs = out_root / name, audio_dir / name
    if (out / "wav.scp").is_file():
        log.info("%s: complete, skipping", out)
        return out
    dd = DataDir.load(data, require=("wav.scp",))
    sources = None
    if condition.startswith("babble"):
        if babble_from is None:
            raise ConditionError(f"{condition}: give --babble_from, a data dir of other real recordings")
        bd = DataDir.load(babble_from, require=("wav.scp",))
        shared = sorted(set(bd.wav_scp.values()) & set(dd.wav_scp.values()))
        if shared:
            raise ConditionError(f"{babble_from}/wav.scp: {shared[0]} is also a recording of {data}: babble must "
                                 "come from other recordings")
        sources = []
        for rec in sorted(bd.wav_scp)[:200]:
            w, r = read_audio(bd.wav_scp[rec])
            sources.append(resample(w, r, 16000))
    wavs.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    scp = {}
    for uid in sorted(dd.wav_scp if dd.segments is None else dd.segments):
        where = dd.where("wav.scp", uid).rstrip(": ") if dd.segments is None else f"{data}/segments {uid}"
        wave, sr = load_audio(dd, uid)
        if sources is not None and sr != 16000:
            wave, sr = resample(wave, sr, 16000), 16000
        cond, rate = apply(condition, wave, sr, uid, seed, where, sources)
        path = wavs / f"{uid}.wav"
        tmp = path.with_suffix(".wav.tmp")
        sf.write(tmp, cond, rate, subtype="PCM_16", format="WAV")
        tmp.replace(path)
        scp[uid] = str(path)
    for f in ("text", "utt2spk", "spk2utt"):
        if (data / f).is_file():
            shutil.copyfile(data / f, out / f)
    write_kv(out / ".wav.scp.tmp", scp)
    (out / ".wav.scp.tmp").replace(out / "wav.scp")
    log.info("%s: %d recordings under %s -> %s", out, len(scp), condition, wavs)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="the Kaldi data dir to perturb (wav.scp)")
    ap.add_argument("--conditions", nargs="+", default=list(CONDITIONS))
    ap.add_argument("--babble_from", type=Path, help="a data dir of other real recordings (babble conditions)")
    ap.add_argument("--out_root", type=Path, default=Path("data"), help="where <set>_<condition>/ go (default data)")
    ap.add_argument("--audio_dir", type=Path, required=True, help="where the new wavs go")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (make_conditions) %(levelname)s: %(message)s")
    try:
        for c in args.conditions:
            check_condition(c)
        for c in args.conditions:
            make_condition(args.data, c, args.out_root, args.audio_dir, args.seed, args.babble_from)
    except (ConditionError, ValueError, OSError) as e:  # DataError is a ValueError
        log.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
