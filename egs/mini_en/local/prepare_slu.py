#!/usr/bin/env python3
"""Spoken language understanding data for mini_en: SLURP-style voice-assistant requests.

Writes
- ``data/slu_train``: text only, ``text`` + ``intent`` (the training side of the intent task);
- ``data/slu_test``: espeak-ng speech (the test voices) + ``text`` + ``intent``; none of its
  sentences occurs in ``slu_train``;
- ``data/train_mt``: ``data/train`` and ``data/slu_train`` together, ``text`` for every
  sentence and ``intent`` for the SLU ones (multi-task ASR + intent training);
- ``data/intents.txt``: the closed label set (SLURP's ``scenario_action`` names).

The requests come from templates written for this recipe (``conf/slu.yaml``), not from SLURP
itself, which is not available offline; the labels follow SLURP's naming.
"""
from __future__ import annotations

import argparse
import itertools
import logging
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prepare_data import make_speech_set, normalise  # noqa: E402

from tasu.config import read_config_data
from tasu.data import DataDir, write_data_dir  # noqa: E402


def expand(template: str, slots: dict[str, list[str]]) -> list[str]:
    """Every filling of ``{slot}`` fields of ``template``."""
    names = re.findall(r"{(\w+)}", template)
    out = []
    for values in itertools.product(*(slots[n] for n in names)):
        s = template
        for n, v in zip(names, values):
            s = s.replace("{" + n + "}", v, 1)
        out.append(" ".join(s.split()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=Path("conf/slu.yaml"))
    ap.add_argument("--data_config", type=Path, default=Path("conf/data.yaml"), help="voices, speed, pitch")
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--wav_dir", type=Path, default=Path("data/wav"))
    ap.add_argument("--n_train", type=int, default=0, help="cap on training requests (0: config)")
    ap.add_argument("--n_test", type=int, default=0, help="cap on test requests (0: config)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cfg = read_config_data(args.config)  # base: resolved, as every tasu config
    dcfg = read_config_data(args.data_config)
    rng = random.Random(cfg["seed"])

    by_intent = {}
    for intent, templates in cfg["intents"].items():
        sents = sorted({normalise(s) for t in templates for s in expand(t, cfg["slots"])})
        rng.shuffle(sents)
        by_intent[intent] = sents
    # a test share of every intent first, then training requests round-robin over intents,
    # so that small intents are not swamped by the ones with many fillings
    n_test = args.n_test or cfg["n_test"]
    n_train = args.n_train or cfg["n_train"]
    intents = sorted(by_intent)
    per_intent = -(-n_test // len(intents))
    test = [(by_intent[i][k], i) for k in range(per_intent) for i in intents][:n_test]
    short = [i for i in intents if len(by_intent[i]) < 2 * per_intent]
    if short:
        raise SystemExit(f"{args.config}: intents {short} have fewer than {2 * per_intent} distinct requests")
    used = {s for s, _ in test}
    pools = {i: [s for s in by_intent[i] if s not in used] for i in intents}
    train = []
    for k in itertools.count():
        if len(train) >= n_train or all(k >= len(p) for p in pools.values()):
            break
        train += [(pools[i][k], i) for i in intents if k < len(pools[i])]
    train = train[:n_train]
    assert not {s for s, _ in train} & used

    ids = [f"slu-{i:05d}" for i in range(len(train))]
    write_data_dir(args.data / "slu_train", text={u: s for u, (s, _) in zip(ids, train)})
    (args.data / "slu_train" / "intent").write_text("".join(f"{u} {i}\n" for u, (_, i) in zip(ids, train)))
    make_speech_set("slu_test", [s for s, _ in test], dcfg, args.data, args.wav_dir, random.Random(cfg["seed"] + 1))
    test_ids = sorted(DataDir.load(args.data / "slu_test", require=("text",)).text)
    # make_speech_set names utterances <voice>-slu_test-<index>: map them back to the intents
    intent_of = {u: test[int(u.rsplit("-", 1)[1])][1] for u in test_ids}
    (args.data / "slu_test" / "intent").write_text("".join(f"{u} {intent_of[u]}\n" for u in test_ids))
    (args.data / "intents.txt").write_text("".join(f"{i}\n" for i in intents))

    # multi-task training set: the ASR training text and the SLU requests
    base = DataDir.load(args.data / "train", require=("text",)).text
    text = {**base, **{u: s for u, (s, _) in zip(ids, train)}}
    write_data_dir(args.data / "train_mt", text=dict(sorted(text.items())))
    (args.data / "train_mt" / "intent").write_text("".join(f"{u} {i}\n" for u, (_, i) in zip(ids, train)))
    logging.info("slu_train: %d requests, slu_test: %d, %d intents; train_mt: %d sentences",
                 len(train), len(test), len(intents), len(text))


if __name__ == "__main__":
    main()
