#!/usr/bin/env python3
"""Stage 0 of open_en: Kaldi data dirs from what the repo and apt provide (offline).

- ``data/train``, ``data/dev``: the open-vocabulary training text and its text-only validation
  sentences (``local/text/{train,dev}.text.xz``, built by local/build_text.py);
- ``data/arctic_dev``, ``data/arctic_test``: real read speech, CMU ARCTIC prompts by one US
  speaker (``db/arctic_cathy``, committed, made by local/make_arctic_subset.py); split by
  prompt. ``arctic_dev`` is the set for choosing settings;
- ``data/arctic_train`` (only when asked for, ``--sets arctic_train``): the 582 other ARCTIC
  prompts of the same speaker (``db/arctic_cathy_train``, not committed: made by
  ``local/make_arctic_subset.py --train_out``), paired audio for stage 3; never a test set;
- ``data/asterisk_adapt_{text,dev,test}`` (only when asked for, ``--sets asterisk_adapt``):
  ``data/asterisk`` split by prompt family into adaptation text, dev and test
  (local/split_asterisk.py; builds ``data/asterisk`` first when it is not there);
- ``data/asterisk``: real telephone prompts (8 kHz) of one professional speaker, Debian
  ``asterisk-core-sounds-en-wav``, transcripts from ``asterisk-core-sounds-en``'s
  ``core-sounds-en.txt``, digits and symbols read out (:func:`tasu.textnorm.verbalize`, and
  ``#`` "pound", ``*`` "star" as the prompts say them). An out-of-domain test set.

Rules for the Asterisk files (each skip counted in the log and listed in
``data/asterisk/skipped``): a transcript wholly in brackets (``[beep tone]``, ``<beep
ascending>``, ``(1 second of silence)``: no speech), a
transcript that normalises to nothing, a transcript without a wav and a wav without a transcript
are skipped; a wav that is a dangling link or empty is skipped.
"""
from __future__ import annotations

import argparse
import collections
import gzip
import logging
import lzma
import re
import sys
from pathlib import Path

from tasu.data import write_data_dir
from tasu.fileio import atomic_write_text
from tasu.textnorm import normalize_text, verbalize

log = logging.getLogger("prepare_data")


def read_text_table(path: Path) -> dict[str, str]:
    """``<id> <sentence>`` lines of a plain or xz file; an error names file and line."""
    raw = lzma.decompress(path.read_bytes()) if path.suffix == ".xz" else path.read_bytes()
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise SystemExit(f"{path}:{line}: not valid UTF-8") from None
    out = {}
    for n, line in enumerate(lines, 1):
        uid, _, text = line.partition(" ")
        if not uid or not text.strip():
            raise SystemExit(f"{path}:{n}: expected '<id> <sentence>', got {line!r}")
        if uid in out:
            raise SystemExit(f"{path}:{n}: duplicate id {uid!r}")
        out[uid] = text.strip()
    return out


def speak_prompt(text: str) -> str:
    """An Asterisk transcript as spoken: keypad symbols and digits in words, one line."""
    text = re.sub(r"(?<![\w])#", " pound ", text)
    text = re.sub(r"(?<![\w])\*", " star ", text)
    text = re.sub(r"\.\.\.+", " ", text)
    return re.sub(r"\s+([,.;:!?])", r"\1", " ".join(verbalize(text).split()))


def first(table: dict[str, str], n: int) -> dict[str, str]:
    return dict(sorted(table.items())[:n]) if n else table


def asterisk_uid(name: str) -> str:
    """The utterance id of Asterisk sound ``name`` (``digits/5`` -> ``asterisk-digits_5``)."""
    return "asterisk-" + re.sub(r"[^A-Za-z0-9_-]", "_", name)


def asterisk(sounds: Path, transcripts: Path, out: Path, n_max: int = 0) -> None:
    if not transcripts.is_file():
        raise SystemExit(f"{transcripts}: missing; apt-get install asterisk-core-sounds-en")
    if not sounds.is_dir():
        raise SystemExit(f"{sounds}: missing; apt-get install asterisk-core-sounds-en-wav")
    texts: dict[str, tuple[str, int]] = {}
    with gzip.open(transcripts, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip() or line.startswith(";"):
                continue
            name, sep, text = line.partition(":")
            if not sep:
                raise SystemExit(f"{transcripts}:{n}: expected '<name>: <transcript>', got {line.rstrip()!r}")
            texts[name.strip()] = (text.strip(), n)
    wavs = {str(p.relative_to(sounds).with_suffix("")): p for p in sounds.rglob("*.wav")}
    skipped: list[str] = []
    counts = collections.Counter()
    wav_scp, text = {}, {}
    for name in sorted(set(texts) | set(wavs)):
        uid = asterisk_uid(name)
        if name not in wavs:
            counts["no_wav"] += 1
            skipped.append(f"{name} {transcripts}:{texts[name][1]}: transcript without a wav")
            continue
        if name not in texts:
            counts["no_transcript"] += 1
            skipped.append(f"{name} {wavs[name]}: wav without a transcript")
            continue
        raw, line = texts[name]
        if raw[:1] + raw[-1:] in ("[]", "<>", "()"):   # [beep tone], <beep ascending>, (1 second of silence)
            counts["no_speech"] += 1
            skipped.append(f"{name} {transcripts}:{line}: no speech ({raw})")
            continue
        spoken = speak_prompt(raw)
        if not normalize_text(spoken):
            counts["empty"] += 1
            skipped.append(f"{name} {transcripts}:{line}: transcript normalises to nothing ({raw!r})")
            continue
        wav = wavs[name].resolve()
        if not wav.is_file() or wav.stat().st_size <= 44:
            counts["bad_wav"] += 1
            skipped.append(f"{name} {wavs[name]}: missing or empty audio")
            continue
        if uid in wav_scp:
            raise SystemExit(f"{transcripts}:{line}: {name!r} maps to utterance id {uid!r} of another prompt")
        wav_scp[uid], text[uid] = str(wav), spoken
        counts["kept"] += 1
    text = first(text, n_max)
    wav_scp = {u: wav_scp[u] for u in text}
    write_data_dir(out, wav_scp=wav_scp, text=text, utt2spk={u: "asterisk" for u in wav_scp})
    atomic_write_text(out / "skipped", "".join(s + "\n" for s in skipped))
    log.info("%s: %s (skips listed in %s)", out, ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
             out / "skipped")


def arctic(db: Path, part: str, out: Path, n_max: int = 0) -> None:
    text = first(read_text_table(db / f"{part}.text"), n_max)
    wav_scp = {}
    for uid in text:
        flac = db / "flac" / f"{uid}.flac"
        if not flac.is_file():
            raise SystemExit(f"{db / f'{part}.text'}: utterance {uid!r} has no audio {flac}")
        wav_scp[uid] = str(flac.resolve())
    extra = sorted({p.stem for p in (db / "flac").glob("*.flac")} - set(read_all_ids(db)))
    if extra:
        raise SystemExit(f"{db / 'flac'}: {len(extra)} flac files without a transcript, e.g. {extra[0]}")
    write_data_dir(out, wav_scp=wav_scp, text=text, utt2spk={u: u.split("-")[0] for u in text})
    log.info("%s: %d utterances", out, len(text))


def read_all_ids(db: Path) -> list[str]:
    return [u for p in db.glob("*.text") for u in read_text_table(p)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--text_dir", type=Path, default=Path("local/text"))
    ap.add_argument("--arctic", type=Path, default=Path("db/arctic_cathy"))
    ap.add_argument("--arctic_train", type=Path, default=Path("db/arctic_cathy_train"),
                    help="the ARCTIC prompts in neither split, same speaker (not committed: "
                         "local/make_arctic_subset.py --train_out); paired data for stage 3 only")
    ap.add_argument("--asterisk_sounds", type=Path, default=Path("/usr/share/asterisk/sounds/en"))
    ap.add_argument("--asterisk_text", type=Path,
                    default=Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"))
    ap.add_argument("--n_train", type=int, default=0, help="keep the first N training sentences (0: all)")
    ap.add_argument("--n_test", type=int, default=0, help="keep the first N utterances of each speech set (0: all)")
    ap.add_argument("--sets", nargs="*", default=["train", "dev", "arctic_dev", "arctic_test", "asterisk"])
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (prepare_data) %(levelname)s: %(message)s")
    for s in args.sets:
        if s in ("train", "dev"):
            text = read_text_table(args.text_dir / f"{s}.text.xz")
            if s == "train" and args.n_train:
                text = dict(list(text.items())[: args.n_train])
            write_data_dir(args.data / s, text=text)
            log.info("%s: %d sentences", args.data / s, len(text))
        elif s in ("arctic_dev", "arctic_test"):
            arctic(args.arctic, s.split("_", 1)[1], args.data / s, args.n_test)
        elif s == "arctic_train":
            arctic(args.arctic_train, "train", args.data / s, args.n_test)
        elif s == "asterisk":
            asterisk(args.asterisk_sounds, args.asterisk_text, args.data / s, args.n_test)
        elif s == "asterisk_adapt":
            from split_asterisk import split_asterisk

            if "asterisk" not in args.sets and not (args.data / "asterisk" / "text").is_file():
                asterisk(args.asterisk_sounds, args.asterisk_text, args.data / "asterisk", args.n_test)
            split_asterisk(args.data / "asterisk", args.asterisk_sounds, args.data / "asterisk_adapt")
        else:
            raise SystemExit(f"unknown set {s!r} (known: train dev arctic_dev arctic_test arctic_train asterisk "
                             "asterisk_adapt)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
