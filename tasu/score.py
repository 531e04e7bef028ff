"""WER/CER scoring of Kaldi-style ``text`` files, ``result.txt`` and ``RESULTS.md``.

Both references and hypotheses go through :func:`normalize_text` before
scoring; the error rates are computed with ``jiwer`` and reported as
percentages.  ``result.txt`` follows the ESPnet/sclite layout: a summary
header, then the aligned ``REF:``/``HYP:`` pair of every utterance with errors.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import jiwer

from tasu.data import atomic_write_text

__all__ = [
    "NORMALIZATION_DESCRIPTION",
    "atomic_write_text",
    "ScoreResult",
    "UttScore",
    "format_alignment",
    "normalize_text",
    "read_text",
    "score_texts",
    "summary_dict",
    "write_result",
    "write_results_md",
]

NORMALIZATION_DESCRIPTION = (
    "NFKC, lowercase, curly quotes -> ASCII, punctuation removed except "
    "word-internal apostrophes, hyphens -> spaces, whitespace collapsed"
)

# Typographic quotes and apostrophe look-alikes mapped to their ASCII forms.
_QUOTE_MAP = str.maketrans(
    {
        "\u2018": "'",  # left single quotation mark
        "\u2019": "'",  # right single quotation mark
        "\u201a": "'",  # single low-9 quotation mark
        "\u201b": "'",  # single high-reversed-9 quotation mark
        "\u2032": "'",  # prime
        "\u02bc": "'",  # modifier letter apostrophe
        "\u201c": '"',  # left double quotation mark
        "\u201d": '"',  # right double quotation mark
        "\u201e": '"',  # double low-9 quotation mark
        "\u201f": '"',  # double high-reversed-9 quotation mark
        "\u2033": '"',  # double prime
    }
)

# Hyphen and dash characters: all become word separators.
_HYPHENS = frozenset("-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d")


def _is_word_char(ch: str) -> bool:
    """True for letters, digits and combining marks (parts of a word)."""
    return ch.isalnum() or unicodedata.category(ch).startswith("M")


def normalize_text(s: str) -> str:
    """Normalise a transcript for scoring (applied to references and hypotheses).

    Steps, in order:

    1. Unicode NFKC (full-width forms, ligatures, ... become canonical).
    2. Lowercase (``str.lower``).
    3. Curly/typographic quotes become ASCII ``'`` and ``"``.
    4. Hyphens and dashes become spaces (``well-known`` -> ``well known``).
    5. Punctuation (Unicode category ``P*``, which includes ``%``, ``&``,
       ``/``) becomes a space, except an apostrophe between two word
       characters (``don't`` stays, ``'quoted'`` -> ``quoted``).  Symbols
       (``S*``, e.g. ``$``, ``+``) are kept.
    6. Runs of whitespace collapse to one space; ends are stripped.
    """
    s = unicodedata.normalize("NFKC", s).lower().translate(_QUOTE_MAP)
    out: list[str] = []
    n = len(s)
    for i, ch in enumerate(s):
        if ch in _HYPHENS:
            out.append(" ")
        elif ch == "'":
            internal = 0 < i < n - 1 and _is_word_char(s[i - 1]) and _is_word_char(s[i + 1])
            out.append("'" if internal else " ")
        elif unicodedata.category(ch).startswith("P"):
            out.append(" ")
        else:
            out.append(ch)
    return " ".join("".join(out).split())


def read_text(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read a Kaldi ``text`` file (``<uttid> <transcript...>`` per line).

    The transcript may be empty (a line holding only the id).  Raises
    ``ValueError("<path>:<line>: ...")`` for a line without an id or a
    duplicate id.
    """
    result: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            parts = line.strip().split(maxsplit=1)
            if not parts:
                raise ValueError(f"{path}:{lineno}: line without utterance id")
            uttid = parts[0]
            if uttid in result:
                raise ValueError(f"{path}:{lineno}: duplicate utterance id {uttid!r}")
            result[uttid] = parts[1].strip() if len(parts) > 1 else ""
    return result


# An alignment step: (op, ref_token, hyp_token) with op in
# {"C" correct, "S" substitution, "D" deletion, "I" insertion};
# the missing side of a D/I is "".
AlignOp = tuple[str, str, str]


@dataclass
class UttScore:
    """Word-level score of one utterance (normalised text)."""

    uttid: str
    ref: str
    hyp: str
    n_ref_words: int
    sub: int
    dele: int
    ins: int
    ops: list[AlignOp] = field(default_factory=list)
    missing_hyp: bool = False

    @property
    def n_errors(self) -> int:
        """Total word errors (sub + del + ins)."""
        return self.sub + self.dele + self.ins


@dataclass
class ScoreResult:
    """Corpus-level WER/CER (percent) with word and character error counts."""

    n_utts: int
    n_ref_words: int
    wer: float
    cer: float
    sub: int
    dele: int
    ins: int
    n_missing_hyp: int = 0
    n_extra_hyp: int = 0
    n_empty_ref: int = 0
    n_ref_chars: int = 0
    char_sub: int = 0
    char_dele: int = 0
    char_ins: int = 0
    details: list[UttScore] = field(default_factory=list)

    @property
    def n_word_errors(self) -> int:
        """Total word errors (sub + del + ins)."""
        return self.sub + self.dele + self.ins

    @property
    def n_char_errors(self) -> int:
        """Total character errors (sub + del + ins)."""
        return self.char_sub + self.char_dele + self.char_ins

    @property
    def n_utts_with_errors(self) -> int:
        """Number of scored utterances with at least one word error."""
        return sum(1 for d in self.details if d.n_errors > 0)


_CHUNK_OPS = {"equal": "C", "substitute": "S", "delete": "D", "insert": "I"}


def _chunks_to_ops(chunks: Iterable[Any], ref: Sequence[str], hyp: Sequence[str]) -> list[AlignOp]:
    """Expand jiwer alignment chunks into one (op, ref, hyp) step per token."""
    ops: list[AlignOp] = []
    for c in chunks:
        op = _CHUNK_OPS[c.type]
        if op in ("C", "S"):
            for r, h in zip(ref[c.ref_start_idx : c.ref_end_idx], hyp[c.hyp_start_idx : c.hyp_end_idx]):
                ops.append((op, r, h))
        elif op == "D":
            ops.extend(("D", r, "") for r in ref[c.ref_start_idx : c.ref_end_idx])
        else:
            ops.extend(("I", "", h) for h in hyp[c.hyp_start_idx : c.hyp_end_idx])
    return ops


def score_texts(ref: Mapping[str, str], hyp: Mapping[str, str], normalize: bool = True) -> ScoreResult:
    """Score hypotheses against references (both ``{uttid: text}``).

    Texts are normalised with :func:`normalize_text` (``normalize=False``: only
    whitespace is collapsed, for unit sequences).  A reference id without a
    hypothesis is scored as an empty hypothesis (all deletions) and counted in
    ``n_missing_hyp`` (which counts every such id, empty references included); hypothesis ids without a reference are ignored and
    counted in ``n_extra_hyp``; references that are empty after normalisation
    are skipped and counted in ``n_empty_ref``.  WER uses
    ``jiwer.process_words``; CER uses ``jiwer.process_characters`` (the
    computation behind ``jiwer.cer``), spaces counting as characters.
    Raises ``ValueError`` if no non-empty reference is left to score.
    """
    ids: list[str] = []
    refs: list[str] = []
    hyps: list[str] = []
    missing: list[bool] = []
    n_empty_ref = 0
    n_missing_hyp = 0
    norm = normalize_text if normalize else (lambda t: " ".join(t.split()))
    for uttid in sorted(ref):
        r = norm(ref[uttid])
        is_missing = uttid not in hyp
        n_missing_hyp += is_missing
        if not r:
            n_empty_ref += 1
            continue
        ids.append(uttid)
        refs.append(r)
        hyps.append("" if is_missing else norm(hyp[uttid]))
        missing.append(is_missing)
    n_extra_hyp = sum(1 for uttid in hyp if uttid not in ref)
    if not ids:
        raise ValueError("no non-empty reference utterance to score")

    words = jiwer.process_words(refs, hyps)
    chars = jiwer.process_characters(refs, hyps)

    details: list[UttScore] = []
    for i, uttid in enumerate(ids):
        ops = _chunks_to_ops(words.alignments[i], words.references[i], words.hypotheses[i])
        details.append(
            UttScore(
                uttid=uttid,
                ref=refs[i],
                hyp=hyps[i],
                n_ref_words=len(words.references[i]),
                sub=sum(op == "S" for op, _, _ in ops),
                dele=sum(op == "D" for op, _, _ in ops),
                ins=sum(op == "I" for op, _, _ in ops),
                ops=ops,
                missing_hyp=missing[i],
            )
        )

    return ScoreResult(
        n_utts=len(ids),
        n_ref_words=words.hits + words.substitutions + words.deletions,
        wer=100.0 * words.wer,
        cer=100.0 * chars.cer,
        sub=words.substitutions,
        dele=words.deletions,
        ins=words.insertions,
        n_missing_hyp=n_missing_hyp,
        n_extra_hyp=n_extra_hyp,
        n_empty_ref=n_empty_ref,
        n_ref_chars=chars.hits + chars.substitutions + chars.deletions,
        char_sub=chars.substitutions,
        char_dele=chars.deletions,
        char_ins=chars.insertions,
        details=details,
    )


def format_alignment(ops: Sequence[AlignOp]) -> tuple[str, str]:
    """Render an alignment as padded ``(ref_line, hyp_line)`` without prefixes.

    Correct words stay lowercase, errors are UPPER case and the empty side
    of a deletion/insertion is ``***``.
    """
    ref_cells: list[str] = []
    hyp_cells: list[str] = []
    for op, r, h in ops:
        if op == "C":
            rc, hc = r, h
        else:
            rc = r.upper() if r else "***"
            hc = h.upper() if h else "***"
        width = max(len(rc), len(hc))
        ref_cells.append(rc.ljust(width))
        hyp_cells.append(hc.ljust(width))
    return " ".join(ref_cells).rstrip(), " ".join(hyp_cells).rstrip()


def _rate_line(name: str, rate: float, errors: int, total: int, ins: int, dele: int, sub: int) -> str:
    """One sclite-style summary line, e.g. ``%WER 12.34 [ 56 / 454, ... ]``."""
    return f"%{name} {rate:.2f} [ {errors} / {total}, {ins} ins, {dele} del, {sub} sub ]"


def write_result(result: ScoreResult, path: str | os.PathLike[str], *, ref_name: str, hyp_name: str,
                 units: bool = False) -> None:
    """Write an ESPnet/sclite-like human-readable ``result.txt`` (atomically).

    Header: ref/hyp names, normalisation, ``%WER``/``%CER`` lines and counts;
    then, sorted by id, the ``id``/``REF:``/``HYP:`` alignment of every
    utterance with word errors.
    """
    r = result
    lines = [
        f"REF: {ref_name}",
        f"HYP: {hyp_name}",
        f"Normalisation: {'none (unit sequences)' if units else NORMALIZATION_DESCRIPTION}",
        _rate_line("UER" if units else "WER", r.wer, r.n_word_errors, r.n_ref_words, r.ins, r.dele, r.sub),
        _rate_line("CER", r.cer, r.n_char_errors, r.n_ref_chars, r.char_ins, r.char_dele, r.char_sub),
        f"#utts: {r.n_utts} scored, {r.n_utts_with_errors} with errors",
        f"#missing hyp: {r.n_missing_hyp} (ref ids without hyp line; scored as empty)",
        f"#extra hyp: {r.n_extra_hyp} (ignored)",
        f"#empty ref: {r.n_empty_ref} (skipped)",
        "",
    ]
    for d in sorted(r.details, key=lambda u: u.uttid):
        if d.n_errors == 0:
            continue
        ref_line, hyp_line = format_alignment(d.ops)
        note = ", missing hyp" if d.missing_hyp else ""
        lines += [
            f"id: ({d.uttid})",
            f"Scores: (#C #S #D #I) {d.n_ref_words - d.sub - d.dele} {d.sub} {d.dele} {d.ins}{note}",
            f"REF: {ref_line}",
            f"HYP: {hyp_line}",
            "",
        ]
    atomic_write_text(path, "\n".join(lines))


def summary_dict(result: ScoreResult, **extra: Any) -> dict[str, Any]:
    """Summary numbers of ``result`` as a JSON-ready dict (plus ``extra`` keys)."""
    summary: dict[str, Any] = dict(extra)
    summary.update(
        n_utts=result.n_utts,
        n_ref_words=result.n_ref_words,
        wer=round(result.wer, 4),
        cer=round(result.cer, 4),
        sub=result.sub,
        dele=result.dele,
        ins=result.ins,
        n_ref_chars=result.n_ref_chars,
        n_missing_hyp=result.n_missing_hyp,
        n_extra_hyp=result.n_extra_hyp,
        n_empty_ref=result.n_empty_ref,
    )
    return summary


_MD_COLUMNS = ("set", "n_utts", "wer", "cer", "encoder_uer", "model", "date")


def _md_cell(value: Any, *, rate: bool = False) -> str:
    """Format one table cell (rates as numbers with 2 decimals), ``|`` escaped."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    text = f"{float(value):.2f}" if rate and is_number else str(value)
    return " ".join(text.replace("|", "\\|").split())


def write_results_md(
    path: str | os.PathLike[str],
    rows: Sequence[Mapping[str, Any]],
    *,
    title: str,
    notes: str = "",
) -> None:
    """Regenerate ``RESULTS.md``: a title, the results table, then ``notes``.

    Each row needs the keys ``set, n_utts, wer, cer, model, date``; ``encoder_uer``
    (the encoder's own unit error rate on the set) is optional.  Rows are
    written in the given order.  Written atomically.
    """
    lines = [
        f"# {title}",
        "",
        "| set | #utts | WER (%) | CER (%) | encoder UER (%) | model | date |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for i, row in enumerate(rows):
        row = {**row, "encoder_uer": "-" if row.get("encoder_uer") is None else row["encoder_uer"]}
        missing = [k for k in _MD_COLUMNS if k not in row]
        if missing:
            raise ValueError(f"results row {i} lacks key(s): {', '.join(missing)}")
        cells = [_md_cell(row[k], rate=k in ("wer", "cer", "encoder_uer")) for k in _MD_COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    if notes.strip():
        text += "\n" + notes.strip() + "\n"
    atomic_write_text(path, text)
