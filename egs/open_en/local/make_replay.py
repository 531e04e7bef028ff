#!/usr/bin/env python3
"""A seeded sample of the training text, one sentence a line (xz), packed into the model zip as
``replay.txt.xz`` (stage 6, ``tasu.bin.pack --replay``): what ``tasu-adapt`` mixes into a domain's
text so that the adapted model keeps general English.

    python3 local/make_replay.py --text local/text/train.text.xz --n 20000 --seed 0 --out exp/replay.txt.xz
"""
from __future__ import annotations

import argparse
import lzma
import random
from pathlib import Path

from tasu.fileio import atomic_write_bytes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--text", type=Path, required=True, help="Kaldi text (`<id> sentence` lines), .xz or plain")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    opener = lzma.open if args.text.suffix == ".xz" else open
    with opener(args.text, "rt", encoding="utf-8") as f:
        sents = [line.split(" ", 1)[1].strip() for line in f if " " in line.strip()]
    sample = random.Random(args.seed).sample(sents, min(args.n, len(sents)))
    atomic_write_bytes(args.out, lzma.compress(("\n".join(sample) + "\n").encode("utf-8"), preset=9))
    print(f"{args.out}: {len(sample)} of {len(sents)} sentences of {args.text} (seed {args.seed})")


if __name__ == "__main__":
    main()
