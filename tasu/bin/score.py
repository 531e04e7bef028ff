"""Score a decode (WER/CER) or regenerate a RESULTS.md from scored decode dirs.

Score mode:

    python -m tasu.bin.score --ref data/test/text \\
        --hyp exp/x/decode_test/text --out exp/x/decode_test/result.txt

prints ``<set>: WER 12.34 % CER 5.67 % (N utts)``, writes ``result.txt`` and
the summary numbers as JSON (default ``score.json`` next to ``result.txt``).
Other metrics: ``--metric accuracy|mc_accuracy|bleu`` (or ``--task intent``,
which takes the metric, and the mc option letters, from the task registry);
``--ref`` is then the task's answer file (e.g. ``data/test/intent``) and
``result.txt`` lists every wrong answer.

``--bias_lists FILE`` (``<uttid> w1 w2 ...`` lines, e.g. from ``python -m
tasu.bin.make_bias_lists``) adds U-WER and B-WER (Le et al. 2021) from the same alignment:
a second printed line ``<set>: WER ... U-WER ... B-WER ...``, their ``%U-WER``/``%B-WER`` lines
in ``result.txt``'s header and their counts in the JSON summary.

RESULTS.md mode:

    python -m tasu.bin.score --results-md exp/x/RESULTS.md \\
        --decode-dirs exp/x/decode_a exp/x/decode_b --model "<description>"

reads each decode dir's ``score.json`` and rewrites RESULTS.md with today's date.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tasu.fileio import atomic_write_text
from tasu.report import (
    format_task_score,
    kept_rows,
    summary_dict,
    task_summary_dict,
    write_result,
    write_results_md,
    write_task_result,
)
from tasu.score import METRICS, BiasedScore, ScoreResult, read_text, score_metric, score_texts, split_by_bias
from tasu.textnorm import NORMALIZATION_DESCRIPTION

SCORE_JSON = "score.json"


def build_parser() -> argparse.ArgumentParser:
    """Command-line parser for both modes."""
    parser = argparse.ArgumentParser(
        prog="python -m tasu.bin.score",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"Text normalisation (refs and hyps): {NORMALIZATION_DESCRIPTION}.",
    )
    score = parser.add_argument_group("score mode")
    score.add_argument("--ref", type=Path, help="reference Kaldi text file (<uttid> <words...>)")
    score.add_argument("--hyp", type=Path, help="hypothesis Kaldi text file (empty transcripts allowed)")
    score.add_argument("--out", type=Path, help="result.txt to write (summary + per-utterance alignments)")
    score.add_argument(
        "--json",
        type=Path,
        default=None,
        help=f"summary JSON to write (default: {SCORE_JSON} next to --out)",
    )
    score.add_argument(
        "--units",
        action="store_true",
        help="score unit sequences (e.g. phonemes): no text normalisation, the rate is a UER",
    )
    score.add_argument("--metric", choices=METRICS, default=None,
                       help="metric (default: wer, or the --task's metric); wer/cer write the WER result.txt")
    score.add_argument("--task", default=None, help="score by this task's metric (from --tasks)")
    score.add_argument("--tasks", type=Path, default=None,
                       help="task registry YAML for --task (default: the one shipped in tasu/conf/tasks.yaml)")
    score.add_argument("--bias_lists", "--bias-lists", type=Path, default=None,
                       help="per-utterance biasing words (<uttid> w1 w2 ...; an utterance absent has none): "
                            "also report U-WER and B-WER")
    score.add_argument(
        "--set-name",
        default=None,
        help="name of the test set in the summary (default: directory name of --ref)",
    )
    md = parser.add_argument_group("RESULTS.md mode")
    md.add_argument("--results-md", type=Path, help="RESULTS.md to regenerate")
    md.add_argument(
        "--decode-dirs",
        type=Path,
        nargs="+",
        help=f"decode directories, each holding a {SCORE_JSON} written by score mode",
    )
    md.add_argument("--model", help="model description for the 'model' column (default: each decode "
                    "dir's parent, i.e. its exp dir name)")
    md.add_argument("--title", default="Results", help="heading of RESULTS.md (default: %(default)s)")
    md.add_argument("--notes-file", type=Path, default=None, help="markdown appended after the table")
    md.add_argument("--fresh", action="store_true",
                    help="drop the rows of an existing --results-md that no decode dir gives (default: keep "
                         "them verbatim, before the new rows: the decodes of earlier models may be gone "
                         "with the machine that made them, not their results)")
    return parser


def read_bias_lists(path: Path) -> dict[str, list[str]]:
    """``<uttid> w1 w2 ...`` lines (an id alone: no words) -> utterance id -> words, read as
    ``tasu-infer --hotwords_per_utt`` reads them (:func:`tasu.hotwords.read_utt_hotwords`: blank
    lines and ``#`` comments skipped; a repeated id or a line that is not UTF-8 raises a ValueError
    naming ``file:line``), so one file biases a decode and scores it."""
    from tasu.hotwords import read_utt_hotwords

    return {uid: list(words) for uid, words in read_utt_hotwords(path, 0.0).items()}


def add_bias_scores(args: argparse.Namespace, result: ScoreResult, ref: dict[str, str], lists: dict[str, list[str]],
                    normalize: bool | Callable[[str], str]) -> tuple[BiasedScore, int]:
    """U-WER and B-WER of ``result`` by the ``--bias_lists`` ``lists``, spliced into result.txt's
    header (rewritten atomically), and the number of lists of utterances not in ``ref`` (warned about)."""
    unknown = sorted(u for u in lists if u not in ref)
    if unknown:
        print(f"warning: {args.bias_lists}: {len(unknown)} lists of utterances not in {args.ref} (ignored), "
              f"e.g. {unknown[0]!r}", file=sys.stderr)
    bias = split_by_bias(result, lists, normalize)
    lines = args.out.read_text(encoding="utf-8").split("\n")
    end = lines.index("")  # the blank line that ends write_result's header
    lines[end:end] = [f"Bias lists: {args.bias_lists} ({len(lists)} utts, {len(unknown)} not in ref)",
                      *bias.table().split("\n")[1:]]  # its %WER line is the header's
    atomic_write_text(args.out, "\n".join(lines))
    return bias, len(unknown)


def bias_summary(bias: BiasedScore, path: Path, n_unknown: int) -> dict[str, Any]:
    """The JSON summary's keys of the biased scoring: the counts, ``u_wer`` and ``b_wer``."""
    rate = lambda r: None if r is None else round(r, 4)  # noqa: E731
    return {"bias_lists": str(path), **{k: v for k, v in dataclasses.asdict(bias).items() if k.endswith(("_u", "_b"))},
            "u_wer": rate(bias.u_wer), "b_wer": rate(bias.b_wer), "n_bias_lists_not_in_ref": n_unknown}


def run_task_score(args: argparse.Namespace, metric: str, labels: Sequence[str] | None, task=None) -> int:
    """Score mode for accuracy, mc_accuracy, BLEU and a task's own metric: result.txt, JSON summary, one line."""
    refs, hyps = read_text(args.ref), read_text(args.hyp)
    if task is not None:
        from tasu.tasks import score_task

        result = score_task(task, refs, hyps)
    else:
        result = score_metric(metric, refs, hyps, labels)
    set_name = args.set_name or args.ref.resolve().parent.name
    write_task_result(result, args.out, ref_name=str(args.ref), hyp_name=str(args.hyp))
    json_path = args.json if args.json is not None else args.out.parent / SCORE_JSON
    extra = {"set": set_name, "ref": str(args.ref), "hyp": str(args.hyp)} | ({"task": task.name} if task else {})
    atomic_write_text(json_path, json.dumps(task_summary_dict(result, **extra), indent=2) + "\n")
    if result.n_missing_hyp or result.n_extra_hyp:
        print(f"warning: {result.n_missing_hyp} missing hyp (scored as empty), "
              f"{result.n_extra_hyp} extra hyp (ignored)", file=sys.stderr)
    print(f"{set_name}: {format_task_score(result)}")
    return 0


def run_score(args: argparse.Namespace) -> int:
    """Score mode: write result.txt and the JSON summary, print one line."""
    metric, labels, task, normalize = args.metric, None, None, not args.units
    if args.task is not None:
        from tasu.tasks import load_tasks

        task = load_tasks(args.tasks).get(args.task, "--task")
        if metric is not None and metric != task.metric:
            raise ValueError(f"--metric {metric} contradicts task {task.name!r}, whose metric is {task.metric}")
        metric, labels = task.metric, task.labels
        if metric in ("wer", "cer") and not task.metric_fn:  # the WER report, with the task's normaliser
            normalize = task.metric_options.get("normalizer") or normalize
            task = None
    if metric not in (None, "wer", "cer") or task is not None:
        if args.bias_lists is not None:
            raise ValueError(f"--bias_lists splits a WER; it does not go with metric {metric}")
        if args.units:
            raise ValueError(f"--units scores unit error rates; it does not go with metric {metric}")
        return run_task_score(args, metric, labels, task)
    ref = read_text(args.ref)
    hyp = read_text(args.hyp)
    lists = read_bias_lists(args.bias_lists) if args.bias_lists is not None else None
    result = score_texts(ref, hyp, normalize=normalize)
    set_name = args.set_name or args.ref.resolve().parent.name
    write_result(result, args.out, ref_name=str(args.ref), hyp_name=str(args.hyp), units=args.units)
    json_path = args.json if args.json is not None else args.out.parent / SCORE_JSON
    summary = summary_dict(result, set=set_name, ref=str(args.ref), hyp=str(args.hyp),
                           metric="UER" if args.units else "WER")
    bias = None
    if lists is not None:
        bias, n_unknown = add_bias_scores(args, result, ref, lists, normalize)
        summary.update(bias_summary(bias, args.bias_lists, n_unknown))
    atomic_write_text(json_path, json.dumps(summary, indent=2) + "\n")
    if result.n_missing_hyp or result.n_extra_hyp or result.n_empty_ref:
        print(
            f"warning: {result.n_missing_hyp} missing hyp (scored as empty), "
            f"{result.n_extra_hyp} extra hyp (ignored), "
            f"{result.n_empty_ref} empty ref (skipped)",
            file=sys.stderr,
        )
    if args.units:
        print(f"{set_name}: UER {result.wer:.2f} % ({result.n_utts} utts)")
    else:
        print(f"{set_name}: WER {result.wer:.2f} % CER {result.cer:.2f} % ({result.n_utts} utts)")
    if bias is not None:
        print(f"{set_name}: {bias}")
    return 0


def load_row(decode_dir: Path, *, model: str, date: str) -> dict[str, Any]:
    """One RESULTS.md row from ``<decode_dir>/score.json``."""
    path = decode_dir / SCORE_JSON
    if not path.is_file():
        raise ValueError(f"{path}: not found (run score mode on this decode dir first)")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a valid JSON summary ({e}); re-run score mode on {decode_dir}") from None
    if summary.get("metric", "WER") not in ("WER", "UER", "wer", "cer"):  # another task's metric
        missing = [k for k in ("n_utts", "value") if k not in summary]
        if missing:
            raise ValueError(f"{path}: lacks key(s): {', '.join(missing)}")
        return {"set": summary.get("set", decode_dir.name), "task": summary.get("task") or "-",
                "n_utts": summary["n_utts"], "metric": summary["metric"], "value": summary["value"],
                "model": model, "date": date}
    missing = [k for k in ("n_utts", "n_ref_words", "sub", "dele", "ins", "wer", "cer") if k not in summary]
    if missing:
        raise ValueError(f"{path}: lacks key(s): {', '.join(missing)}")
    enc = decode_dir / "encoder_score.json"  # the encoder's own unit error rate, when scored
    uer = json.loads(enc.read_text(encoding="utf-8")).get("wer") if enc.is_file() else None
    return {**{k: summary[k] for k in ("n_utts", "n_ref_words", "sub", "dele", "ins", "wer", "cer")},
            "n_utts_with_errors": summary.get("n_utts_with_errors"),  # older summaries lack it: S.Err "-"
            "set": summary.get("set", decode_dir.name), "encoder_uer": uer, "model": model, "date": date}


def run_results_md(args: argparse.Namespace) -> int:
    """RESULTS.md mode: collect score.json summaries and rewrite the file."""
    date = datetime.date.today().isoformat()
    rows = [load_row(d, model=args.model or d.resolve().parent.name, date=date) for d in args.decode_dirs]
    notes = args.notes_file.read_text(encoding="utf-8") if args.notes_file else ""
    kept = ([], []) if args.fresh else kept_rows(args.results_md, rows)
    write_results_md(args.results_md, rows, title=args.title, notes=notes, kept=kept)
    n_kept = len(kept[0]) + len(kept[1])
    print(f"wrote {args.results_md} ({len(rows)} rows" + (f", {n_kept} kept from before)" if n_kept else ")"))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    score_mode = any(x is not None for x in (args.ref, args.hyp, args.out))
    md_mode = args.results_md is not None or args.decode_dirs is not None
    if score_mode == md_mode:
        parser.error("give either --ref/--hyp/--out (score) or --results-md/--decode-dirs/--model")
    if score_mode and None in (args.ref, args.hyp, args.out):
        parser.error("score mode needs --ref, --hyp and --out")
    if md_mode and (args.results_md is None or not args.decode_dirs):
        parser.error("RESULTS.md mode needs --results-md and --decode-dirs")
    try:
        if score_mode:  # read_text's own errors name no file for bytes that are not UTF-8
            from tasu.data import read_table_lines

            for path in (args.ref, args.hyp):
                read_table_lines(path)  # DataError "<file>:<line>: not valid UTF-8 ..."
        return run_score(args) if score_mode else run_results_md(args)
    except (OSError, ValueError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
