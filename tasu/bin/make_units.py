#!/usr/bin/env python3
"""Text -> encoder units for a data dir (stage 1): ``<out>/units`` (Kaldi table).

Words go through the encoder's G2P once each and are memoised in a shared lexicon file.
Rule for bad input: an utterance whose transcript is empty or yields no unit is skipped,
listed in ``<out>/units.skipped`` with the reason, and counted in the log.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tasu.data import DataDir, DataError, atomic_write_text
from tasu.units import text_words

log = logging.getLogger("tasu.make_units")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="Kaldi data dir with a `text` file")
    ap.add_argument("--out", type=Path, required=True, help="output dir (gets `units`, `units.skipped`)")
    ap.add_argument("--lexicon", type=Path, required=True, help="word -> units cache, shared across sets")
    ap.add_argument("--encoder", default="hama", help="CTC encoder whose units to produce (default: hama)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")

    try:
        dd = DataDir.load(args.data, require=("text",))
    except DataError as e:
        log.error("%s", e)
        return 1
    from tasu.encoders import build_encoder

    enc = build_encoder(args.encoder, lexicon=args.lexicon)
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
    n_new = g2p.add_words(words, progress=True)
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
