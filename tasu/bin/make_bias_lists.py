"""Per-utterance biasing lists of the contextual-biasing benchmark (Le et al. 2021, fbai-speech
``is21_deep_bias``): each utterance's rare reference words plus N rare distractors.

    python -m tasu.bin.make_bias_lists --text data/test/text --train_text local/text/train.text.xz \\
        --train_text_has_ids --lexicon dump/lexicon.txt [--common 5000] [--distractors 100] [--seed 0] \\
        --out data/test/bias_lists [--ref_rare_out data/test/bias_ref_rare]

Words are compared after the scoring normalisation (:func:`tasu.textnorm.normalize_text`). The
``--common`` most frequent words of the training text (ties broken alphabetically) are common,
every other word is rare. An utterance's list is the rare words of its reference (in order of
first occurrence), then ``--distractors`` words drawn without replacement from the rare lexicon
words not in that reference, by a generator seeded with ``--seed`` and the utterance id (a list
does not depend on the other utterances). Output lines: ``<uttid> w1 w2 ...``, sorted by id,
the per-utterance word-list format of hotwords and of ``python -m tasu.bin.score --bias_lists``.
``--ref_rare_out`` writes the reference's rare words alone: scoring with that file counts an
inserted distractor as an unbiased error, as fbai-speech's scorer does.
"""
from __future__ import annotations

import argparse
import logging
import lzma
import random
import sys
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from tasu.data import read_table_lines
from tasu.fileio import atomic_write_text
from tasu.g2p import read_lexicon
from tasu.score import read_text
from tasu.textnorm import normalize_text

log = logging.getLogger("tasu.make_bias_lists")


def count_words(path: Path, has_ids: bool = False) -> Counter[str]:
    """Normalised word -> occurrences over a text of one sentence a line (``.xz``: decompressed;
    ``has_ids``: a Kaldi text, each line's first token is an id and is not counted)."""
    counts: Counter[str] = Counter()
    opener = lzma.open if path.suffix == ".xz" else open
    try:
        with opener(path, "rb") as f:
            for n, data in enumerate(f, start=1):
                try:
                    line = data.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise ValueError(f"{path}:{n}: not valid UTF-8 (byte 0x{data[e.start]:02x} at column "
                                     f"{e.start + 1})") from None
                words = normalize_text("".join(line.split(maxsplit=1)[1:]) if has_ids else line).split()
                counts.update(words)
    except lzma.LZMAError as e:
        raise ValueError(f"{path}: not a valid .xz file ({e})") from None
    return counts


def common_words(counts: Mapping[str, int], n: int) -> set[str]:
    """The ``n`` most frequent words of ``counts`` (equal counts: alphabetical order)."""
    return set(sorted(counts, key=lambda w: (-counts[w], w))[:n])


def rare_words(text: str, common: Collection[str]) -> list[str]:
    """The normalised words of ``text`` not in ``common``, once each, in order of first occurrence."""
    return list(dict.fromkeys(w for w in normalize_text(text).split() if w not in common))


def distractors(pool: Sequence[str], exclude: Collection[str], n: int, seed: int, uttid: str) -> list[str]:
    """``n`` words of ``pool`` (distinct words) not in ``exclude``, drawn without replacement by a
    generator seeded with ``seed`` and ``uttid`` (all of them, in drawn order, when fewer are left).

    The first ``n`` words not excluded of a uniform sample of ``n + len(exclude)`` words: uniform
    over ``pool`` less ``exclude``, without scanning the pool for each utterance.
    """
    rng = random.Random(f"{seed}:{uttid}")  # a str seed is hashed by SHA-512: the same on every run
    return [w for w in rng.sample(pool, min(len(pool), n + len(exclude))) if w not in exclude][:n]


def make_lists(refs: Mapping[str, str], common: Collection[str], pool: Sequence[str], n_distractors: int,
               seed: int) -> dict[str, tuple[list[str], list[str]]]:
    """Utterance id -> (its reference's rare words, its distractors), for every id of ``refs``."""
    out = {}
    for uttid in sorted(refs):
        rare = rare_words(refs[uttid], common)
        out[uttid] = rare, distractors(pool, set(normalize_text(refs[uttid]).split()), n_distractors, seed, uttid)
    return out


def lexicon_pool(path: Path, common: Collection[str]) -> list[str]:
    """The lexicon's words that are one word after normalisation and not common, sorted."""
    lex, _ = read_lexicon(path)
    words = (normalize_text(w).split() for w in lex)
    return sorted({w[0] for w in words if len(w) == 1} - set(common))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasu.bin.make_bias_lists", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text", type=Path, required=True, help="Kaldi text of the test set (<uttid> <words...>)")
    parser.add_argument("--train_text", type=Path, required=True,
                        help="training text, one sentence a line (.xz read as xz) or a Kaldi text "
                             "with --train_text_has_ids")
    parser.add_argument("--train_text_has_ids", action="store_true",
                        help="--train_text lines start with an utterance id")
    parser.add_argument("--lexicon", type=Path, required=True,
                        help="lexicon (word<TAB>units...) whose rare words are the distractors")
    parser.add_argument("--common", type=int, default=5000,
                        help="this many most frequent training words are common (default: %(default)s)")
    parser.add_argument("--distractors", type=int, default=100,
                        help="distractors per utterance (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the distractor draws (default: %(default)s)")
    parser.add_argument("--out", type=Path, required=True, help="lists to write: <uttid> rare words, distractors")
    parser.add_argument("--ref_rare_out", type=Path, default=None,
                        help="also write each utterance's reference rare words alone here")
    args = parser.parse_args(argv)
    if args.common < 0 or args.distractors < 0:
        parser.error("--common and --distractors must be >= 0")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    try:
        for path in (args.text, args.lexicon):  # read_text's own errors name no file for bytes that are not UTF-8
            read_table_lines(path)
        refs = read_text(args.text)
        counts = count_words(args.train_text, args.train_text_has_ids)
        common = common_words(counts, args.common)
        pool = lexicon_pool(args.lexicon, common)
    except (OSError, ValueError) as e:  # DataError and read_lexicon's errors name file:line
        print(f"error: {e}", file=sys.stderr)
        return 1
    log.info("%s: %d words, %d distinct, the %d most frequent are common; %d rare lexicon words",
             args.train_text, sum(counts.values()), len(counts), len(common), len(pool))
    lists = make_lists(refs, common, pool, args.distractors, args.seed)
    short = [u for u, (_, d) in lists.items() if len(d) < args.distractors]
    if short:
        log.warning("%d utterances got fewer than %d distractors (the lexicon has too few rare words), e.g. %s",
                    len(short), args.distractors, short[0])
    atomic_write_text(args.out, "".join(" ".join([u, *r, *d]) + "\n" for u, (r, d) in lists.items()))
    if args.ref_rare_out is not None:
        atomic_write_text(args.ref_rare_out, "".join(" ".join([u, *r]) + "\n" for u, (r, _) in lists.items()))
    n_rare = sum(len(r) for r, _ in lists.values())
    n_ref = sum(len(normalize_text(t).split()) for t in refs.values())
    log.info("%d utterances, %d rare reference words of %d (%.1f %%), %d utterances without one; wrote %s",
             len(lists), n_rare, n_ref, 100.0 * n_rare / max(n_ref, 1),
             sum(not r for r, _ in lists.values()), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
