"""Kaldi-style data directories: table files and their validation (audio: :mod:`tasu.audio`).

A data directory holds sorted ``<key> <value>`` table files:

* ``wav.scp``  recording id -> plain audio path, ``command |`` or ``foo.ark:123``
* ``text``     utterance id -> transcript
* ``utt2spk``  utterance id -> speaker id; ``spk2utt`` is its inverse
* ``segments`` utterance id -> ``<recording id> <start s> <end s>`` (optional)
* ``<target>`` utterance id -> the answer of a task (``intent``, ``answer``, ...;
  see :func:`read_targets` and :mod:`tasu.tasks`)

Every problem is reported as a :class:`DataError` whose message starts with
``<file>:<line>: `` (or ``<file>: ``) and says how to fix it.  Keys must be in
C byte order (``LC_ALL=C sort``); for strictly decoded UTF-8, Python's ``str``
order is exactly that order, so plain ``sorted()`` is used throughout.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tasu.fileio import atomic_write_text

__all__ = [
    "DATA_FILES",
    "DataDir",
    "DataError",
    "TableLine",
    "read_kv",
    "read_posteriors",
    "read_targets",
    "read_table_lines",
    "stream_table",
    "utt2spk_to_spk2utt",
    "write_data_dir",
    "write_kv",
]

#: The table files :class:`DataDir` understands, in loading order.
DATA_FILES = ("wav.scp", "text", "utt2spk", "spk2utt", "segments")

KALDI_WS = " \t\r\n\v\f"  # ASCII whitespace: Kaldi never splits on Unicode spaces
_LINE_RE = re.compile(r"([^ \t\r\n\v\f]+)(?:[ \t\r\n\v\f]+(.*))?")


class DataError(ValueError):
    """Bad data-directory content; the message starts with ``<file>[:<line>]: ``."""


def location(path: str | os.PathLike[str], line: int | None = None) -> str:
    """``"<file>:<line>: "`` or ``"<file>: "``."""
    return f"{path}:{line}: " if line else f"{path}: "


def _fix_hint(path: str | os.PathLike[str]) -> str:
    """Suggest fix_data_dir for the directory holding ``path``."""
    return f"run utils/fix_data_dir.sh {Path(path).parent} to repair it"


# ---------------------------------------------------------------------------
# Table files
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TableLine:
    """One physical line of a table file (``key`` is ``""`` on a blank line)."""

    line: int
    key: str
    value: str
    raw: str


def _open_table(path: Path):
    """``path`` opened for binary reading; a missing, directory or unreadable file is a DataError."""
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise DataError(f"{location(path)}file does not exist") from None
    except IsADirectoryError:
        raise DataError(f"{location(path)}is a directory, expected a table file") from None
    except OSError as e:
        raise DataError(f"{location(path)}cannot read file: {e.strerror or e}") from None


def _read_text_file(path: Path) -> str:
    """Read ``path`` as strict UTF-8, mapping every failure to a DataError."""
    with _open_table(path) as f:
        try:
            data = f.read()
        except OSError as e:
            raise DataError(f"{location(path)}cannot read file: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise DataError(
            f"{location(path, line)}not valid UTF-8 (byte 0x{data[e.start]:02x} at column {col}); "
            f"re-encode the file, e.g. iconv -f <encoding> -t UTF-8"
        ) from None
    if text.startswith("\ufeff"):
        raise DataError(f"{location(path, 1)}file starts with a UTF-8 byte-order mark; remove it")
    return text


def read_table_lines(path: str | os.PathLike[str]) -> list[TableLine]:
    """Split a table file into lines without judging them (blank lines included).

    Only unreadable or non-UTF-8 files raise; :func:`read_kv` does the checks.
    """
    p = Path(path)
    lines = _read_text_file(p).split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline does not start a line
    out = []
    for n, raw in enumerate(lines, start=1):
        m = _LINE_RE.match(raw.lstrip(KALDI_WS))
        if m is None:
            out.append(TableLine(n, "", "", raw))
        else:
            out.append(TableLine(n, m.group(1), (m.group(2) or "").strip(KALDI_WS), raw))
    return out


def _check_line(path: Path, t: TableLine, prev: TableLine | None, first_line: int | None,
                allow_empty_value: bool) -> None:
    """The checks of one table line: non-blank, key first, a value, not a repeated key
    (``first_line``: where it was seen before), sorted after ``prev``."""
    here = location(path, t.line)
    if not t.key:
        raise DataError(f"{here}blank line; delete it ({_fix_hint(path)})")
    if t.raw[:1] in tuple(KALDI_WS):
        raise DataError(f"{here}line starts with whitespace; the key must be the first character")
    if not t.value and not allow_empty_value:
        raise DataError(f"{here}key {t.key!r} has an empty value; give it a value or "
                        f"delete the line ({_fix_hint(path)})")
    if first_line is not None:
        raise DataError(f"{here}duplicate key {t.key!r} (first on line {first_line}); "
                        f"keep one of lines {first_line} and {t.line} ({_fix_hint(path)})")
    if prev is not None and t.key < prev.key:
        raise DataError(f"{here}not sorted: key {t.key!r} must come before {prev.key!r} on line "
                        f"{prev.line}; sort with LC_ALL=C sort -k1,1 ({_fix_hint(path)})")


def _read_table(path: Path, *, allow_empty_value: bool = False) -> tuple[dict[str, str], dict[str, int]]:
    """Strictly read a table file: (key -> value, key -> line number)."""
    values: dict[str, str] = {}
    where: dict[str, int] = {}
    prev: TableLine | None = None
    for t in read_table_lines(path):
        _check_line(path, t, prev, where.get(t.key), allow_empty_value)
        values[t.key] = t.value
        where[t.key] = t.line
        prev = t
    return values, where


def stream_table(path: str | os.PathLike[str], *, allow_empty_value: bool = False) -> Iterator[TableLine]:
    """The lines of a table file one at a time, with :func:`read_kv`'s checks, in constant memory.

    A sorted table repeats a key only on consecutive lines, so comparing each key with the one
    before finds duplicates as :func:`read_kv` does. Errors name ``file:line`` and come when the
    bad line is reached (lines before it have been yielded).
    """
    p = Path(path)
    prev: TableLine | None = None
    with _open_table(p) as f:
        for n, data in enumerate(f, start=1):
            try:
                raw = data.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{location(p, n)}not valid UTF-8 (byte 0x{data[e.start]:02x} at column "
                                f"{e.start + 1}); re-encode the file, e.g. iconv -f <encoding> -t UTF-8") from None
            if n == 1 and raw.startswith("\ufeff"):
                raise DataError(f"{location(p, 1)}file starts with a UTF-8 byte-order mark; remove it")
            raw = raw[:-1] if raw.endswith("\n") else raw
            m = _LINE_RE.match(raw.lstrip(KALDI_WS))
            t = (TableLine(n, "", "", raw) if m is None
                 else TableLine(n, m.group(1), (m.group(2) or "").strip(KALDI_WS), raw))
            _check_line(p, t, prev, prev.line if prev is not None and prev.key == t.key else None,
                        allow_empty_value)
            prev = t
            yield t


def read_posteriors(scp: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """``uid -> [T', V]`` matrices of a kaldiio scp (the stage-1 posterior dumps), in memory.

    A dump stored as top-k rows (``feats.info`` beside the scp, :mod:`tasu.posteriors`) gives
    :class:`tasu.posteriors.TopKRows`, which act as ``[T', V]`` arrays and are made dense only when
    read as one. A repeated id is a DataError naming ``file:line``; an entry that cannot be read
    (a missing or damaged ark) names the scp, the utterance and its line.
    """
    import kaldiio

    from tasu.posteriors import TopKRows, read_info

    try:
        info = read_info(scp)
    except ValueError as e:
        raise DataError(str(e)) from None
    out: dict[str, np.ndarray] = {}
    for t in read_table_lines(scp):
        if not t.key:
            continue
        if t.key in out:
            raise DataError(f"{location(scp, t.line)}utterance {t.key} appears twice")
        try:
            mat = kaldiio.load_mat(t.value)
        except Exception as e:  # kaldiio raises OSError, EOFError, KeyError, ValueError, struct.error...
            raise DataError(f"{scp}: cannot read the posteriors of {t.key} (line {t.line}: {t.value}): "
                            f"{type(e).__name__}: {e}; re-run stage 1 for this set") from None
        if info is not None:
            if mat.ndim != 2 or mat.shape[1] != 2 * info["k"]:
                raise DataError(f"{location(scp, t.line)}{t.key}: rows of shape {mat.shape}, but "
                                f"{Path(scp).parent / 'feats.info'} says top-{info['k']} ([T', {2 * info['k']}])")
            try:
                mat = TopKRows(mat, info["vocab_size"], f"{scp}:{t.line}: {t.key}")
            except ValueError as e:
                raise DataError(str(e)) from None
        out[t.key] = mat
    return out


def read_kv(path: str | os.PathLike[str], *, allow_empty_value: bool = False) -> dict[str, str]:
    """Read a Kaldi table file into ``{key: value}`` (file order).

    Raises DataError (``file:line``) for a missing/unreadable or non-UTF-8
    file, blank lines, empty values (unless ``allow_empty_value``), duplicate
    keys and keys not sorted in C byte order.
    """
    return _read_table(Path(path), allow_empty_value=allow_empty_value)[0]


def _format_value(value: object) -> str:
    """A table value: strings as-is, lists/tuples joined by spaces."""
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return str(value)


def write_kv(path: str | os.PathLike[str], mapping: Mapping[str, object]) -> None:
    """Atomically write ``key value`` lines sorted in C byte order.

    List/tuple values are joined by spaces; an empty value writes the key alone.
    """
    lines = []
    for key in sorted(mapping):
        if not key or any(c in KALDI_WS for c in key):
            raise DataError(f"{location(path)}cannot write key {key!r}: keys must be non-empty "
                            "and contain no whitespace")
        value = _format_value(mapping[key]).strip(KALDI_WS)
        if "\n" in value or "\r" in value:
            raise DataError(f"{location(path)}cannot write value of {key!r}: it contains a newline")
        lines.append(f"{key} {value}\n" if value else f"{key}\n")
    atomic_write_text(path, "".join(lines))


def utt2spk_to_spk2utt(utt2spk: Mapping[str, str]) -> dict[str, list[str]]:
    """Invert utt2spk: speaker -> sorted utterance ids, speakers sorted."""
    spk2utt: dict[str, list[str]] = {}
    for utt in sorted(utt2spk):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    return {spk: spk2utt[spk] for spk in sorted(spk2utt)}


# ---------------------------------------------------------------------------
# Data directories
# ---------------------------------------------------------------------------


def _parse_single_tokens(path: Path, table: dict[str, str], where: dict[str, int], what: str) -> None:
    """Check that every value of ``table`` is one token (e.g. a speaker id)."""
    for key, value in table.items():
        if any(c in KALDI_WS for c in value):
            raise DataError(f"{location(path, where[key])}{what} {value!r} of {key!r} contains whitespace; "
                            f"it must be a single token")


def _parse_spk2utt(path: Path, table: dict[str, str], where: dict[str, int]) -> dict[str, list[str]]:
    """spk2utt values as lists; no utterance may appear twice."""
    out: dict[str, list[str]] = {}
    seen: dict[str, str] = {}
    for spk, value in table.items():
        utts = value.split()
        for u in utts:
            if u in seen:
                raise DataError(f"{location(path, where[spk])}utterance {u!r} is listed again (already under "
                                f"speaker {seen[u]!r}); regenerate it with "
                                f"utils/utt2spk_to_spk2utt.sh < utt2spk > spk2utt")
            seen[u] = spk
        out[spk] = utts
    return out


def _parse_time(path: Path, line: int, what: str, token: str) -> float:
    """A finite number of seconds from a segments field."""
    try:
        value = float(token)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise DataError(f"{location(path, line)}{what} time {token!r} is not a number; "
                        f"expected '<utt> <recording> <start-seconds> <end-seconds>'")
    return value


def _parse_segments(path: Path, table: dict[str, str],
                    where: dict[str, int]) -> dict[str, tuple[str, float, float]]:
    """segments values as (recording id, start, end)."""
    out = {}
    for uid, value in table.items():
        fields = value.split()
        line = where[uid]
        if len(fields) != 3:
            raise DataError(f"{location(path, line)}expected '<utt> <recording> <start> <end>', "
                            f"got {len(fields) + 1} fields")
        out[uid] = (fields[0], _parse_time(path, line, "start", fields[1]),
                    _parse_time(path, line, "end", fields[2]))
    return out


@dataclass(frozen=True)
class DataDir:
    """A loaded (and validated) Kaldi data directory; absent files are ``None``."""

    path: Path
    wav_scp: dict[str, str] | None = None
    text: dict[str, str] | None = None
    utt2spk: dict[str, str] | None = None
    spk2utt: dict[str, list[str]] | None = None
    segments: dict[str, tuple[str, float, float]] | None = None
    #: file name -> key -> 1-based line number, for error messages.
    line_numbers: dict[str, dict[str, int]] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, require: Iterable[str] = ("wav.scp",)) -> DataDir:
        """Read every table file that exists under ``path`` and :meth:`validate` it."""
        root = Path(path)
        require = tuple(require)
        unknown = [r for r in require if r not in DATA_FILES]
        if unknown:
            raise ValueError(f"unknown required file(s) {unknown}; choose from {list(DATA_FILES)}")
        if not root.is_dir():
            what = "is not a directory" if root.exists() else "data directory does not exist"
            raise DataError(f"{location(root)}{what}")
        for name in require:
            if not (root / name).is_file():
                raise DataError(f"{location(root / name)}required file is missing")
        tables: dict[str, dict[str, str]] = {}
        lines: dict[str, dict[str, int]] = {}
        for name in DATA_FILES:
            if (root / name).exists():
                tables[name], lines[name] = _read_table(root / name)
        if "utt2spk" in tables:
            _parse_single_tokens(root / "utt2spk", tables["utt2spk"], lines["utt2spk"], "speaker id")
        spk2utt = segments = None
        if "spk2utt" in tables:
            spk2utt = _parse_spk2utt(root / "spk2utt", tables["spk2utt"], lines["spk2utt"])
        if "segments" in tables:
            segments = _parse_segments(root / "segments", tables["segments"], lines["segments"])
        dd = cls(path=root, wav_scp=tables.get("wav.scp"), text=tables.get("text"),
                 utt2spk=tables.get("utt2spk"), spk2utt=spk2utt, segments=segments, line_numbers=lines)
        dd.validate(require=require)
        return dd

    @property
    def utt_ids(self) -> list[str]:
        """Sorted utterance ids: from segments if present, else wav.scp, else text."""
        for table in (self.segments, self.wav_scp, self.text):
            if table is not None:
                return sorted(table)
        return []

    @property
    def audio_file(self) -> str:
        """The file whose keys are the utterances with audio: segments or wav.scp."""
        return "segments" if self.segments is not None else "wav.scp"

    def where(self, name: str, key: str) -> str:
        """``"<dir>/<name>:<line>: "`` for ``key`` (``"<dir>/<name>: "`` if unknown)."""
        return location(self.path / name, self.line_numbers.get(name, {}).get(key))

    def validate(self, require: Iterable[str] = ()) -> None:
        """Check cross-file consistency; raise DataError naming file and line."""
        for name in require:
            if getattr(self, name.replace(".", "_")) is None:
                raise DataError(f"{location(self.path / name)}required file is missing")
        if self.wav_scp is None and self.text is None:
            raise DataError(f"{location(self.path)}neither wav.scp nor text exists; nothing to load")
        self._check_segments()
        if not self.utt_ids:
            first = next(n for n in ("segments", "wav.scp", "text") if getattr(self, n.replace(".", "_")) is not None)
            raise DataError(f"{location(self.path / first)}file has no entries; the data directory is empty")
        self._check_text_vs_audio()
        self._check_utt2spk()
        self._check_spk2utt()

    def _check_segments(self) -> None:
        """Segments need wav.scp, known recordings and 0 <= start < end."""
        if self.segments is None:
            return
        if self.wav_scp is None:
            raise DataError(f"{location(self.path / 'segments')}segments needs wav.scp (its recordings); "
                            "add wav.scp or delete segments")
        for uid, (rec, start, end) in self.segments.items():
            here = self.where("segments", uid)
            if rec not in self.wav_scp:
                raise DataError(f"{here}recording {rec!r} of segment {uid!r} is not in wav.scp; "
                                f"{_fix_hint(self.path / 'segments')}")
            if start < 0:
                raise DataError(f"{here}segment {uid!r} starts at {start} s, before 0")
            if end <= start:
                raise DataError(f"{here}segment {uid!r} ends at {end} s, not after its start {start} s; "
                                "fix the times or delete the segment")

    def _mismatch(self, name: str, missing: list[str], other: str, what: str) -> DataError:
        """A 'N ids of <name> are not in <other>' error pointing at the first one."""
        first = missing[0]
        return DataError(f"{self.where(name, first)}{len(missing)} utterance(s) in {name} {what} "
                         f"(first: {first!r}); {_fix_hint(self.path / name)} "
                         f"(it keeps only ids present in every file)")

    def _check_text_vs_audio(self) -> None:
        """Every transcript needs audio and every audio needs a transcript."""
        if self.text is None or self.wav_scp is None:
            return
        audio_name = self.audio_file
        audio = self.segments if self.segments is not None else self.wav_scp
        no_audio = [u for u in self.text if u not in audio]
        if no_audio:
            raise self._mismatch("text", no_audio, audio_name, f"have no audio in {audio_name}")
        no_text = [u for u in audio if u not in self.text]
        if no_text:
            raise self._mismatch(audio_name, no_text, "text", "have no transcript in text")

    def _check_utt2spk(self) -> None:
        """utt2spk must map exactly the utterances."""
        if self.utt2spk is None:
            return
        utts = self.utt_ids
        source = "segments" if self.segments is not None else ("wav.scp" if self.wav_scp is not None else "text")
        missing = [u for u in utts if u not in self.utt2spk]
        if missing:
            first = missing[0]
            at = self.where(source, first).rstrip(": ")
            raise DataError(f"{location(self.path / 'utt2spk')}{len(missing)} utterance(s) have no speaker "
                            f"(first: {first!r} from {at}); {_fix_hint(self.path / 'utt2spk')}")
        known = set(utts)
        extra = [u for u in self.utt2spk if u not in known]
        if extra:
            raise self._mismatch("utt2spk", extra, source, f"are not in {source}")

    def _check_spk2utt(self) -> None:
        """spk2utt must be the exact inverse of utt2spk."""
        if self.spk2utt is None:
            return
        name = "spk2utt"
        hint = "regenerate it: utils/utt2spk_to_spk2utt.sh < utt2spk > spk2utt"
        if self.utt2spk is None:
            raise DataError(f"{location(self.path / name)}spk2utt exists but utt2spk does not; "
                            "create utt2spk (spk2utt is derived from it)")
        expected = utt2spk_to_spk2utt(self.utt2spk)
        for spk, utts in self.spk2utt.items():
            here = self.where(name, spk)
            for u in utts:
                if self.utt2spk.get(u) != spk:
                    got = self.utt2spk.get(u)
                    why = "is not in utt2spk" if got is None else \
                        f"maps to speaker {got!r} in {self.where('utt2spk', u).rstrip(': ')}"
                    raise DataError(f"{here}utterance {u!r} is listed under speaker {spk!r} but {why}; {hint}")
            listed = set(utts)
            lacking = [u for u in expected.get(spk, []) if u not in listed]
            if lacking:
                raise DataError(f"{here}speaker {spk!r} lacks {len(lacking)} utterance(s) of utt2spk "
                                f"(first: {lacking[0]!r}); {hint}")
        for spk, utts in expected.items():
            if spk not in self.spk2utt:
                at = self.where("utt2spk", utts[0]).rstrip(": ")
                raise DataError(f"{location(self.path / name)}speaker {spk!r} (from {at}) is missing; {hint}")


def read_targets(data_dir: str | os.PathLike[str] | DataDir, name: str,
                 labels: Collection[str] | None = None, partial: bool = False) -> dict[str, str]:
    """Read a task's answer file ``<data_dir>/<name>`` into ``{uttid: answer}``.

    It is a table file like ``text``, and is checked like it (DataError, ``file:line``):
    sorted, unique ids, no blank lines, no empty answer; every id must be an
    utterance of the data dir (its segments, else wav.scp, else text) and every
    utterance needs an answer (``partial``: a task of some utterances only, e.g. the intents
    of the voice-assistant part of a multi-task training set); with ``labels`` (a closed set) every answer must be
    one of them, compared exactly.  ``name == "text"`` reads the transcripts.
    """
    dd = data_dir if isinstance(data_dir, DataDir) else DataDir.load(data_dir, require=())
    if name in DATA_FILES and name != "text":
        raise ValueError(f"{name!r} is not an answer file; use text or a task's own file (intent, answer, ...)")
    path = dd.path / name
    if not path.is_file():
        raise DataError(f"{location(path)}answer file is missing (needed by the task: one "
                        f"'<utt> <answer>' line per utterance)")
    values, where = _read_table(path)
    source = "segments" if dd.segments is not None else ("wav.scp" if dd.wav_scp is not None else "text")
    known = set(dd.utt_ids)
    for uid in values:
        if uid not in known:
            raise DataError(f"{location(path, where[uid])}utterance {uid!r} is not in {source} of "
                            f"{dd.path}; delete the line or add the utterance")
    missing = [] if partial else [u for u in dd.utt_ids if u not in values]
    if missing:
        at = dd.where(source, missing[0]).rstrip(": ")
        raise DataError(f"{location(path)}{len(missing)} utterance(s) have no answer (first: {missing[0]!r} "
                        f"from {at}); add their lines or drop them from the data dir")
    if labels is not None:
        closed = set(labels)
        for uid, value in values.items():
            if value not in closed:
                shown = ", ".join(sorted(closed)[:20]) + (", ..." if len(closed) > 20 else "")
                raise DataError(f"{location(path, where[uid])}label {value!r} of {uid!r} is not one of the "
                                f"{len(closed)} labels of the task ({shown})")
    return values


def write_data_dir(path: str | os.PathLike[str], *, wav_scp: Mapping[str, str] | None = None,
                   text: Mapping[str, str] | None = None,
                   utt2spk: Mapping[str, str] | None = None,
                   extra: Mapping[str, Mapping[str, str]] | None = None) -> DataDir:
    """Write the given tables plus utt2spk/spk2utt, then load and validate the directory.

    Without ``utt2spk`` every utterance is its own speaker (uid -> uid). ``extra`` holds more
    tables by file name, e.g. the answers of a task (``{"intent": {uid: label}}``); it may not
    name a Kaldi table.
    """
    if wav_scp is None and text is None:
        raise ValueError("write_data_dir needs wav_scp or text")
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    if utt2spk is None:
        utt2spk = {u: u for u in (wav_scp if wav_scp is not None else text)}  # type: ignore[union-attr]
    if wav_scp is not None:
        write_kv(root / "wav.scp", wav_scp)
    if text is not None:
        write_kv(root / "text", text)
    for name, table in (extra or {}).items():
        if name in DATA_FILES or "/" in name:
            raise ValueError(f"write_data_dir: extra table {name!r} is a Kaldi table or not a file name")
        write_kv(root / name, table)
    write_kv(root / "utt2spk", utt2spk)
    write_kv(root / "spk2utt", utt2spk_to_spk2utt(utt2spk))
    return DataDir.load(root, require=())
