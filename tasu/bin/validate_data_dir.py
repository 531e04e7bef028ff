"""Validate a Kaldi data directory (sorting, duplicates, cross-file ids, audio headers).

Prints ``<dir>: N utts, M speakers, OK`` and exits 0, or prints the first
problem as ``<file>:<line>: <what is wrong and how to fix it>`` and exits 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tasu.audio import recording_duration
from tasu.data import DATA_FILES, DataDir, DataError

__all__ = ["check_audio", "main"]

#: How far (seconds) a segment may run past the end of its recording.
MAX_SEGMENT_OVERSHOOT = 0.5


def check_audio(dd: DataDir, *, read_pipes: bool = False) -> tuple[int, int]:
    """Check every recording (headers of plain files; pipes/arks decoded only if ``read_pipes``).

    Segments must end within their recording (plus ``MAX_SEGMENT_OVERSHOOT``).
    Returns (recordings checked, recordings skipped).
    """
    if dd.wav_scp is None:
        return 0, 0
    durations: dict[str, float] = {}
    skipped = 0
    for rec in dd.wav_scp:
        duration = recording_duration(dd, rec, decode=read_pipes)
        if duration is None:
            skipped += 1
        else:
            durations[rec] = duration
    for uid, (rec, _start, end) in (dd.segments or {}).items():
        if rec in durations and end > durations[rec] + MAX_SEGMENT_OVERSHOOT:
            raise DataError(f"{dd.where('segments', uid)}segment {uid!r} ends at {end} s but recording "
                            f"{rec!r} lasts {durations[rec]:.3f} s; fix the end time or delete the segment")
    return len(durations), skipped


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    ap = argparse.ArgumentParser(
        prog="validate_data_dir",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Repair sorting, duplicates and id mismatches with utils/fix_data_dir.sh <dir>.\n"
               "Example: utils/validate_data_dir.sh --require wav.scp text data/test",
    )
    ap.add_argument("data_dir", type=Path, help="the data directory (wav.scp, text, utt2spk, ...)")
    ap.add_argument("--require", nargs="+", action="extend", default=[], choices=DATA_FILES, metavar="FILE",
                    help=f"files that must exist (any of: {', '.join(DATA_FILES)}); by default only "
                         "one of wav.scp or text is needed")
    ap.add_argument("--no-audio-check", action="store_true",
                    help="do not open the audio files (faster; only the tables are checked)")
    ap.add_argument("--read-pipes", action="store_true",
                    help="also run 'cmd |' entries and read archive (ark:offset) entries; "
                         "by default only plain audio files are checked")
    return ap


def main(argv: list[str] | None = None) -> int:
    """Validate; print a one-line summary or the error. Returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        dd = DataDir.load(args.data_dir, require=args.require)
        if not args.no_audio_check:
            check_audio(dd, read_pipes=args.read_pipes)
    except DataError as e:
        print(e, file=sys.stderr)
        return 1
    if dd.spk2utt is not None:
        n_spk = len(dd.spk2utt)
    else:
        n_spk = len(set(dd.utt2spk.values())) if dd.utt2spk is not None else 0
    print(f"{args.data_dir}: {len(dd.utt_ids)} utts, {n_spk} speakers, OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
