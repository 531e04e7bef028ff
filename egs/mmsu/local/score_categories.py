#!/usr/bin/env python3
"""Accuracy of a decoded MMSU set per category and per task, as MMSU reports it.

    python3 local/score_categories.py --data data/mmsu --hyp exp/<model>/decode_mmsu_mmsu/text \\
        --out exp/<model>/decode_mmsu_mmsu/result_by_category.md

The option letter of each answer is read as the overall score reads it
(:func:`tasu.score.extract_choice`); a missing or unreadable answer is wrong. Writes a
markdown table (category rows, then task rows) and prints it.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

from tasu.data import read_targets
from tasu.fileio import atomic_write_text
from tasu.score import extract_choice, read_text


def table(answers: dict[str, str], hyps: dict[str, str], groups: dict[str, str], title: str) -> list[str]:
    right, total = defaultdict(int), defaultdict(int)
    for uid, gold in answers.items():
        total[groups[uid]] += 1
        right[groups[uid]] += extract_choice(hyps.get(uid, "")) == gold
    rows = [f"| {title} | #items | accuracy (%) |", "|---|---:|---:|"]
    rows += [f"| {g} | {total[g]} | {100.0 * right[g] / total[g]:.2f} |" for g in sorted(total)]
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="the set's data dir (answer, category, task_name)")
    ap.add_argument("--hyp", type=Path, required=True, help="the decoded answers (Kaldi text)")
    ap.add_argument("--out", type=Path, required=True, help="markdown file to write")
    args = ap.parse_args(argv)
    try:
        answers = read_targets(args.data, "answer")
        groups = {k: read_targets(args.data, k) for k in ("category", "task_name")}
        hyps = read_text(args.hyp)
    except (ValueError, OSError) as e:
        print(f"{sys.argv[0]}: {e}", file=sys.stderr)
        return 1
    md = "\n".join(table(answers, hyps, groups["category"], "category") + [""]
                   + table(answers, hyps, groups["task_name"], "task")) + "\n"
    atomic_write_text(args.out, md)
    print(md, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
