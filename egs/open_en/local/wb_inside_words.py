#!/usr/bin/env python3
"""Where the encoder writes a word boundary inside a word: its best paths against the G2P units.

    python3 local/wb_inside_words.py --units dump/arctic_train/units --hyp dump/arctic_train/units_hyp \
        --lexicon dump/lexicon.txt

Stage 1 writes each set's reference units (``units``: the transcript through the G2P, ``<wb>``
between words) and the encoder's best path (``units_hyp``). They are aligned as the WER aligns
words (:func:`tasu.score.score_texts`);
a ``<wb>`` the encoder inserted between two units of one reference word is a split of that word.
Splits are counted apart at the places :func:`tasu.simulate.compound_splits` names (the word's
spelling parts into two lexicon words there: rail|road) and elsewhere: the rates that
``simulation.wb_split`` and ``simulation.wb_insert`` simulate in training. Run it on a paired
set (arctic_train), not on a set that scores the model.
"""
from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--units", type=Path, required=True, help="reference units (stage 1: dump/<set>/units)")
    ap.add_argument("--hyp", type=Path, required=True, help="the encoder's best paths (dump/<set>/units_hyp)")
    ap.add_argument("--lexicon", type=Path, required=True, help="the training lexicon, with letters")
    ap.add_argument("--wb", default="<wb>")
    args = ap.parse_args(argv)
    from tasu.data import read_kv
    from tasu.g2p import read_lexicon
    from tasu.score import score_texts
    from tasu.simulate import compound_splits

    try:
        lexicon, letters = read_lexicon(args.lexicon)
        # Kaldi tables: an error names the file and line
        ref = {k: v.split() for k, v in read_kv(args.units).items()}
        hyp = {k: v.split() for k, v in read_kv(args.hyp, allow_empty_value=True).items()}
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    index: dict[str, int] = {}
    for units in lexicon.values():
        for u in units:
            index.setdefault(u, len(index))
    splits = compound_splits(lexicon, letters, index)
    common = sorted(set(ref) & set(hyp))
    # units aligned as the WER aligns words (the same alignment tasu.bin.estimate_confusions counts)
    scored = score_texts({u: " ".join(ref[u]) for u in common}, {u: " ".join(hyp[u]) for u in common},
                         normalize=False)
    alignments = {d.uttid: d.ops for d in scored.details}
    words = splittable = at_split = elsewhere = 0
    examples: collections.Counter[str] = collections.Counter()
    missing = sorted(set(ref) - set(hyp))
    for uid in common:
        r = ref[uid]
        word_of, pos_in = [], []  # per reference unit: its word's index and place in it (-1: a <wb>)
        w = p = 0
        for u in r:
            if u == args.wb:
                w, p = w + 1, 0
                word_of.append(-1)
                pos_in.append(-1)
            else:
                word_of.append(w)
                pos_in.append(p)
                p += 1
        inside: dict[int, set[int]] = collections.defaultdict(set)
        nxt = 0  # the reference unit the alignment is at
        for op, _, h in alignments[uid]:
            if op != "I":
                nxt += 1
            elif h == args.wb and 0 < nxt < len(r) and word_of[nxt] >= 0 and word_of[nxt - 1] == word_of[nxt]:
                inside[word_of[nxt]].add(pos_in[nxt])
        word_units = " ".join(r).split(f" {args.wb} ")
        for k, wu in enumerate(word_units):
            ids = tuple(index.get(u, -1) for u in wu.split())
            places = set(splits.get(ids, ()))
            words += 1
            splittable += bool(places)
            if inside.get(k):
                if inside[k] & places:
                    at_split += 1
                else:
                    elsewhere += 1
                examples[wu] += 1
    print(f"{words} words of {len(set(ref) & set(hyp))} utterances ({len(missing)} without a best path, skipped)")
    print(f"{splittable} words part into two lexicon words; the encoder wrote a {args.wb} at that place in "
          f"{at_split} ({100 * at_split / max(splittable, 1):.1f} %)")
    print(f"a {args.wb} elsewhere inside a word: {elsewhere} of {words} words "
          f"({100 * elsewhere / max(words, 1):.2f} %)")
    print("most often split:", ", ".join(f"{w.replace(' ', '')} ({c})" for w, c in examples.most_common(10)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
