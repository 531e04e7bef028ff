#!/usr/bin/env python3
"""Stage 0 of librispeech: Kaldi data dirs from the official corpus layout.

``<corpus>/<set>/<speaker>/<chapter>/<speaker>-<chapter>-<nnnn>.flac`` with one
``<speaker>-<chapter>.trans.txt`` per chapter (``<utt id> <TRANSCRIPT>`` lines), as
openslr.org/12 unpacks (the corpus dir is ``LIBRISPEECH`` of ``db.sh``). Each speech set
(``--sets``) becomes ``data/<set, - as _>`` with:

- ``wav.scp``: ``<utt id> <flac path>`` (the toolkit reads flac directly; no ``flac -d |``),
- ``text``: the transcript as LibriSpeech writes it (upper case, apostrophes; scoring
  normalises both sides),
- ``utt2spk``/``spk2utt``: the speaker is ``<speaker>-<chapter>``, as Kaldi's and ESPnet's
  LibriSpeech recipes have it (so the speaker id is a prefix of its utterance ids).

The transcripts of ``--train_sets`` become the text-only training set ``data/<--train_name>``
(``text`` and ``utt2spk``; its audio is never read: TASU trains from text). ``--lm_text`` adds
the normalised LM text (openslr.org/11 ``librispeech-lm-norm.txt``, one
sentence a line) as text-only training sentences in ``data/<name>``; lines that hold a
sentence of a dev/test set are dropped and counted (:class:`tasu.textnorm.HeldoutFilter`).

A malformed corpus is an error naming the file (and line): a set dir that is missing or holds
no chapter, a transcript line without text, an utterance id that does not belong to its
chapter's file, a repeated id, a transcript whose flac is missing, a flac without a
transcript, text that is not UTF-8. Nothing is skipped silently; the data dirs are written
atomically, so a failed run leaves no half-written table.
"""
from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

from tasu.data import write_data_dir
from tasu.fileio import atomic_open, atomic_write_text
from tasu.textnorm import HeldoutFilter

log = logging.getLogger("data_prep")
UTT_RE = re.compile(r"(\d+)-(\d+)-(\d+)")


class CorpusError(ValueError):
    """A malformed corpus; the message starts with the file (and line)."""


def read_lines(path: Path) -> list[str]:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise CorpusError(f"{path}:{line}: not valid UTF-8") from None


def read_set(set_dir: Path) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """``(wav_scp, text, utt2spk)`` of one LibriSpeech set dir, checked."""
    if not set_dir.is_dir():
        raise CorpusError(f"{set_dir}: no such set dir (is LIBRISPEECH in db.sh the dir that holds it?)")
    wav, text, spk = {}, {}, {}
    chapters = sorted(p for p in set_dir.glob("*/*") if p.is_dir())
    if not chapters:
        raise CorpusError(f"{set_dir}: holds no <speaker>/<chapter> dirs")
    for ch in chapters:
        speaker, chapter = ch.parent.name, ch.name
        trans = ch / f"{speaker}-{chapter}.trans.txt"
        flacs = {p.stem: p for p in ch.glob("*.flac")}
        if not trans.is_file():
            raise CorpusError(f"{trans}: missing ({len(flacs)} flac files in {ch} have no transcript)")
        for n, line in enumerate(read_lines(trans), 1):
            uid, _, words = line.strip().partition(" ")
            m = UTT_RE.fullmatch(uid)
            if not line.strip() or not words.strip():
                raise CorpusError(f"{trans}:{n}: expected '<utt id> <TRANSCRIPT>', got {line!r}")
            if not m or (m.group(1), m.group(2)) != (speaker, chapter):
                raise CorpusError(f"{trans}:{n}: utterance id {uid!r} is not one of chapter {speaker}-{chapter}")
            if uid in text:
                raise CorpusError(f"{trans}:{n}: utterance id {uid!r} repeats")
            if uid not in flacs:
                raise CorpusError(f"{trans}:{n}: no audio {ch / (uid + '.flac')}")
            wav[uid], text[uid], spk[uid] = str(flacs.pop(uid).resolve()), " ".join(words.split()), \
                f"{speaker}-{chapter}"
        if flacs:
            raise CorpusError(f"{sorted(flacs.values())[0]}: no line in {trans} "
                              f"({len(flacs)} flac file(s) of this chapter have no transcript)")
    return wav, text, spk


def write_lm_text(path: Path, heldout: HeldoutFilter, out: Path) -> tuple[int, int]:
    """The LM text's lines as ``<out>/text`` (``lm-<line number>`` ids, in sorted order), streamed:
    librispeech-lm-norm.txt has 40 M lines. Held-out sentences are dropped and counted; blank
    lines are passed over. Returns (kept, dropped); the file appears only when complete."""
    kept = dropped = 0
    try:
        f = path.open("rb")
    except OSError as e:
        raise CorpusError(f"{path}: cannot read: {e.strerror or e}") from None
    with f, atomic_open(out / "text") as w:
        for n, raw in enumerate(f, 1):
            try:
                s = " ".join(raw.decode("utf-8").split())
            except UnicodeDecodeError:
                raise CorpusError(f"{path}:{n}: not valid UTF-8") from None
            if not s:
                continue
            if heldout.hits(s):
                dropped += 1
                continue
            w.write(f"lm-{n:09d} {s}\n")
            kept += 1
    return kept, dropped


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True, help="the LibriSpeech dir (LIBRISPEECH in db.sh)")
    ap.add_argument("--sets", nargs="*", default=[],
                    help="set dirs that become speech data dirs, e.g. dev-clean test-clean test-other")
    ap.add_argument("--train_sets", nargs="*", default=[],
                    help="set dirs whose transcripts make the text-only training set, e.g. train-clean-100 "
                         "train-clean-360 train-other-500")
    ap.add_argument("--train_name", default="train_960", help="data dir of the training text (default train_960)")
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--lm_text", type=Path, help="librispeech-lm-norm.txt: more text-only training sentences")
    ap.add_argument("--lm_name", default="lm_text", help="data dir of the LM text (default lm_text)")
    ap.add_argument("--heldout_sets", nargs="*", default=[],
                    help="sets whose sentences are removed from the LM text (the dev and test sets)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    texts: dict[str, dict[str, str]] = {}
    try:
        for s in args.sets:  # every set is read and checked before anything is written
            texts[s] = read_set(args.corpus / s)
        for s in args.train_sets:
            if s not in texts:
                texts[s] = read_set(args.corpus / s)
        for s in args.sets:
            wav, text, spk = texts[s]
            name = s.replace("-", "_")
            write_data_dir(args.data / name, wav_scp=wav, text=text, utt2spk=spk)
            log.info("%s: %d utterances, %d speakers (speaker-chapter) -> %s", s, len(text), len(set(spk.values())),
                     args.data / name)
        if args.train_sets:
            train = {u: t for s in args.train_sets for u, t in texts[s][1].items()}
            spk = {u: v for s in args.train_sets for u, v in texts[s][2].items()}
            write_data_dir(args.data / args.train_name, text=train, utt2spk=spk)
            log.info("%s: %d transcripts of %s (text only) -> %s", args.train_name, len(train),
                     " ".join(args.train_sets), args.data / args.train_name)
        if args.lm_text is not None:
            heldout = HeldoutFilter()
            for s in args.heldout_sets:
                heldout.add((texts[s] if s in texts else read_set(args.corpus / s))[1].values())
            kept, dropped = write_lm_text(args.lm_text, heldout, args.data / args.lm_name)
            atomic_write_text(args.data / args.lm_name / "dropped", f"{dropped} lines held out (dev/test sentences)\n")
            log.info("%s: %d sentences, %d dropped as held-out (%s)", args.lm_text, kept, dropped,
                     " ".join(args.heldout_sets) or "no held-out sets given")
    except (CorpusError, OSError) as e:
        log.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
