"""Word errors by how often each reference word occurs in the training text.

    python -m tasu.bin.errors_by_count --train_text data/train/text \\
        --ref data/arctic_dev/text --hyp exp/x/decode_arctic_dev/text [--ref ... --hyp ...] \\
        [--edges 0 1 10 100] [--out exp/x/errors_by_count.md]

For each (ref, hyp) pair: the reference words in each count bin (0, 1-9, 10-99, 100+ by default),
their share, and the percent substituted or deleted. Words are counted after the scoring
normalisation (:func:`tasu.textnorm.normalize_text`), the training text is streamed. A model that
misreads mostly the words it has rarely read needs more (or more varied) text; one that misreads
common words too needs better acoustics or more noise in training.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from tasu.data import read_table_lines, stream_table
from tasu.fileio import atomic_write_text
from tasu.score import CountBin, errors_by_count, read_text, score_texts
from tasu.textnorm import normalize_text


def count_words(text: Path) -> Counter[str]:
    """Normalised word -> occurrences over a Kaldi text table (streamed)."""
    counts: Counter[str] = Counter()
    for line in stream_table(text, allow_empty_value=True):
        counts.update(normalize_text(line.value).split())
    return counts


def format_table(name: str, bins: list[CountBin]) -> str:
    """One markdown table: bin, words, share, wrong."""
    total = sum(b.n_words for b in bins) or 1
    rows = [f"### {name}", "", "| training count | ref words | share | wrong |", "|---|---:|---:|---:|"]
    rows += [f"| {b.label} | {b.n_words} | {100.0 * b.n_words / total:.1f} % | {b.error_rate:.1f} % |"
             for b in bins]
    return "\n".join(rows) + "\n"


def report(train_text: Path, pairs: list[tuple[Path, Path]], edges: list[int]) -> str:
    """The markdown tables of every (ref, hyp) pair against the training text's counts."""
    for ref, hyp in pairs:  # read_text's own errors name no file for bytes that are not UTF-8
        read_table_lines(ref)
        read_table_lines(hyp)
    counts = count_words(train_text)
    tables = [f"Reference words by their count in {train_text} ({sum(counts.values())} words, "
              f"{len(counts)} distinct), and the percent of them substituted or deleted.\n"]
    for ref, hyp in pairs:
        bins = errors_by_count(score_texts(read_text(ref), read_text(hyp)), counts, edges)
        tables.append(format_table(f"{hyp} against {ref}", bins))
    return "\n".join(tables)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasu.bin.errors_by_count", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_text", type=Path, required=True, help="Kaldi text the model was trained on")
    parser.add_argument("--ref", type=Path, action="append", required=True, help="reference text (repeatable)")
    parser.add_argument("--hyp", type=Path, action="append", required=True,
                        help="hypothesis text, one per --ref, in the same order")
    parser.add_argument("--edges", type=int, nargs="+", default=[0, 1, 10, 100],
                        help="lower bounds of the count bins, ascending from 0 (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=None, help="markdown file to write the tables to")
    args = parser.parse_args(argv)
    if len(args.ref) != len(args.hyp):
        parser.error(f"{len(args.ref)} --ref but {len(args.hyp)} --hyp: give one --hyp per --ref")
    try:
        text = report(args.train_text, list(zip(args.ref, args.hyp)), args.edges)
    except (OSError, ValueError) as e:  # DataError (a ValueError) names file:line
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.out is not None:
        atomic_write_text(args.out, text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
