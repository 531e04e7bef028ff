#!/usr/bin/env python3
"""Text -> encoder units for a data dir (stage 1): ``<out>/units`` (Kaldi table).

hama: words go through the encoder's G2P once each and are memoised in a shared lexicon file.
Other encoders (``hf:<dir>``) write text with their own tokenizer; ``--lexicon`` is not used.
The text is streamed, not read whole (as large as librispeech-lm-norm's 40 M sentences): a bad
line of it stops the run with its ``file:line`` and no units file is written.
Rules for bad input: an utterance whose transcript is empty or yields no unit is skipped,
listed in ``<out>/units.skipped`` with the reason, and counted in the log. A character the
encoder's vocabulary cannot write follows ``--oov``: ``drop`` (default; counted per character
in the log), ``map`` (to its accent-stripped form or the unk token; counted) or ``fail``
(error naming the ``text`` line, the character and its position).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tasu.data import DataError, location, stream_table
from tasu.fileio import atomic_open
from tasu.units import text_words

log = logging.getLogger("tasu.make_units")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="Kaldi data dir with a `text` file")
    ap.add_argument("--out", type=Path, required=True, help="output dir (gets `units`, `units.skipped`)")
    ap.add_argument("--lexicon", type=Path, help="word -> units cache, shared across sets (hama; required there)")
    ap.add_argument("--encoder", default="hama", help="CTC encoder whose units to produce: hama (default), hf:<dir>")
    ap.add_argument("--oov", choices=("drop", "map", "fail"), default="drop",
                    help="characters the encoder's vocabulary lacks (not hama): drop with a count, map, or fail")
    ap.add_argument("--nj", type=int, default=1, help="G2P worker processes for new words (hama)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")

    text_path = args.data / "text"
    if not text_path.is_file():
        log.error("%srequired file is missing", location(text_path))
        return 1
    from tasu.encoders import build_encoder, parse_spec

    try:
        hama = parse_spec(args.encoder)[0] == "hama"
    except ValueError as e:
        ap.error(str(e))
    if hama and args.lexicon is None:
        ap.error(f"--lexicon is required for the {args.encoder} encoder")
    try:
        enc = build_encoder(args.encoder, lexicon=args.lexicon, oov=args.oov)
    except (ValueError, ImportError, OSError, RuntimeError) as e:  # the message names the encoder dir or spec
        log.error("%s", e)
        return 1
    if not hama:
        return encoder_units(enc, text_path, args)
    try:
        g2p = enc.g2p  # reads the lexicon
    except UnicodeDecodeError as e:
        data = args.lexicon.read_bytes()
        log.error("%s:%d: not valid UTF-8 (byte 0x%02x); re-encode it or delete it to rebuild the lexicon",
                  args.lexicon, data[: e.start].count(b"\n") + 1, data[e.start])
        return 1
    except ValueError as e:  # "<lexicon>:<line>: expected ..."
        log.error("%s (delete the file to rebuild the lexicon)", e)
        return 1
    try:
        words = {w for t in stream_table(text_path) for w in text_words(t.value)}
    except DataError as e:
        log.error("%s", e)
        return 1
    n_new = g2p.add_words(words, progress=True, nj=args.nj)
    log.info("%s: %d distinct words, %d new to the lexicon %s", args.data, len(words), n_new, args.lexicon)
    if g2p.unknown_symbols:
        log.warning("G2P symbols outside the %s inventory were dropped: %s", args.encoder,
                    ", ".join(f"{s!r} x{n}" for s, n in sorted(g2p.unknown_symbols.items())))

    def units(uid: str, text: str) -> tuple[str | None, str]:
        u = g2p.sentence_units(text)
        if not text_words(text):
            return None, "empty transcript after normalisation"
        return (" ".join(u), "") if u else (None, f"G2P yields no unit for: {text}")

    return write_units(text_path, units, args)


def encoder_units(enc, text_path: Path, args: argparse.Namespace) -> int:
    """Units from the encoder's own text -> units (its tokenizer), by the ``--oov`` policy."""
    if args.lexicon is not None:
        log.info("%s: --lexicon %s is not used (the encoder's tokenizer writes the units)", args.encoder, args.lexicon)

    def units(uid: str, text: str) -> tuple[str | None, str]:
        u = enc.text_to_units(text)  # oov=fail: ValueError naming the character and its position
        if not text.strip():
            return None, "empty transcript"
        return (" ".join(u), "") if u else (None, f"the {args.encoder} vocabulary writes no unit of: {text}")

    rc = write_units(text_path, units, args)
    counts = getattr(enc, "oov_counts", {})
    if counts:
        log.warning("%s: characters outside the %s vocabulary were %s (oov=%s): %s", args.data, args.encoder,
                    "mapped" if args.oov == "map" else "dropped", args.oov,
                    ", ".join(f"{c!r} x{n}" for c, n in sorted(counts.items())))
    return rc


def write_units(text_path: Path, units, args: argparse.Namespace) -> int:
    """``<out>/units`` and ``<out>/units.skipped`` from ``units(uid, text) -> (units or None,
    why skipped)`` over the streamed text, each file complete or not there; 1 when no utterance
    has units or a line of the text is bad."""
    n_units, n_skipped = 0, 0
    try:
        with atomic_open(args.out / "units") as fu, atomic_open(args.out / "units.skipped") as fs:
            for t in stream_table(text_path):
                try:
                    u, why = units(t.key, t.value)
                except ValueError as e:  # oov=fail
                    raise DataError(f"{location(text_path, t.line)}utterance {t.key}: {e}") from None
                if u is None:
                    fs.write(f"{t.key} {why}\n")
                    n_skipped += 1
                else:
                    fu.write(f"{t.key} {u}\n")
                    n_units += 1
    except DataError as e:
        log.error("%s", e)
        return 1
    log.info("%s: wrote units for %d utterances, skipped %d (see %s)", args.data, n_units,
             n_skipped, args.out / "units.skipped")
    if not n_units:
        log.error("%s: no utterance of %s yields any unit; nothing to train or score on", args.data,
                  args.data / "text")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
