#!/usr/bin/env python3
"""Estimate the encoder's unit confusions from its best paths on a few transcribed utterances.

Aligns, per utterance, the reference units (``--ref``: stage-1 ``dump/<set>/units``, G2P of
the transcript) with the encoder's best path (``--hyp``: ``dump/<set>/units_hyp``) by edit
distance, and writes ``ref hyp count`` lines (``<eps>``: a deletion or an insertion; equal
pairs give how often a unit was right). ``simulation.confusions`` in a training config then
draws substitutes and insertions from it (see :mod:`tasu.simulate`). This uses the audio and
transcripts of ``--ref``'s set: training with it is no longer purely text-only.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from pathlib import Path

from tasu.data import DataError, read_kv
from tasu.fileio import atomic_write_text
from tasu.score import score_texts
from tasu.simulate import EPS

log = logging.getLogger("estimate_confusions")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", type=Path, required=True, help="reference units table (dump/<set>/units)")
    ap.add_argument("--hyp", type=Path, required=True, help="the encoder's best paths (dump/<set>/units_hyp)")
    ap.add_argument("--out", type=Path, required=True, help="confusion table to write")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    try:
        ref, hyp = read_kv(args.ref), read_kv(args.hyp, allow_empty_value=True)
    except DataError as e:
        log.error("%s", e)
        return 1
    common = [u for u in ref if u in hyp]
    if not common:
        log.error("%s and %s share no utterance id", args.ref, args.hyp)
        return 1
    if len(common) < len(ref):
        log.warning("%d of %d utterances of %s have no best path in %s (skipped in stage 1?); left out",
                    len(ref) - len(common), len(ref), args.ref, args.hyp)
    # the edit-distance alignment the unit error rate is scored with (stage 5)
    scored = score_texts({u: ref[u] for u in common}, {u: hyp[u] for u in common}, normalize=False)
    counts = Counter((r or EPS, h or EPS) for d in scored.details for _, r, h in d.ops)
    n_ref = sum(c for (r, _), c in counts.items() if r != EPS)
    n = {k: sum(c for (r, h), c in counts.items() if cond(r, h)) for k, cond in (
        ("sub", lambda r, h: EPS not in (r, h) and r != h), ("del", lambda r, h: h == EPS),
        ("ins", lambda r, h: r == EPS))}
    atomic_write_text(args.out, f"# {len(common)} utterances of {args.ref}: ref hyp count\n" + "".join(
        f"{r} {h} {c}\n" for (r, h), c in sorted(counts.items())))
    log.info("%d reference units: %.1f %% substituted, %.1f %% deleted, %.1f %% inserted -> %s", n_ref,
             100 * n["sub"] / max(n_ref, 1), 100 * n["del"] / max(n_ref, 1), 100 * n["ins"] / max(n_ref, 1), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
