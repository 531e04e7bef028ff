#!/usr/bin/env python3
"""Hotword lists of a domain's text, one word a line (the adaptation table, RESULTS.md):

- the words a lexicon lacks (``--lexicon``): "the adaptation text's words outside the training
  lexicon";
- with ``--train_text``, also the words outside its ``--common`` most frequent (the biasing
  protocol's "rare", :mod:`tasu.bin.make_bias_lists`): "the adaptation text's rare words", the
  words of the domain a general model is least likely to write.

    python3 local/oov_words.py --text data/asterisk_adapt_text/sentences.txt --lexicon dump/lexicon.txt \
        --out data/asterisk_adapt_text/hotwords_oov.txt
    python3 local/oov_words.py --text data/asterisk_adapt_text/sentences.txt --lexicon dump/lexicon.txt \
        --train_text local/text/train.text.xz --out data/asterisk_adapt_text/hotwords_rare.txt
"""
from __future__ import annotations

import argparse
from pathlib import Path

from tasu.bin.make_bias_lists import common_words, count_words
from tasu.fileio import atomic_write_text
from tasu.g2p import read_lexicon
from tasu.units import text_words


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--text", type=Path, required=True, help="one sentence a line")
    ap.add_argument("--lexicon", type=Path, required=True)
    ap.add_argument("--train_text", type=Path, help="a Kaldi text (ids first; .xz too): also its rare words")
    ap.add_argument("--common", type=int, default=5000, help="the most frequent words that are not rare")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    known = read_lexicon(args.lexicon)[0]
    common = common_words(count_words(args.train_text, has_ids=True), args.common) if args.train_text else None
    words = sorted({w for line in args.text.read_text(encoding="utf-8").splitlines() for w in text_words(line)})
    out = [w for w in words if w not in known or (common is not None and w not in common)]
    atomic_write_text(args.out, "".join(w + "\n" for w in out))
    what = "not in " + str(args.lexicon) + (f" or not among the {args.common} commonest of {args.train_text}"
                                            if common is not None else "")
    print(f"{args.out}: {len(out)} of the {len(words)} words of {args.text} are {what}")


if __name__ == "__main__":
    main()
