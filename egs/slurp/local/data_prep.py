#!/usr/bin/env python3
"""Stage 0 of slurp: Kaldi data dirs from SLURP's release files.

SLURP (GitHub ``pswietojanski/slurp``) ships ``dataset/slurp/{train,train_synthetic,devel,test}.jsonl``,
one JSON object a line per *sentence*::

    {"slurp_id": 13804, "sentence": "...", "scenario": "qa", "action": "currency", "intent": "qa_currency",
     "tokens": [{"surface": "siri", ...}, ...], "entities": [...],
     "recordings": [{"file": "audio-1434542201-headset.flac", ...}, ...]}

and the audio as ``scripts/download_audio.sh`` unpacks it: ``<audio>/slurp_real/<file>`` (people
reading the sentences, close-talk ``-headset`` and far-field takes) and ``<audio>/slurp_synth/``
(synthetic speech of ``train_synthetic``). The layout is ``SLURP`` and ``SLURP_AUDIO`` of ``db.sh``.

Written data dirs:

- ``data/train`` (text only: TASU trains from text): one utterance per sentence of ``train``
  (+ ``train_synthetic`` with ``--synthetic``), id ``slurp-<slurp_id>``, its audio never read.
  A sentence that is also a sentence of ``devel`` or ``test`` (the normalised match of
  :class:`tasu.textnorm.HeldoutFilter`) is dropped and counted in ``data/train/dropped``.
- ``data/devel``, ``data/test``: one utterance per *recording*, as SLURP scores them (its
  evaluation indexes predictions by file name); the utterance id is the file's stem, which is
  also its speaker (the release has no speaker ids; per-speaker statistics are not used).

Each dir holds ``text`` (the tokens' surfaces joined by spaces, the reference of SLURP's own
scorer) and the answers of the SLU tasks: ``scenario``, ``action`` and ``intent``. The intent is
``<scenario>_<action>``, as SLURP's ``scripts/evaluation`` builds it; the release's own
``intent`` field disagrees with that for some sentences (30 of devel's 2 033), and those are
counted in the log, not used. ``data/{scenarios,actions,intents}.txt`` are the closed label
sets over all splits (the tasks in ``conf/tasks.yaml`` check answers against them).

A malformed corpus stops with an error naming the file and line: text that is not UTF-8 or not
JSON, a missing field or one of the wrong type, a repeated ``slurp_id``, a label with white
space, a recording that repeats or whose flac is missing, a sentence without words. Data dirs
are written atomically: a failed run leaves no half-written table.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from tasu.data import write_data_dir
from tasu.fileio import atomic_write_text
from tasu.textnorm import HeldoutFilter

log = logging.getLogger("data_prep")
TASKS = ("scenario", "action", "intent")


class CorpusError(ValueError):
    """A malformed corpus; the message starts with the file (and line)."""


@dataclass(frozen=True)
class Sentence:
    slurp_id: int
    text: str
    scenario: str
    action: str
    files: tuple[str, ...]
    where: str  # file:line

    @property
    def intent(self) -> str:
        return f"{self.scenario}_{self.action}"


def _field(obj: dict, name: str, kind: type, where: str):
    if name not in obj:
        raise CorpusError(f"{where}: no {name!r} field")
    v = obj[name]
    if not isinstance(v, kind) or isinstance(v, bool):
        raise CorpusError(f"{where}: {name!r} is {type(v).__name__}, expected {kind.__name__}")
    return v


def _label(obj: dict, name: str, where: str) -> str:
    v = _field(obj, name, str, where)
    if not v or v != "".join(v.split()):
        raise CorpusError(f"{where}: {name} {v!r} is empty or holds white space")
    return v


def read_jsonl(path: Path) -> tuple[list[Sentence], int]:
    """The sentences of one release file, checked; and how many have an ``intent`` field that is
    not ``<scenario>_<action>``."""
    if not path.is_file():
        raise CorpusError(f"{path}: no such file (is SLURP in db.sh the dir of the slurp repository?)")
    raw = path.read_bytes()
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise CorpusError(f"{path}:{line}: not valid UTF-8") from None
    out, seen, odd = [], {}, 0
    for n, line in enumerate(lines, 1):
        where = f"{path}:{n}"
        if not line.strip():
            raise CorpusError(f"{where}: blank line")
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise CorpusError(f"{where}: not JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(obj, dict):
            raise CorpusError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        sid = _field(obj, "slurp_id", int, where)
        if sid in seen:
            raise CorpusError(f"{where}: slurp_id {sid} repeats (first at line {seen[sid]})")
        seen[sid] = n
        tokens = _field(obj, "tokens", list, where)
        words = []
        for t in tokens:
            if not isinstance(t, dict) or not isinstance(t.get("surface"), str):
                raise CorpusError(f"{where}: a token without a 'surface' string")
            words += t["surface"].split()
        if not words:
            raise CorpusError(f"{where}: sentence {sid} has no words")
        scenario, action = _label(obj, "scenario", where), _label(obj, "action", where)
        intent = obj.get("intent")
        odd += intent != f"{scenario}_{action}"
        files = []
        for r in _field(obj, "recordings", list, where):
            f = r.get("file") if isinstance(r, dict) else None
            if not isinstance(f, str) or not f.endswith(".flac") or "/" in f or len(f.split()) != 1:
                raise CorpusError(f"{where}: a recording without a 'file' flac name: {r!r}")
            files.append(f)
        out.append(Sentence(sid, " ".join(words), scenario, action, tuple(files), where))
    return out, odd


def speech_set(sentences: list[Sentence], audio: Path) -> dict[str, dict[str, str]]:
    """Tables of a set decoded from audio: one utterance per recording."""
    tables: dict[str, dict[str, str]] = {k: {} for k in ("wav_scp", "text", "utt2spk", *TASKS)}
    where: dict[str, str] = {}
    for s in sentences:
        for f in s.files:
            uid = f[:-len(".flac")]
            if uid in where:
                raise CorpusError(f"{s.where}: recording {f} repeats (first at {where[uid]})")
            where[uid] = s.where
            path = audio / f
            if not path.is_file():
                raise CorpusError(f"{s.where}: no audio {path} (is SLURP_AUDIO in db.sh the dir that holds "
                                  f"slurp_real/?)")
            tables["wav_scp"][uid] = str(path.resolve())
            tables["text"][uid] = s.text
            tables["utt2spk"][uid] = uid
            for k in TASKS:
                tables[k][uid] = getattr(s, k)
    return tables


def text_set(sentences: list[Sentence], heldout: HeldoutFilter) -> tuple[dict[str, dict[str, str]], int]:
    """Tables of the text-only training set (one utterance per sentence), held-out sentences dropped."""
    tables: dict[str, dict[str, str]] = {k: {} for k in ("text", "utt2spk", *TASKS)}
    dropped = 0
    for s in sentences:
        if heldout.hits(s.text):
            dropped += 1
            continue
        uid = f"slurp-{s.slurp_id:06d}"
        tables["text"][uid] = s.text
        tables["utt2spk"][uid] = uid
        for k in TASKS:
            tables[k][uid] = getattr(s, k)
    return tables, dropped


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slurp", type=Path, required=True, help="the slurp repository dir (SLURP in db.sh)")
    ap.add_argument("--audio", type=Path, required=True, help="the dir holding slurp_real/ (SLURP_AUDIO in db.sh)")
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--synthetic", choices=("true", "false"), default="true",
                    help="add the sentences of train_synthetic.jsonl to the training text (default true)")
    ap.add_argument("--test_sets", nargs="*", default=["devel", "test"],
                    help="release files decoded from audio (default devel test)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    release = args.slurp / "dataset" / "slurp"
    train_files = ["train"] + (["train_synthetic"] if args.synthetic == "true" else [])
    try:  # everything is read and checked before anything is written
        sets, odd = {}, {}
        for name in dict.fromkeys(train_files + args.test_sets):
            sets[name], odd[name] = read_jsonl(release / f"{name}.jsonl")
        speech = {name: speech_set(sets[name], args.audio / "slurp_real") for name in args.test_sets}
        heldout = HeldoutFilter()
        for name in args.test_sets:
            heldout.add(s.text for s in sets[name])
        train_sents = [s for name in train_files for s in sets[name]]
        train, dropped = text_set(train_sents, heldout)
    except (CorpusError, OSError) as e:
        log.error("%s", e)
        return 1
    for name in sets:
        if odd[name]:
            log.info("%s.jsonl: %d of %d sentences have an 'intent' field that is not <scenario>_<action>; "
                     "the intent used is <scenario>_<action>, as SLURP's scorer builds it", name, odd[name],
                     len(sets[name]))
    for name, tables in speech.items():
        write_data_dir(args.data / name, wav_scp=tables["wav_scp"], text=tables["text"], utt2spk=tables["utt2spk"],
                       extra={k: tables[k] for k in TASKS})
        log.info("%s: %d recordings of %d sentences -> %s", name, len(tables["text"]), len(sets[name]),
                 args.data / name)
    write_data_dir(args.data / "train", text=train["text"], utt2spk=train["utt2spk"],
                   extra={k: train[k] for k in TASKS})
    atomic_write_text(args.data / "train" / "dropped",
                      f"{dropped} sentences held out (equal to or overlapping a sentence of "
                      f"{' '.join(args.test_sets)})\n")
    log.info("train: %d sentences of %s (text only), %d dropped as held-out -> %s", len(train["text"]),
             " + ".join(train_files), dropped, args.data / "train")
    for task, fname in (("scenario", "scenarios"), ("action", "actions"), ("intent", "intents")):
        labels = sorted({getattr(s, task) for v in sets.values() for s in v})
        atomic_write_text(args.data / f"{fname}.txt", "".join(f"{x}\n" for x in labels))
        log.info("%d %s labels -> %s", len(labels), task, args.data / f"{fname}.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
