#!/usr/bin/env python3
"""Text -> encoder units for a data dir (stage 1): ``<out>/units`` (Kaldi table).

hama: words go through the encoder's G2P once each and are memoised in a shared lexicon file.
Other encoders (``hf:<dir>``) write text with their own tokenizer; ``--lexicon`` is not used.
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

from tasu.data import DataDir, DataError
from tasu.fileio import atomic_write_text
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

    try:
        dd = DataDir.load(args.data, require=("text",))
    except DataError as e:
        log.error("%s", e)
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
        return encoder_units(enc, dd, args)
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
    words = {w for t in dd.text.values() for w in text_words(t)}
    n_new = g2p.add_words(words, progress=True, nj=args.nj)
    log.info("%s: %d distinct words, %d new to the lexicon %s", args.data, len(words), n_new, args.lexicon)
    if g2p.unknown_symbols:
        log.warning("G2P symbols outside the %s inventory were dropped: %s", args.encoder,
                    ", ".join(f"{s!r} x{n}" for s, n in sorted(g2p.unknown_symbols.items())))
    units, skipped = {}, []
    for uid, text in dd.text.items():
        u = g2p.sentence_units(text)
        if not text_words(text):
            skipped.append(f"{uid} empty transcript after normalisation")
        elif not u:
            skipped.append(f"{uid} G2P yields no unit for: {text}")
        else:
            units[uid] = " ".join(u)
    return write_units(units, skipped, args)


def encoder_units(enc, dd: DataDir, args: argparse.Namespace) -> int:
    """Units from the encoder's own text -> units (its tokenizer), by the ``--oov`` policy."""
    if args.lexicon is not None:
        log.info("%s: --lexicon %s is not used (the encoder's tokenizer writes the units)", args.encoder, args.lexicon)
    units, skipped = {}, []
    for uid, text in dd.text.items():
        try:
            u = enc.text_to_units(text)
        except ValueError as e:  # oov=fail: the character and its position
            log.error("%sutterance %s: %s", dd.where("text", uid), uid, e)
            return 1
        if not text.strip():
            skipped.append(f"{uid} empty transcript")
        elif not u:
            skipped.append(f"{uid} the {args.encoder} vocabulary writes no unit of: {text}")
        else:
            units[uid] = " ".join(u)
    counts = getattr(enc, "oov_counts", {})
    if counts:
        log.warning("%s: characters outside the %s vocabulary were %s (oov=%s): %s", args.data, args.encoder,
                    "mapped" if args.oov == "map" else "dropped", args.oov,
                    ", ".join(f"{c!r} x{n}" for c, n in sorted(counts.items())))
    return write_units(units, skipped, args)


def write_units(units: dict[str, str], skipped: list[str], args: argparse.Namespace) -> int:
    """``<out>/units`` and ``<out>/units.skipped``; 1 when no utterance has units."""
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "units", "".join(f"{k} {v}\n" for k, v in units.items()))
    atomic_write_text(args.out / "units.skipped", "".join(s + "\n" for s in skipped))
    log.info("%s: wrote units for %d utterances, skipped %d (see %s)", args.data, len(units),
             len(skipped), args.out / "units.skipped")
    if not units:
        log.error("%s: no utterance of %s yields any unit; nothing to train or score on", args.data,
                  args.data / "text")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
