#!/usr/bin/env python3
"""Text version of a multiple-choice task, to measure the LLM on it before any speech version.

``data/mcq_text``: ``text`` holds a question and four options, ``answer`` the letter of the
right one. The questions ask which word a WordNet 3.0 gloss defines (Debian ``wordnet-base``,
``data.noun``), with three other nouns of the recipe's vocabulary (``data/vocab.txt``) as
distractors:

    which word means: fruit with red or yellow or green skin and sweet to tart crisp whitish flesh?
    A) apple B) river C) teacher D) window

Only when the LLM answers the text version well above chance (25 %) is a spoken version
worth building (issue: "if the LLM can do the task from text at all").
"""
from __future__ import annotations

import argparse
import random
import re
from pathlib import Path

from tasu.data import write_data_dir


def noun_glosses(path: Path, vocab: set[str]) -> dict[str, str]:
    """First-sense gloss (definition, no examples) of each single-word noun in ``vocab``."""
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("  ") or "|" not in line:
            continue
        fields, gloss = line.split("|", 1)
        f = fields.split()
        n_words = int(f[3], 16)
        words = [f[4 + 2 * i].lower() for i in range(n_words)]
        definition = gloss.split(";")[0].strip().strip('"')
        for w in words:
            if w in vocab and w not in out and w not in definition.split() and re.fullmatch(r"[a-z]+", w):
                out[w] = definition
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wordnet_dir", type=Path, default=Path("/usr/share/wordnet"))
    ap.add_argument("--vocab", type=Path, default=Path("data/vocab.txt"))
    ap.add_argument("--out", type=Path, default=Path("data/mcq_text"))
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    vocab = set(args.vocab.read_text().split())
    glosses = noun_glosses(args.wordnet_dir / "data.noun", vocab)
    rng = random.Random(args.seed)
    words = sorted(glosses)
    text, answer = {}, {}
    for i, w in enumerate(rng.sample(words, min(args.n, len(words)))):
        options = [w] + rng.sample([x for x in words if x != w], 3)
        rng.shuffle(options)
        uid = f"mcq-{i:04d}"
        text[uid] = (f"which word means: {glosses[w]}? " +
                     " ".join(f"{'ABCD'[k]}) {o}" for k, o in enumerate(options)))
        answer[uid] = "ABCD"[options.index(w)]
    write_data_dir(args.out, text=text)
    (args.out / "answer").write_text("".join(f"{u} {a}\n" for u, a in sorted(answer.items())))
    print(f"{args.out}: {len(text)} questions from {len(glosses)} glossed nouns")


if __name__ == "__main__":
    main()
