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

Given adaptation text (``--lm_text``, one sentence a line: the peer given the same text as an
adapted TASU model), pocketsphinx decodes with a trigram built from it, mixed with its default
model (``--lm_weight``: the text's share; 1: the text's model alone) and completed with the
n-grams of ``--lm_general_n`` sentences of ``--lm_general_text`` (a Kaldi ``text``, ``.xz``
read as is, e.g. the TASU training text); its words missing from pocketsphinx's dictionary are
spelled by hama's G2P. How, exactly: :mod:`tasu.sphinx_lm`; the model, dictionary and counts go
to ``<out>/lm/``.

    python -m tasu.bin.peer_decode --data data/asterisk_adapt_dev --out exp/pocketsphinx_lm/decode_dev \
        --lm_text data/asterisk_adapt_text/sentences.txt --lm_general_text local/text/train.text.xz
"""
from __future__ import annotations

import argparse
import logging
import lzma
import random
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

    def __init__(self, lm_dir: str | None = None) -> None:
        """``lm_dir``: a dir from :func:`tasu.sphinx_lm.build_sphinx_lm` (``lm.arpa``, ``dict``) instead
        of the default model and dictionary."""
        try:
            from pocketsphinx import Decoder
        except ImportError:
            raise ImportError("the pocketsphinx peer needs `pip install pocketsphinx`") from None
        lm = {"lm": f"{lm_dir}/lm.arpa", "dict": f"{lm_dir}/dict"} if lm_dir else {}
        self.decoder = Decoder(samprate=self.sample_rate, loglevel="FATAL", **lm)

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


def decode_part(job: tuple[str, list[str], str, str | None]) -> tuple[dict[str, str], list[str], float, float, str]:
    """Worker: decode utterances ``uids`` of data dir ``data``; (hyps, skipped, audio s, compute s, error)."""
    data, uids, skip, lm_dir = job
    dd = DataDir.load(data, require=("wav.scp",))
    system = PocketSphinx(lm_dir)
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


def read_sentences(path: Path, kaldi: bool) -> list[str]:
    """One sentence a line (``kaldi``: ``<id> <sentence>`` lines); ``.xz`` read decompressed."""
    raw = lzma.decompress(path.read_bytes()) if path.suffix == ".xz" else path.read_bytes()
    lines = [l.strip() for l in raw.decode("utf-8").splitlines()]
    return [l.split(" ", 1)[1] if kaldi else l for l in lines if l and (not kaldi or " " in l)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--system", choices=SYSTEMS, default="pocketsphinx")
    ap.add_argument("--data", type=Path, required=True, help="Kaldi data dir with wav.scp")
    ap.add_argument("--out", type=Path, required=True, help="decode dir (gets text, rtf)")
    ap.add_argument("--skip_bad_audio", choices=("true", "false"), default="false")
    ap.add_argument("--nj", type=int, default=1, help="worker processes (pocketsphinx is single-threaded)")
    ap.add_argument("--lm_text", type=Path, help="adaptation sentences, one a line: decode with a model built "
                    "from them (in <out>/lm); default: pocketsphinx's own model")
    ap.add_argument("--lm_weight", type=float, default=0.3,
                    help="the adaptation text's share in the mix with the default model (1: its model alone); "
                         "0.3 had the lowest perplexity on asterisk_adapt_dev")
    ap.add_argument("--lm_general_text", type=Path,
                    help="Kaldi text (.xz read as is) whose sampled sentences' n-grams the mix keeps explicit")
    ap.add_argument("--lm_general_n", type=int, default=50000,
                    help="how many of its sentences (a seeded sample; 0: all)")
    ap.add_argument("--lm_order", type=int, default=3)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (peer_decode) %(levelname)s: %(message)s")
    try:
        dd = DataDir.load(args.data, require=("wav.scp",))
        PocketSphinx()  # fails early with the pip install that fixes it
    except (DataError, ImportError) as e:
        log.error("%s", e)
        return 1
    lm_dir = None
    if args.lm_text is not None:
        from tasu.sphinx_lm import build_sphinx_lm

        general: list[str] = []
        if args.lm_general_text is not None and args.lm_weight < 1:
            general = read_sentences(args.lm_general_text, kaldi=True)
            random.Random(0).shuffle(general)
            general = general[:args.lm_general_n or None]
        try:
            build_sphinx_lm(read_sentences(args.lm_text, kaldi=False), args.out / "lm", args.lm_weight, general,
                            args.lm_order)
        except (OSError, ValueError, ImportError) as e:
            log.error("%s", e)
            return 1
        lm_dir = str(args.out / "lm")
    uids = dd.utt_ids
    nj = max(1, min(args.nj, len(uids)))
    jobs = [(str(args.data), uids[i::nj], args.skip_bad_audio, lm_dir) for i in range(nj)]
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
    log.info("%s: %s%s decoded %d utterances (%.1f s of audio, RTF %.3f per process, %d processes), skipped %d",
             args.data, args.system, f" (LM {lm_dir})" if lm_dir else "", len(hyps), audio_s,
             compute_s / max(audio_s, 1e-9), nj, len(skipped))
    return 0


if __name__ == "__main__":
    sys.exit(main())
