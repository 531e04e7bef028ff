#!/usr/bin/env python3
"""Decode a data dir with a peer ASR system, to score it beside TASU on the same audio.

    python -m tasu.bin.peer_decode --system pocketsphinx --data data/test --out exp/pocketsphinx/decode_test

Systems: ``pocketsphinx`` (PyPI ``pocketsphinx``, its default US English acoustic model,
language model and dictionary: what a CPU user would pick instead). Audio is read like every
tasu stage reads it (``wav.scp`` paths, pipes, ark; ``segments``) and resampled to the system's
rate (16 kHz); ``--nj`` worker processes share the utterances. ``<out>/text`` holds the
hypotheses (lower case, as pocketsphinx writes them; scoring normalises both sides alike),
``<out>/rtf`` the real-time factor. Written atomically; unreadable audio is an error naming
the ``wav.scp`` line, or with ``--skip_bad_audio true`` a counted skip listed in
``<out>/skipped``.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

from tasu.audio import load_audio
from tasu.data import DataDir, DataError
from tasu.encoders.base import resample
from tasu.fileio import atomic_write_text

log = logging.getLogger("tasu.peer_decode")
SYSTEMS = ("pocketsphinx",)


class PocketSphinx:
    """pocketsphinx's default en-us model: 16 kHz int16 in, one best hypothesis out."""

    sample_rate = 16000

    def __init__(self) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError:
            raise ImportError("the pocketsphinx peer needs `pip install pocketsphinx`") from None
        self.decoder = Decoder(samprate=self.sample_rate, loglevel="FATAL")

    def __call__(self, wave: np.ndarray) -> str:
        """One utterance, independent of the ones before it: the front end (its noise tracker and
        cepstral mean) starts afresh each time, so the order of utterances and --nj do not matter."""
        pcm = (np.clip(wave, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        self.decoder.reinit_feat()
        self.decoder.start_utt()
        self.decoder.process_raw(pcm, full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        return " ".join(hyp.hypstr.split()) if hyp is not None else ""


def decode_part(job: tuple[str, list[str], str]) -> tuple[dict[str, str], list[str], float, float, str]:
    """Worker: decode utterances ``uids`` of data dir ``data``; (hyps, skipped, audio s, compute s, error)."""
    data, uids, skip = job
    dd = DataDir.load(data, require=("wav.scp",))
    system = PocketSphinx()
    hyps, skipped, audio_s, compute_s = {}, [], 0.0, 0.0
    for uid in uids:
        try:
            wave, sr = load_audio(dd, uid)
        except DataError as e:
            if skip == "false":
                return hyps, skipped, audio_s, compute_s, str(e)
            skipped.append(f"{uid} {e}")
            continue
        t = time.perf_counter()
        hyps[uid] = system(resample(wave, sr, system.sample_rate))
        compute_s += time.perf_counter() - t
        audio_s += wave.size / sr
    return hyps, skipped, audio_s, compute_s, ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--system", choices=SYSTEMS, default="pocketsphinx")
    ap.add_argument("--data", type=Path, required=True, help="Kaldi data dir with wav.scp")
    ap.add_argument("--out", type=Path, required=True, help="decode dir (gets text, rtf)")
    ap.add_argument("--skip_bad_audio", choices=("true", "false"), default="false")
    ap.add_argument("--nj", type=int, default=1, help="worker processes (pocketsphinx is single-threaded)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (peer_decode) %(levelname)s: %(message)s")
    try:
        dd = DataDir.load(args.data, require=("wav.scp",))
        PocketSphinx()  # fails early with the pip install that fixes it
    except (DataError, ImportError) as e:
        log.error("%s", e)
        return 1
    uids = dd.utt_ids
    nj = max(1, min(args.nj, len(uids)))
    jobs = [(str(args.data), uids[i::nj], args.skip_bad_audio) for i in range(nj)]
    if nj == 1:
        parts = [decode_part(jobs[0])]
    else:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(nj) as pool:
            parts = pool.map(decode_part, jobs)
    hyps, skipped, audio_s, compute_s = {}, [], 0.0, 0.0
    for h, sk, a, c, err in parts:
        if err:
            log.error("%s", err)
            return 1
        hyps.update(h)
        skipped += sk
        audio_s += a
        compute_s += c
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "text", "".join(f"{u} {h}\n" for u, h in sorted(hyps.items())))
    atomic_write_text(args.out / "rtf", f"{compute_s / max(audio_s, 1e-9):.4f}\n")
    if skipped:
        atomic_write_text(args.out / "skipped", "".join(s + "\n" for s in sorted(skipped)))
    log.info("%s: %s decoded %d utterances (%.1f s of audio, RTF %.3f per process, %d processes), skipped %d",
             args.data, args.system, len(hyps), audio_s, compute_s / max(audio_s, 1e-9), nj, len(skipped))
    return 0


if __name__ == "__main__":
    sys.exit(main())
