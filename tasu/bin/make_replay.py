#!/usr/bin/env python3
"""A seeded sample of a training text, one sentence a line (xz): what ``tasu-adapt`` mixes into a
domain's text so that the adapted model keeps what it could read before (its "replay"). Stage 6
packs one into the model zip (``tasu.bin.pack --replay``); stage 3 makes one for ``--adapt_text``.

    python -m tasu.bin.make_replay --text data/train/text --n 20000 --seed 0 --out exp/<model>/replay.txt.xz

``--text``: a Kaldi ``text`` (``<id> sentence`` lines; ``.xz`` too); a line with an id and no
sentence is skipped. Fewer sentences than ``--n``: all of them, shuffled.
"""
from __future__ import annotations

import argparse
import lzma
import random
import sys
from pathlib import Path

from tasu.fileio import atomic_write_bytes


def replay_sample(text: Path, n: int, seed: int = 0) -> tuple[list[str], int]:
    """``(sample, sentences in text)``: ``n`` sentences of a Kaldi text drawn by a generator seeded
    with ``seed`` (the same inputs give the same sample)."""
    opener = lzma.open if text.suffix == ".xz" else open
    with opener(text, "rt", encoding="utf-8") as f:
        sents = [line.split(" ", 1)[1].strip() for line in f if " " in line.strip()]
    return random.Random(seed).sample(sents, min(n, len(sents))), len(sents)


def write_replay(text: Path, out: Path, n: int = 20000, seed: int = 0) -> int:
    """Write :func:`replay_sample` to ``out`` (xz, whole or not at all); the sentences written."""
    sample, _ = replay_sample(text, n, seed)
    if not sample:
        raise ValueError(f"{text}: no sentences to sample a replay text from")
    atomic_write_bytes(out, lzma.compress(("\n".join(sample) + "\n").encode("utf-8"), preset=9))
    return len(sample)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--text", type=Path, required=True, help="Kaldi text (`<id> sentence` lines), .xz or plain")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    try:
        k = write_replay(args.text, args.out, args.n, args.seed)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        print(f"make_replay: {e}", file=sys.stderr)
        return 1
    print(f"{args.out}: {k} sentences of {args.text} (seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
