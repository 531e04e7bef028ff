"""Score reports: ESPnet/sclite-style ``result.txt``, JSON summaries and the recipe's RESULTS.md.

Metrics are computed by :mod:`tasu.score`; this module only lays them out.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tasu.fileio import atomic_write_text
from tasu.score import AlignOp, ScoreResult, TaskScore
from tasu.textnorm import NORMALIZATION_DESCRIPTION


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
        n_utts_with_errors=result.n_utts_with_errors,
        n_missing_hyp=result.n_missing_hyp,
        n_extra_hyp=result.n_extra_hyp,
        n_empty_ref=result.n_empty_ref,
    )
    return summary


_MD_TASK_COLUMNS = ("set", "task", "n_utts", "metric", "value", "model", "date")
#: the WER table, as ESPnet's RESULTS.md lay it out (sclite's columns; rates in % of Wrd / Snt)
_MD_HEADER = ("| set | Snt | Wrd | Corr | Sub | Del | Ins | Err | S.Err | CER | encoder UER | model | date |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")


def _md_cell(value: Any, *, rate: bool = False, digits: int = 1) -> str:
    """Format one table cell (rates with ``digits`` decimals: 1 as sclite prints them), ``|`` escaped."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    text = f"{float(value):.{digits}f}" if rate and is_number else str(value)
    return " ".join(text.replace("|", "\\|").split())


def _wer_cells(row: Mapping[str, Any], i: int) -> list[str]:
    """``set, n_utts, n_ref_words, sub, dele, ins, wer, cer, model, date`` (+ ``n_utts_with_errors``,
    ``encoder_uer`` when known) -> the cells of one row of the WER table."""
    missing = [k for k in ("set", "n_utts", "n_ref_words", "sub", "dele", "ins", "wer", "cer", "model", "date")
               if k not in row]
    if missing:
        raise ValueError(f"results row {i} lacks key(s): {', '.join(missing)}")
    words = row["n_ref_words"]
    pct = (lambda n: 100.0 * n / words) if words else (lambda n: 0.0)
    serr = row.get("n_utts_with_errors")
    cells = [row["set"], row["n_utts"], words, _md_cell(pct(words - row["sub"] - row["dele"]), rate=True),
             _md_cell(pct(row["sub"]), rate=True), _md_cell(pct(row["dele"]), rate=True),
             _md_cell(pct(row["ins"]), rate=True), _md_cell(row["wer"], rate=True),
             "-" if serr is None else _md_cell(100.0 * serr / max(row["n_utts"], 1), rate=True),
             _md_cell(row["cer"], rate=True),
             "-" if row.get("encoder_uer") is None else _md_cell(row["encoder_uer"], rate=True),
             row["model"], row["date"]]
    return [_md_cell(c) for c in cells]


def environment(cwd: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Where the numbers were made: date, git commit, python, torch and transformers versions,
    CPU (and GPU) model. Read without importing torch."""
    import datetime
    import platform
    import subprocess
    from importlib import metadata

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    def run(*cmd: str) -> str:
        try:
            r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return r.stdout.strip() if r.returncode == 0 else ""

    commit = run("git", "rev-parse", "--short=12", "HEAD")
    if commit and run("git", "status", "--porcelain", "--untracked-files=no"):
        commit += " (with uncommitted changes)"
    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    env = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
           "git commit": commit or "unknown", "python": platform.python_version(),
           "torch": version("torch"), "transformers": version("transformers"),
           "CPU": f"{cpu or platform.processor() or 'unknown'}, {os.cpu_count()} cores"}
    gpus = run("nvidia-smi", "--query-gpu=name", "--format=csv,noheader")
    if gpus:
        env["GPU"] = ", ".join(gpus.splitlines())
    return env


_MD_TASK_HEADER = ("| set | task | #utts | metric | value (%) | model | date |", "|---|---|---:|---|---:|---|---|")


def _table_lines(text: str, header: Sequence[str]) -> list[str]:
    """The body lines of the markdown table under ``header`` in ``text`` (none if it is absent)."""
    lines = text.splitlines()
    for i in range(len(lines) - 1):
        if lines[i].strip() == header[0] and lines[i + 1].strip() == header[1]:
            body = []
            for line in lines[i + 2:]:
                if not line.startswith("|"):
                    break
                body.append(line)
            return body
    return []


def kept_rows(path: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """The rows of an existing RESULTS.md that a regeneration from ``rows`` does not replace.

    A recipe's RESULTS.md is rebuilt from the decode dirs present, but ``exp/`` is not committed:
    on a new machine the decodes of earlier models are gone while their rows are the record.
    Returns (WER-table lines, task-table lines), verbatim, of every row whose (set, model) -- (set,
    task, model) for task rows -- no new row has. No file: nothing kept.
    """
    p = Path(path)
    if not p.is_file():
        return [], []
    text = p.read_text(encoding="utf-8")
    cells = lambda line: [c.strip() for c in line.strip().strip("|").split("|")]  # noqa: E731
    new_wer = {(str(r["set"]), str(r["model"])) for r in rows if r.get("metric", "WER") in ("WER", "wer", "cer")}
    new_task = {(str(r["set"]), str(r.get("task")), str(r["model"])) for r in rows
                if r.get("metric", "WER") not in ("WER", "wer", "cer")}
    wer = [ln for ln in _table_lines(text, _MD_HEADER) if (cells(ln)[0], cells(ln)[-2]) not in new_wer]
    task = [ln for ln in _table_lines(text, _MD_TASK_HEADER)
            if (cells(ln)[0], cells(ln)[1], cells(ln)[-2]) not in new_task]
    return wer, task


def write_results_md(
    path: str | os.PathLike[str],
    rows: Sequence[Mapping[str, Any]],
    *,
    title: str,
    notes: str = "",
    env: Mapping[str, str] | None = None,
    kept: tuple[Sequence[str], Sequence[str]] = ((), ()),
) -> None:
    """Regenerate ``RESULTS.md``: a title, the environment, the results table(s), then ``notes``.

    Transcription rows hold the counts of :func:`summary_dict` (``set, n_utts, n_ref_words,
    sub, dele, ins, wer, cer``, optionally ``n_utts_with_errors``) and ``model, date``;
    ``encoder_uer`` (the encoder's own unit error rate on the set) is optional. They make a
    table with sclite's columns, as ESPnet's RESULTS.md have it: Snt, Wrd, Corr, Sub, Del, Ins,
    Err, S.Err (% of words, S.Err % of sentences). Rows of other task metrics (a ``metric`` key
    other than WER: ``set, task, n_utts, metric, value, model, date``) go into a second table.
    Rows are written in the given order, after ``kept`` (WER-table and task-table lines of an
    earlier RESULTS.md, verbatim: :func:`kept_rows`). ``env``: the environment block (default:
    :func:`environment`). Written atomically.
    """
    task_rows = [r for r in rows if r.get("metric", "WER") not in ("WER", "wer", "cer")]
    rows = [r for r in rows if r not in task_rows]
    env = environment(Path(path).resolve().parent) if env is None else env
    lines = [f"# {title}", "", "## Environment", ""] + [f"- {k}: `{v}`" for k, v in env.items()] + [
        "", "## WER", "", *_MD_HEADER, *kept[0]]
    for i, row in enumerate(rows):
        lines.append("| " + " | ".join(_wer_cells(row, i)) + " |")
    if task_rows or kept[1]:
        lines += ["", *_MD_TASK_HEADER, *kept[1]]
        for i, row in enumerate(task_rows):
            missing = [k for k in _MD_TASK_COLUMNS if k not in row]
            if missing:
                raise ValueError(f"task results row {i} lacks key(s): {', '.join(missing)}")
            lines.append("| " + " | ".join(_md_cell(row[k], rate=k == "value", digits=2) for k in _MD_TASK_COLUMNS)
                         + " |")
    text = "\n".join(lines) + "\n"
    if notes.strip():
        text += "\n" + notes.strip() + "\n"
    atomic_write_text(path, text)


_METRIC_NAMES = {"wer": "WER", "cer": "CER", "accuracy": "ACC", "mc_accuracy": "MC-ACC", "bleu": "BLEU"}


def format_task_score(score: TaskScore) -> str:
    """One summary line, e.g. ``%ACC 80.00 [ 4 / 5 ]`` or ``BLEU 53.73 (5 utts)``."""
    name = _METRIC_NAMES.get(score.metric, score.metric.upper())
    if score.n_correct is not None:
        return f"%{name} {score.value:.2f} [ {score.n_correct} / {score.n_utts} ]"
    unit = "" if score.metric == "bleu" else "%"
    return f"{unit}{name} {score.value:.2f} ({score.n_utts} utts)"


def write_task_result(score: TaskScore, path: str | os.PathLike[str], *, ref_name: str, hyp_name: str) -> None:
    """Write a ``result.txt`` for a non-WER metric (atomically): a header, then every wrong answer."""
    norm = {"accuracy": NORMALIZATION_DESCRIPTION, "mc_accuracy": "option letter extracted from each side",
            "bleu": "none (sacrebleu tokenises; its signature below)"}.get(score.metric, NORMALIZATION_DESCRIPTION)
    lines = [
        f"REF: {ref_name}",
        f"HYP: {hyp_name}",
        f"Metric: {score.metric}",
        f"Normalisation: {norm}",
        format_task_score(score),
    ]
    if score.detail:
        lines.append(score.detail)
    lines += [
        f"#utts: {score.n_utts} scored",
        f"#missing hyp: {score.n_missing_hyp} (ref ids without hyp line; scored as empty)",
        f"#extra hyp: {score.n_extra_hyp} (ignored)",
        "",
    ]
    for uttid, ref, hyp in score.errors:
        lines += [f"id: ({uttid})", f"REF: {ref}", f"HYP: {hyp or '***'}", ""]
    atomic_write_text(path, "\n".join(lines))


def task_summary_dict(score: TaskScore, **extra: Any) -> dict[str, Any]:
    """Summary numbers of ``score`` as a JSON-ready dict (plus ``extra`` keys)."""
    summary: dict[str, Any] = dict(extra)
    summary.update(metric=score.metric, value=round(score.value, 4), n_utts=score.n_utts,
                   n_missing_hyp=score.n_missing_hyp, n_extra_hyp=score.n_extra_hyp)
    if score.n_correct is not None:
        summary["n_correct"] = score.n_correct
    if score.detail:
        summary["detail"] = score.detail
    return summary
