#!/usr/bin/env python3
"""Stage 0 of mmsu: a Kaldi data dir from MMSU's items (spoken multiple-choice questions).

MMSU (arXiv 2506.04779; huggingface.co/datasets/ddwang2000/MMSU) gives one item per question:
``id``, ``audio_path`` (relative to the release dir, or absolute), ``question``, ``choice_a`` ..
``choice_d``, ``answer_gt`` (the text of the right choice, or its letter), ``task_name``,
``category`` (and more taxonomy fields, not used here).
Items come as a JSON list or as JSON lines (``--items``; ``MMSU_ITEMS`` of ``db.sh``).

``data/<name>`` gets ``wav.scp``, the prompt fields ``question`` and ``choice_a`` .. ``choice_d``
(white space collapsed to one line), ``answer`` (the right option's letter, A-D), ``task_name``
and ``category`` (spaces as ``_``; for accuracy per task and category: ``local/score_categories.py``). There is
no ``text``: MMSU has no transcripts, so no WER is computed. The speaker of each item is the
item itself.

A malformed item stops with an error naming the file and line (JSON lines) or the item's index
(a JSON list): not JSON or not UTF-8, a missing or empty field, an id that repeats or holds white
space, an ``answer_gt`` that is neither a letter A-D nor one of the choices (or matches two), an
audio file that is missing. The data dir is written atomically: no half-written table.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from tasu.data import write_data_dir

log = logging.getLogger("data_prep")
CHOICES = ("choice_a", "choice_b", "choice_c", "choice_d")
LETTERS = "ABCD"
FIELDS = ("id", "audio_path", "question", *CHOICES, "answer_gt", "task_name", "category")


class CorpusError(ValueError):
    """A malformed item; the message starts with the file and line (or item index)."""


def read_items(path: Path) -> list[tuple[str, dict]]:
    """``(where, item)`` of every item of a JSON list or JSON-lines file."""
    if not path.is_file():
        raise CorpusError(f"{path}: no such file (is MMSU_ITEMS in db.sh the item file?)")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise CorpusError(f"{path}:{line}: not valid UTF-8") from None
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as e:
            raise CorpusError(f"{path}:{e.lineno}: not JSON ({e.msg})") from None
        return [(f"{path}: item {i}", x) for i, x in enumerate(items)]
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append((f"{path}:{n}", json.loads(line)))
        except json.JSONDecodeError as e:
            raise CorpusError(f"{path}:{n}: not JSON ({e.msg} at column {e.colno})") from None
    return out


def one_line(value, name: str, where: str) -> str:
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise CorpusError(f"{where}: {name} is {type(value).__name__}, expected text")
    s = " ".join(str(value).split())
    if not s:
        raise CorpusError(f"{where}: {name} is empty")
    return s


def answer_letter(item: dict, choices: list[str], where: str) -> str:
    gt = one_line(item["answer_gt"], "answer_gt", where)
    if gt in LETTERS:
        return gt
    hits = [LETTERS[i] for i, c in enumerate(choices) if c == gt]
    if len(hits) != 1:
        raise CorpusError(f"{where}: answer_gt {gt!r} is " + ("none of the choices" if not hits else
                          f"choices {' and '.join(hits)} at once") + " (nor a letter A-D)")
    return hits[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=Path, required=True, help="MMSU's item file (JSON list or JSON lines)")
    ap.add_argument("--audio_root", type=Path, help="the dir audio_path is relative to (default: the item file's)")
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--name", default="mmsu", help="data dir name (default mmsu)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    root = args.audio_root or args.items.parent
    tables: dict[str, dict[str, str]] = {k: {} for k in ("wav_scp", "question", *CHOICES, "answer", "task_name",
                                                          "category")}
    seen: dict[str, str] = {}
    try:
        for where, item in read_items(args.items):
            if not isinstance(item, dict):
                raise CorpusError(f"{where}: expected a JSON object, got {type(item).__name__}")
            missing = [f for f in FIELDS if f not in item]
            if missing:
                raise CorpusError(f"{where}: no {missing[0]!r} field")
            uid = one_line(item["id"], "id", where)
            if " " in uid:
                raise CorpusError(f"{where}: id {uid!r} holds white space")
            if uid in seen:
                raise CorpusError(f"{where}: id {uid!r} repeats (first at {seen[uid]})")
            seen[uid] = where
            audio = Path(one_line(item["audio_path"], "audio_path", where))
            audio = audio if audio.is_absolute() else root / audio
            if not audio.is_file():
                raise CorpusError(f"{where}: no audio {audio}")
            choices = [one_line(item[c], c, where) for c in CHOICES]
            tables["wav_scp"][uid] = str(audio.resolve())
            tables["question"][uid] = one_line(item["question"], "question", where)
            for c, v in zip(CHOICES, choices):
                tables[c][uid] = v
            tables["answer"][uid] = answer_letter(item, choices, where)
            tables["task_name"][uid] = one_line(item["task_name"], "task_name", where).replace(" ", "_")
            tables["category"][uid] = one_line(item["category"], "category", where).replace(" ", "_")
    except (CorpusError, OSError) as e:
        log.error("%s", e)
        return 1
    if not seen:
        log.error("%s: no items", args.items)
        return 1
    wav = tables.pop("wav_scp")
    write_data_dir(args.data / args.name, wav_scp=wav, extra=tables)
    log.info("%s: %d items, %d tasks, %d categories -> %s", args.items, len(wav),
             len(set(tables["task_name"].values())), len(set(tables["category"].values())), args.data / args.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
