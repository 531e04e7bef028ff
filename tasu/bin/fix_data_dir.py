"""Repair a Kaldi data directory in place so that it validates.

Sorts every table in C byte order, drops blank lines, duplicate ids (keeping
the first), empty values (empty transcripts), malformed segments and ids that
are not present in every per-utterance file, then regenerates ``spk2utt``.
The originals are copied to ``<dir>/.backup/`` first, and the number of lines
dropped from each file, and why, is logged to stderr.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tasu.data import DataDir, DataError, read_table_lines, utt2spk_to_spk2utt, write_kv

__all__ = ["FileReport", "fix_data_dir", "main"]

#: Files keyed by utterance id (all must agree on the utterance set).
UTT_FILES = ("text", "utt2spk", "segments", "feats.scp", "utt2dur", "utt2num_frames", "utt2uniq")
#: Files keyed by recording id (wav.scp is also per-utterance when there are no segments).
RECO_FILES = ("wav.scp", "reco2dur", "reco2file_and_channel")
#: Files keyed by speaker id.
SPK_FILES = ("spk2gender", "cmvn.scp")


@dataclass
class FileReport:
    """What happened to one file."""

    lines: int
    kept: int = 0
    was_sorted: bool = True
    dropped: Counter[str] = field(default_factory=Counter)

    def describe(self, name: str) -> str:
        """One log line, e.g. ``text: kept 8 of 10 lines; dropped 2 (1 duplicate id, 1 empty transcript)``."""
        msg = f"{name}: kept {self.kept} of {self.lines} lines"
        n = sum(self.dropped.values())
        if n:
            msg += f"; dropped {n} (" + ", ".join(f"{c} {why}" for why, c in sorted(self.dropped.items())) + ")"
        if not self.was_sorted:
            msg += "; re-sorted"
        return msg


def _valid_segment(value: str) -> bool:
    """``<rec> <start> <end>`` with 0 <= start < end."""
    fields = value.split()
    if len(fields) != 3:
        return False
    try:
        start, end = float(fields[1]), float(fields[2])
    except ValueError:
        return False
    return 0 <= start < end < float("inf")


def _clean(path: Path) -> tuple[dict[str, str], FileReport]:
    """Read a table leniently: first occurrence of each key, bad lines counted."""
    name = path.name
    rows = read_table_lines(path)
    report = FileReport(lines=len(rows))
    table: dict[str, str] = {}
    first: dict[str, int] = {}
    for row in rows:
        if not row.key:
            report.dropped["blank line"] += 1
        elif row.key in first:
            report.dropped["duplicate id"] += 1
        elif not row.value:
            first[row.key] = row.line
            report.dropped["empty transcript" if name == "text" else "empty value"] += 1
        elif name == "segments" and not _valid_segment(row.value):
            first[row.key] = row.line
            report.dropped["malformed segment"] += 1
        elif name == "utt2spk" and len(row.value.split()) != 1:
            first[row.key] = row.line
            report.dropped["speaker id with whitespace"] += 1
        else:
            first[row.key] = row.line
            table[row.key] = row.value
    keys = [r.key for r in rows if r.key]
    report.was_sorted = all(a <= b for a, b in zip(keys, keys[1:]))
    return table, report


def _keep(table: dict[str, str], report: FileReport, keep: Callable[[str, str], str | None]) -> dict[str, str]:
    """Filter ``table``; ``keep(key, value)`` returns None to keep or the reason to drop."""
    out = {}
    for key, value in table.items():
        why = keep(key, value)
        if why is None:
            out[key] = value
        else:
            report.dropped[why] += 1
    return out


def fix_data_dir(path: str | Path, *, log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)
                 ) -> dict[str, FileReport]:
    """Repair ``path`` in place (originals in ``path/.backup/``); returns a report per file."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: data directory does not exist")
    names = [n for n in UTT_FILES + RECO_FILES + SPK_FILES + ("spk2utt",) if (root / n).is_file()]
    tables: dict[str, dict[str, str]] = {}
    reports: dict[str, FileReport] = {}
    for name in names:
        tables[name], reports[name] = _clean(root / name)
    if "wav.scp" not in tables and "text" not in tables:
        raise DataError(f"{root}: neither wav.scp nor text exists; nothing to fix")

    if "utt2spk" not in tables and "spk2utt" in tables:
        tables["utt2spk"] = {u: spk for spk, v in tables["spk2utt"].items() for u in reversed(v.split())}
        reports["utt2spk"] = FileReport(lines=0)
        log(f"{root / 'utt2spk'}: missing; derived from spk2utt")

    segments = tables.get("segments")
    if segments is not None and "wav.scp" in tables:
        wav = tables["wav.scp"]
        tables["segments"] = _keep(segments, reports["segments"],
                                   lambda u, v: None if v.split()[0] in wav else "recording not in wav.scp")

    # Utterances present in every per-utterance file.
    utt_sources = [n for n in UTT_FILES if n in tables]
    if "segments" not in tables and "wav.scp" in tables:
        utt_sources.append("wav.scp")
    utts = set.intersection(*(set(tables[n]) for n in utt_sources))
    if not utts:
        raise DataError(f"{root}: no utterance id is present in every file ({', '.join(utt_sources)}); "
                        "nothing written, the directory is unchanged")
    present = {n: set(tables[n]) for n in utt_sources}

    def absent_from(u: str) -> str | None:
        return None if u in utts else "not in " + next(n for n in utt_sources if u not in present[n])

    for name in utt_sources:
        tables[name] = _keep(tables[name], reports[name], lambda u, v: absent_from(u))

    if "segments" in tables:
        recs = {v.split()[0] for v in tables["segments"].values()}
    else:
        recs = utts
    for name in RECO_FILES:
        if name in tables and name not in utt_sources:
            tables[name] = _keep(tables[name], reports[name],
                                 lambda r, v: None if r in recs else "recording without utterances")
    spks = set(tables["utt2spk"].values()) if "utt2spk" in tables else set()
    for name in SPK_FILES:
        if name in tables:
            tables[name] = _keep(tables[name], reports[name],
                                 lambda s, v: None if s in spks else "speaker without utterances")

    backup = root / ".backup"
    backup.mkdir(exist_ok=True)
    for name in names:
        shutil.copy2(root / name, backup / name)
    log(f"{root}: originals copied to {backup}/")
    for name, table in tables.items():
        if name == "spk2utt":
            continue
        write_kv(root / name, table)
        reports[name].kept = len(table)
        log(reports[name].describe(str(root / name)))
    if "utt2spk" in tables:
        spk2utt = utt2spk_to_spk2utt(tables["utt2spk"])
        write_kv(root / "spk2utt", spk2utt)
        old = reports.get("spk2utt", FileReport(lines=0))
        reports["spk2utt"] = FileReport(lines=old.lines, kept=len(spk2utt), was_sorted=old.was_sorted)
        log(f"{root / 'spk2utt'}: regenerated from utt2spk ({len(spk2utt)} speakers; was {old.lines} lines)")
    return reports


def main(argv: list[str] | None = None) -> int:
    """Fix the directory, then validate it; returns the exit status."""
    ap = argparse.ArgumentParser(prog="fix_data_dir", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Check the result with utils/validate_data_dir.sh <dir>.")
    ap.add_argument("data_dir", type=Path, help="the data directory to repair in place")
    args = ap.parse_args(argv)
    try:
        fix_data_dir(args.data_dir)
        dd = DataDir.load(args.data_dir, require=())
    except DataError as e:
        print(e, file=sys.stderr)
        return 1
    print(f"{args.data_dir}: fixed, {len(dd.utt_ids)} utts", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
