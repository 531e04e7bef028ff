#!/usr/bin/env python3
"""The words of a text that a lexicon lacks, one a line: the hotword list "the adaptation text's
words outside the training lexicon" of the adaptation table (RESULTS.md).

    python3 local/oov_words.py --text data/asterisk_adapt_text/sentences.txt --lexicon dump/lexicon.txt \
        --out data/asterisk_adapt_text/hotwords_oov.txt
"""
from __future__ import annotations

import argparse
from pathlib import Path

from tasu.fileio import atomic_write_text
from tasu.g2p import read_lexicon
from tasu.units import text_words


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--text", type=Path, required=True, help="one sentence a line")
    ap.add_argument("--lexicon", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    known = read_lexicon(args.lexicon)[0]
    words = sorted({w for line in args.text.read_text(encoding="utf-8").splitlines() for w in text_words(line)})
    oov = [w for w in words if w not in known]
    atomic_write_text(args.out, "".join(w + "\n" for w in oov))
    print(f"{args.out}: {len(oov)} of the {len(words)} words of {args.text} are not in {args.lexicon}")


if __name__ == "__main__":
    main()
