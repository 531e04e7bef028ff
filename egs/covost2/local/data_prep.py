#!/usr/bin/env python3
"""Stage 0 of covost2: Kaldi data dirs from CoVoST 2 (English -> X) and Common Voice.

CoVoST 2's ``get_covost_splits.py`` (github.com/facebookresearch/covost) writes, for a pair
``en_<tgt>``, ``covost_v2.en_<tgt>.{train,dev,test}.tsv``: tab-separated, a header line
``path sentence translation client_id``, one clip a line (``path``: the Common Voice clip's file
name under ``<cv>/en/clips/``; ``sentence``: its English transcript; ``translation``; ``client_id``:
the speaker's hash). The locations are ``COVOST`` and ``COMMONVOICE`` of ``db.sh``.

Written, per pair (``--tgt de`` or ``zh-CN``; the dir names use ``de``/``zh``):

- ``data/train_en_<tgt>`` (text only: TASU trains from text): ``text`` (the English transcript)
  and ``translation`` of every train line; a line whose sentence is also a dev or test sentence
  (the normalised match of :class:`tasu.textnorm.HeldoutFilter`) is dropped and counted in
  ``data/train_en_<tgt>/dropped``. Its audio is never read.
- ``data/{dev,test}_en_<tgt>``: ``wav.scp`` (the mp3 clip, read as it is), ``text``,
  ``translation``, ``utt2spk``. The speaker is the first 16 characters of ``client_id``; the
  utterance id is ``<speaker>-<clip name without .mp3>``.

A malformed release stops with an error naming the file and line: a missing file, text that is
not UTF-8, a header other than the above, a line without four fields, an empty sentence or
translation, a repeated clip, a clip of a dev/test line that is missing. Data dirs are written
atomically: a failed run leaves no half-written table.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tasu.data import write_data_dir
from tasu.fileio import atomic_write_text
from tasu.textnorm import HeldoutFilter

log = logging.getLogger("data_prep")
HEADER = ["path", "sentence", "translation", "client_id"]


class CorpusError(ValueError):
    """A malformed release; the message starts with the file (and line)."""


def read_tsv(path: Path) -> list[tuple[str, str, str, str, str]]:
    """``(uid, clip, sentence, translation, speaker)`` of each line, checked."""
    if not path.is_file():
        raise CorpusError(f"{path}: no such file (is COVOST in db.sh the dir of get_covost_splits.py's output?)")
    raw = path.read_bytes()
    try:
        lines = raw.decode("utf-8").split("\n")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise CorpusError(f"{path}:{line}: not valid UTF-8") from None
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or lines[0].rstrip("\r").split("\t") != HEADER:
        got = lines[0][:80] if lines else "an empty file"
        raise CorpusError(f"{path}:1: expected the header {' '.join(HEADER)} (tab-separated), got {got!r}")
    out, seen = [], {}
    for n, line in enumerate(lines[1:], 2):
        fields = line.rstrip("\r").split("\t")
        if len(fields) != 4:
            raise CorpusError(f"{path}:{n}: expected 4 tab-separated fields, got {len(fields)}")
        clip, sentence, translation, client = (" ".join(f.split()) for f in fields)
        if not clip or "/" in clip or " " in clip:
            raise CorpusError(f"{path}:{n}: bad clip name {clip!r}")
        if not sentence or not translation:
            raise CorpusError(f"{path}:{n}: empty {'sentence' if not sentence else 'translation'}")
        if not client or " " in client:
            raise CorpusError(f"{path}:{n}: bad client_id {client!r}")
        if clip in seen:
            raise CorpusError(f"{path}:{n}: clip {clip} repeats (first on line {seen[clip]})")
        seen[clip] = n
        spk = client[:16]
        stem = clip.rsplit(".", 1)[0]
        out.append((f"{spk}-{stem}", clip, sentence, translation, spk))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--covost", type=Path, required=True, help="dir of covost_v2.en_<tgt>.<split>.tsv (COVOST)")
    ap.add_argument("--clips", type=Path, required=True, help="Common Voice's en/clips dir (COMMONVOICE/en/clips)")
    ap.add_argument("--tgt", required=True, help="target language as CoVoST names it: de, zh-CN, ja, ...")
    ap.add_argument("--data", type=Path, default=Path("data"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    pair = f"en_{args.tgt.split('-')[0]}"
    try:  # everything is read and checked before anything is written
        rows = {s: read_tsv(args.covost / f"covost_v2.en_{args.tgt}.{s}.tsv") for s in ("train", "dev", "test")}
        for s in ("dev", "test"):
            for uid, clip, *_ in rows[s]:
                if not (args.clips / clip).is_file():
                    n = next(i for i, r in enumerate(rows[s], 2) if r[0] == uid)
                    raise CorpusError(f"{args.covost / f'covost_v2.en_{args.tgt}.{s}.tsv'}:{n}: no audio "
                                      f"{args.clips / clip} (is COMMONVOICE in db.sh right?)")
    except (CorpusError, OSError) as e:
        log.error("%s", e)
        return 1
    heldout = HeldoutFilter()
    for s in ("dev", "test"):
        heldout.add(r[2] for r in rows[s])
        write_data_dir(args.data / f"{s}_{pair}", wav_scp={r[0]: str((args.clips / r[1]).resolve()) for r in rows[s]},
                       text={r[0]: r[2] for r in rows[s]}, utt2spk={r[0]: r[4] for r in rows[s]},
                       extra={"translation": {r[0]: r[3] for r in rows[s]}})
        log.info("%s_%s: %d clips, %d speakers", s, pair, len(rows[s]), len({r[4] for r in rows[s]}))
    train = [r for r in rows["train"] if not heldout.hits(r[2])]
    dropped = len(rows["train"]) - len(train)
    name = f"train_{pair}"
    write_data_dir(args.data / name, text={r[0]: r[2] for r in train}, utt2spk={r[0]: r[4] for r in train},
                   extra={"translation": {r[0]: r[3] for r in train}})
    atomic_write_text(args.data / name / "dropped",
                      f"{dropped} lines held out (their sentence is a dev/test sentence)\n")
    log.info("%s: %d (transcript, translation) pairs (text only), %d dropped as held-out", name, len(train), dropped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
