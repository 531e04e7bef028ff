#!/usr/bin/env python3
"""Split ``data/asterisk`` by prompt family into adaptation text, dev and test (open_en).

    python3 local/split_asterisk.py --src data/asterisk --out data/asterisk_adapt
    # or: python3 local/prepare_data.py --data data --sets asterisk asterisk_adapt

A prompt's *family* is its sound name up to the first ``-`` or ``/`` (``vm-press`` and
``vm-goodbye`` are family ``vm``, ``digits/5`` is ``digits``; a name with neither, ``goodbye``,
is its own family). The sound name of an utterance is read exactly: its ``wav.scp`` path is
looked up among the ``.wav`` files under ``--sounds`` (both sides resolved, as
local/prepare_data.py writes them) and must map back to the utterance id.

Assignment (deterministic; the same input gives the same bytes): families are taken largest
first, ties in the order of ``sha256("<seed>:<family>")``; each goes to the split furthest
below its target number of utterances (half of all utterances for the adaptation text, a
quarter each for dev and test; a tie goes to adapt, then dev, then test). Every utterance of a
family lands in the one split of its family.

Outputs (``<out>`` = ``--out``, each file written atomically):

- ``<out>_text``: the adaptation text, a text-only data dir (``text``, ``utt2spk``,
  ``spk2utt``, like ``data/train``) and ``sentences.txt``, the same sentences one a line
  (in ``text``'s order) for tools that want plain sentences;
- ``<out>_dev``, ``<out>_test``: full Kaldi data dirs (``wav.scp``, ``text``, ``utt2spk``,
  ``spk2utt``) of the held-out families;
- ``families`` in each: ``<family> <utterances assigned>`` lines;
- ``<out>_text/dropped``: honesty filter. An adaptation sentence whose normalised text
  (:func:`tasu.textnorm.normalize_text`, what scoring compares) equals that of a dev or test
  utterance (the same sentence recorded under two names, ``conf-muted`` and
  ``confbridge-muted``) is dropped from the adaptation text; one line per drop,
  ``<uid> <dev/test uid it equals>``; the count is logged.
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import logging
import re
import sys
from pathlib import Path

from prepare_data import asterisk_uid  # local/, next to this script

from tasu.data import DataDir, DataError, write_data_dir
from tasu.fileio import atomic_write_text
from tasu.textnorm import normalize_text

log = logging.getLogger("split_asterisk")
SPLITS = ("text", "dev", "test")       # <out>_text is the adaptation text
SHARES = {"text": 0.5, "dev": 0.25, "test": 0.25}


def family(name: str) -> str:
    """``vm-press`` -> ``vm``, ``digits/5`` -> ``digits``, ``goodbye`` -> ``goodbye``."""
    return re.split(r"[-/]", name, maxsplit=1)[0] or name


def sound_names(dd: DataDir, sounds: Path) -> dict[str, str]:
    """uid -> sound name (path under ``sounds`` without ``.wav``), exact or an error naming the line."""
    by_path: dict[Path, list[str]] = collections.defaultdict(list)
    for p in sounds.rglob("*.wav"):
        by_path[p.resolve()].append(p.relative_to(sounds).with_suffix("").as_posix())
    out = {}
    for uid, wav in (dd.wav_scp or {}).items():
        names = [n for n in by_path.get(Path(wav).resolve(), []) if asterisk_uid(n) == uid]
        if len(names) != 1:
            what = "is not a .wav under" if not by_path.get(Path(wav).resolve()) else "names no single sound of"
            raise SystemExit(f"{dd.where('wav.scp', uid)}{wav} {what} {sounds} for utterance {uid!r}")
        out[uid] = names[0]
    return out


def assign(sizes: dict[str, int], seed: int) -> dict[str, str]:
    """family -> split: largest family first (ties by seeded hash), each to the split furthest below target."""
    total = sum(sizes.values())
    have = dict.fromkeys(SPLITS, 0)
    out = {}
    order = sorted(sizes, key=lambda f: (-sizes[f], hashlib.sha256(f"{seed}:{f}".encode()).hexdigest()))
    for f in order:
        split = max(SPLITS, key=lambda s: (SHARES[s] * total - have[s], -SPLITS.index(s)))
        out[f] = split
        have[split] += sizes[f]
    return out


def split_asterisk(src: Path, sounds: Path, out: Path, seed: int = 0) -> dict[str, set[str]]:
    """Write ``<out>_{text,dev,test}`` from data dir ``src``; returns split -> uids (before the drop)."""
    try:
        dd = DataDir.load(src, require=("wav.scp", "text"))
    except DataError as e:
        raise SystemExit(str(e)) from None
    names = sound_names(dd, sounds)
    fam = {u: family(n) for u, n in names.items()}
    sizes = collections.Counter(fam.values())
    where = assign(sizes, seed)
    uids = {s: {u for u in fam if where[fam[u]] == s} for s in SPLITS}
    text = dd.text or {}
    held = {}
    for s in ("dev", "test"):
        for u in sorted(uids[s]):
            held.setdefault(normalize_text(text[u]), u)
    dropped = {u: held[normalize_text(text[u])] for u in sorted(uids["text"]) if normalize_text(text[u]) in held}
    for s in SPLITS:
        d = Path(f"{out}_{s}")
        keep = sorted(uids[s] - dropped.keys())
        if s == "text":
            write_data_dir(d, text={u: text[u] for u in keep})
            atomic_write_text(d / "sentences.txt", "".join(text[u] + "\n" for u in keep))
            atomic_write_text(d / "dropped", "".join(f"{u} {v}\n" for u, v in sorted(dropped.items())))
        else:
            write_data_dir(d, wav_scp={u: dd.wav_scp[u] for u in keep}, text={u: text[u] for u in keep},
                           utt2spk={u: (dd.utt2spk or {}).get(u, "asterisk") for u in keep})
        fams = sorted(f for f in sizes if where[f] == s)
        atomic_write_text(d / "families", "".join(f"{f} {sizes[f]}\n" for f in fams))
        log.info("%s: %d families, %d utterances%s", d, len(fams), len(keep),
                 f" ({len(uids[s])} assigned, {len(dropped)} dropped: their sentence is a dev/test sentence, "
                 f"listed in {d / 'dropped'})" if s == "text" else "")
    both = {normalize_text(text[u]) for u in uids["dev"]} & {normalize_text(text[u]) for u in uids["test"]}
    log.info("%d sentences are in both dev and test (under different names; no adaptation text involved)",
             len(both))
    return uids


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", type=Path, default=Path("data/asterisk"), help="the data dir prepare_data.py made")
    ap.add_argument("--sounds", type=Path, default=Path("/usr/share/asterisk/sounds/en"),
                    help="the sounds dir wav.scp's paths lie under (names the prompts)")
    ap.add_argument("--out", type=Path, default=Path("data/asterisk_adapt"), help="prefix of the three output dirs")
    ap.add_argument("--seed", type=int, default=0, help="orders families of equal size")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (split_asterisk) %(levelname)s: %(message)s")
    split_asterisk(args.src, args.sounds, args.out, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
