"""Metrics of Kaldi-style ``text`` files: WER/CER with their alignments, accuracy, BLEU.

Both references and hypotheses go through :func:`tasu.textnorm.normalize_text` before
scoring (BLEU excepted: sacrebleu tokenises raw text itself); the error rates are computed
with ``jiwer`` and reported as percentages. :func:`score_metric` scores by a metric name
(one of :data:`METRICS`; a task of :mod:`tasu.tasks` names its own, or brings its own
metric function and normaliser). :func:`score_biased` / :func:`split_by_bias` split the WER of
one alignment into U-WER and B-WER by per-utterance biasing words (the contextual-biasing
protocol of Le et al. 2021; the lists: :mod:`tasu.bin.make_bias_lists`). The reports
(``result.txt``, RESULTS.md) are :mod:`tasu.report`'s.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jiwer

from tasu.textnorm import normalize_text

__all__ = [
    "AlignOp",
    "METRICS",
    "METRIC_OPTIONS",
    "TaskScore",
    "DEFAULT_CHOICES",
    "extract_choice",
    "score_accuracy",
    "score_bleu",
    "score_mc_accuracy",
    "score_metric",
    "ScoreResult",
    "UttScore",
    "CountBin",
    "errors_by_count",
    "read_text",
    "score_texts",
    "BiasedScore",
    "score_biased",
    "split_by_bias",
]


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


def _normalizer(normalize: bool | Callable[[str], str]) -> Callable[[str], str]:
    """The text normaliser that :func:`score_texts`'s ``normalize`` argument names."""
    if callable(normalize):
        own = normalize
        return lambda t: " ".join(own(t).split())
    return normalize_text if normalize else (lambda t: " ".join(t.split()))


def score_texts(ref: Mapping[str, str], hyp: Mapping[str, str],
                normalize: bool | Callable[[str], str] = True) -> ScoreResult:
    """Score hypotheses against references (both ``{uttid: text}``).

    Texts are normalised with :func:`normalize_text` (``normalize=False``: only
    whitespace is collapsed, for unit sequences; a function: a corpus's own normaliser).  A reference id without a
    hypothesis is scored as an empty hypothesis (all deletions) and counted in
    ``n_missing_hyp`` (which counts every such id, empty references included);
    hypothesis ids without a reference are ignored and counted in ``n_extra_hyp``;
    references that are empty after normalisation are skipped and counted in ``n_empty_ref``.  WER uses
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
    norm = _normalizer(normalize)
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


def _rate(errors: int, words: int) -> float | None:
    """``errors`` in percent of ``words`` (None for no words), computed as jiwer computes the WER."""
    return 100.0 * (errors / words) if words else None


@dataclass(frozen=True)
class BiasedScore:
    """WER split by biasing words: U-WER and B-WER (Le et al. 2021, fbai-speech ``is21_deep_bias``).

    ``*_u`` count reference words outside their utterance's bias set and ``*_b`` those inside it:
    ``n_ref_*`` the words, ``sub_*``/``dele_*`` the ones substituted/deleted; ``ins_*`` count
    inserted hypothesis words outside/inside the set. ``n_utts``, ``n_missing_hyp``,
    ``n_extra_hyp`` and ``n_empty_ref`` are :class:`ScoreResult`'s. Rates are percentages; U-WER
    (B-WER) is None when no reference word is unbiased (biased).
    """

    n_utts: int
    n_ref_u: int
    n_ref_b: int
    sub_u: int
    dele_u: int
    ins_u: int
    sub_b: int
    dele_b: int
    ins_b: int
    n_missing_hyp: int = 0
    n_extra_hyp: int = 0
    n_empty_ref: int = 0

    @property
    def n_ref_words(self) -> int:
        """All reference words (unbiased + biased)."""
        return self.n_ref_u + self.n_ref_b

    @property
    def n_errors_u(self) -> int:
        """Errors of the unbiased words (sub + del + ins)."""
        return self.sub_u + self.dele_u + self.ins_u

    @property
    def n_errors_b(self) -> int:
        """Errors of the biased words (sub + del + ins)."""
        return self.sub_b + self.dele_b + self.ins_b

    @property
    def wer(self) -> float:
        """All errors in percent of all reference words: :func:`score_texts`'s WER."""
        return _rate(self.n_errors_u + self.n_errors_b, self.n_ref_words) or 0.0

    @property
    def u_wer(self) -> float | None:
        """Unbiased errors in percent of the unbiased reference words."""
        return _rate(self.n_errors_u, self.n_ref_u)

    @property
    def b_wer(self) -> float | None:
        """Biased errors in percent of the biased reference words."""
        return _rate(self.n_errors_b, self.n_ref_b)

    def table(self) -> str:
        """Three sclite-style lines: ``%WER``, ``%U-WER``, ``%B-WER`` (``-`` for an undefined rate)."""
        rows = (("WER", self.wer, self.sub_u + self.sub_b, self.dele_u + self.dele_b, self.ins_u + self.ins_b,
                 self.n_ref_words),
                ("U-WER", self.u_wer, self.sub_u, self.dele_u, self.ins_u, self.n_ref_u),
                ("B-WER", self.b_wer, self.sub_b, self.dele_b, self.ins_b, self.n_ref_b))
        return "\n".join(f"%{name} {'-' if rate is None else f'{rate:.2f}'} [ {s + d + i} / {n}, {i} ins, "
                         f"{d} del, {s} sub ]" for name, rate, s, d, i, n in rows)

    def __str__(self) -> str:
        """One line: ``WER 12.34 % U-WER 10.00 % B-WER 40.00 % (900 U / 100 B words)``."""
        def pct(rate: float | None) -> str:
            return "-" if rate is None else f"{rate:.2f} %"
        return (f"WER {pct(self.wer)} U-WER {pct(self.u_wer)} B-WER {pct(self.b_wer)} "
                f"({self.n_ref_u} U / {self.n_ref_b} B words)")


def split_by_bias(result: ScoreResult, bias_words: Mapping[str, Iterable[str]],
                  normalize: bool | Callable[[str], str] = True) -> BiasedScore:
    """U-WER and B-WER from the alignments of ``result`` (no second alignment: its WER is ``result``'s).

    ``bias_words``: utterance id -> its biasing words; an utterance absent has none, an id that
    ``result`` did not score is ignored. The words go through the normaliser that scored
    ``result`` (``normalize`` as :func:`score_texts` takes it; one that becomes several words
    puts each in the set). A substituted or deleted reference word is an error of its own side
    (biased if it is in the set); an inserted hypothesis word is a biased error if it is in the
    set, else an unbiased one (fbai-speech's rule: to reproduce its numbers, give only the
    reference's rare words, since an inserted distractor counts as unbiased there).
    """
    norm = _normalizer(normalize)
    n = {k: 0 for k in ("C", "S", "D", "I")}
    counts = {True: dict(n), False: dict(n)}
    for utt in result.details:
        biased = {w for x in bias_words.get(utt.uttid, ()) for w in norm(x).split()}
        for op, ref, hyp in utt.ops:
            counts[(hyp if op == "I" else ref) in biased][op] += 1
    u, b = counts[False], counts[True]
    return BiasedScore(
        n_utts=result.n_utts,
        n_ref_u=u["C"] + u["S"] + u["D"],
        n_ref_b=b["C"] + b["S"] + b["D"],
        sub_u=u["S"], dele_u=u["D"], ins_u=u["I"],
        sub_b=b["S"], dele_b=b["D"], ins_b=b["I"],
        n_missing_hyp=result.n_missing_hyp,
        n_extra_hyp=result.n_extra_hyp,
        n_empty_ref=result.n_empty_ref,
    )


def score_biased(ref: Mapping[str, str], hyp: Mapping[str, str], bias_words: Mapping[str, Iterable[str]],
                 normalize: bool | Callable[[str], str] = True) -> BiasedScore:
    """WER, U-WER and B-WER of ``hyp`` against ``ref`` (``{uttid: text}``), each utterance's
    biasing words in ``bias_words`` (``{uttid: words}``): :func:`score_texts` (its normalisation,
    its handling of missing and extra hypotheses and empty references), then
    :func:`split_by_bias`."""
    return split_by_bias(score_texts(ref, hyp, normalize=normalize), bias_words, normalize)


@dataclass(frozen=True)
class CountBin:
    """Reference words whose count in a training text falls in ``[low, high)`` (``high`` None: no
    bound), and how many of them the hypotheses got wrong (substituted or deleted)."""

    low: int
    high: int | None
    n_words: int
    n_wrong: int

    @property
    def label(self) -> str:
        """``0``, ``1-9``, ``100+``: the counts the bin holds."""
        if self.high is None:
            return f"{self.low}+"
        return str(self.low) if self.high == self.low + 1 else f"{self.low}-{self.high - 1}"

    @property
    def error_rate(self) -> float:
        """Percent of the bin's reference words that are wrong (0 for an empty bin)."""
        return 100.0 * self.n_wrong / self.n_words if self.n_words else 0.0


def errors_by_count(result: ScoreResult, counts: Mapping[str, int],
                    edges: Sequence[int] = (0, 1, 10, 100)) -> list[CountBin]:
    """Word errors of a scored set by how often each reference word occurs in a training text.

    ``counts``: normalised word -> occurrences (words absent count 0); ``edges``: the bins' lower
    bounds, ascending from 0 (``(0, 1, 10, 100)``: 0, 1-9, 10-99, 100+). A reference word is
    wrong when the alignment substitutes or deletes it; insertions belong to no reference word
    and are left out, so the bins' rates need not add up to the WER. This is the table that says
    whether a model misreads the words it has rarely read (the vocabulary) or all of them (the
    acoustics).
    """
    edges = list(edges)
    if not edges or edges[0] != 0 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"count bin edges must start at 0 and rise: {edges}")
    words = [0] * len(edges)
    wrong = [0] * len(edges)
    for utt in result.details:
        for op, ref, _ in utt.ops:
            if op == "I":
                continue
            n = counts.get(ref, 0)
            i = max(k for k, e in enumerate(edges) if n >= e)
            words[i] += 1
            wrong[i] += op != "C"
    highs = edges[1:] + [None]
    return [CountBin(lo, hi, w, x) for lo, hi, w, x in zip(edges, highs, words, wrong)]


# ---------------------------------------------------------------------------
# Task metrics beyond WER: accuracy, multiple-choice accuracy, BLEU
# ---------------------------------------------------------------------------

#: Metrics a task may declare (see :mod:`tasu.tasks`).
METRICS = ("wer", "cer", "accuracy", "bleu", "mc_accuracy")

#: Option letters of a multiple-choice task that declares no ``labels``.
DEFAULT_CHOICES = "ABCD"


@dataclass(frozen=True)
class TaskScore:
    """One corpus-level number of a task metric.

    ``value`` is a percentage (accuracy, WER, CER) or a BLEU score (0-100);
    ``n_correct`` is set for the accuracy metrics; ``errors`` holds
    ``(uttid, ref, hyp)`` of every wrong answer (accuracy metrics; as written,
    ``""`` for a missing hypothesis); ``detail`` is a
    free-form line (the sacrebleu score and signature for BLEU).
    """

    metric: str
    value: float
    n_utts: int
    n_correct: int | None = None
    n_missing_hyp: int = 0
    n_extra_hyp: int = 0
    errors: tuple[tuple[str, str, str], ...] = ()
    detail: str = ""


def _pairs(refs: Mapping[str, str], hyps: Mapping[str, str]) -> tuple[list[str], list[str], list[str], int, int]:
    """Sorted ref ids, their refs and hyps (``""`` when missing), #missing and #extra hyps."""
    ids = sorted(refs)
    if not ids:
        raise ValueError("no reference utterance to score")
    n_missing = sum(1 for u in ids if u not in hyps)
    n_extra = sum(1 for u in hyps if u not in refs)
    return ids, [refs[u] for u in ids], [hyps.get(u, "") for u in ids], n_missing, n_extra


def _accuracy(metric: str, ids: list[str], refs: list[str], hyps: list[str], ref_keys: Sequence[str],
              hyp_keys: Sequence[str], n_missing: int, n_extra: int) -> TaskScore:
    """Exact-match accuracy of the compared forms ``*_keys`` of ``refs``/``hyps``."""
    errors = tuple((u, r, h) for u, r, h, rk, hk in zip(ids, refs, hyps, ref_keys, hyp_keys) if rk != hk)
    n_correct = len(ids) - len(errors)
    return TaskScore(metric, 100.0 * n_correct / len(ids), len(ids), n_correct, n_missing, n_extra, errors)


def score_accuracy(refs: Mapping[str, str], hyps: Mapping[str, str],
                   normalizer: Callable[[str], str] | None = None) -> TaskScore:
    """Exact-match accuracy (%) after :func:`normalize_text` (or ``normalizer``) of both sides.

    A reference id without a hypothesis counts as wrong (``n_missing_hyp``);
    hypotheses without a reference are ignored (``n_extra_hyp``).
    """
    norm = normalizer or normalize_text
    ids, r, h, n_missing, n_extra = _pairs(refs, hyps)
    return _accuracy("accuracy", ids, r, h, [norm(x) for x in r], [norm(x) for x in h], n_missing, n_extra)


def _choice_in(letter: str, letters: str) -> str | None:
    """``letter`` upper-cased if it is one of ``letters``."""
    up = letter.upper()
    return up if up in letters else None


_PAREN_RE = re.compile(r"\(([A-Za-z])\)")
_PHRASE_RE = re.compile(r"\b(?:answer|option|choice)(?:\s+is)?\s*[:\-]?\s*\(?([A-Za-z])\b(\)?\s*[.,;:!?]?\s*$)?",
                        re.IGNORECASE)
_LEAD_RE = re.compile(r"^\s*\(?([A-Za-z])\s*[.):]")
_CAPITAL_RE = re.compile(r"(?<![A-Za-z'])([A-Z])(?![A-Za-z'])")


def extract_choice(text: str, letters: str = DEFAULT_CHOICES) -> str | None:
    """The option letter (upper case) a multiple-choice answer picks, or None.

    Tried in order, keeping the first hit that is one of ``letters``:

    1. the whole answer is one letter, maybe in parentheses/punctuation (``b``, ``(B).``);
    2. a letter in parentheses (``The answer is (B).``);
    3. ``answer/option/choice [is] X`` (a lower-case ``x`` only when it ends the answer);
    4. a leading ``X.``, ``X)`` or ``X:`` (``B. Paris``);
    5. exactly one distinct stand-alone capital among ``letters`` (``I pick C``).
    """
    letters = letters.upper()
    bare = text.strip().strip("()[].,;:!?\"' \t")
    if len(bare) == 1 and (c := _choice_in(bare, letters)):
        return c
    for m in _PAREN_RE.finditer(text):
        if c := _choice_in(m.group(1), letters):
            return c
    for m in _PHRASE_RE.finditer(text):
        if (m.group(1).isupper() or m.group(2) is not None) and (c := _choice_in(m.group(1), letters)):
            return c
    m = _LEAD_RE.match(text)
    if m and (c := _choice_in(m.group(1), letters)):
        return c
    capitals = {x for x in _CAPITAL_RE.findall(text) if x in letters}
    return capitals.pop() if len(capitals) == 1 else None


def score_mc_accuracy(refs: Mapping[str, str], hyps: Mapping[str, str],
                      letters: str = DEFAULT_CHOICES) -> TaskScore:
    """Multiple-choice accuracy (%): the letter :func:`extract_choice` finds in each side.

    A hypothesis without a recognisable letter is wrong; a reference without
    one raises ``ValueError`` naming the utterance.
    """
    ids, r, h, n_missing, n_extra = _pairs(refs, hyps)
    ref_letters = []
    for u, x in zip(ids, r):
        c = extract_choice(x, letters)
        if c is None:
            raise ValueError(f"reference of {u!r} ({x!r}) names none of the options {', '.join(letters)}")
        ref_letters.append(c)
    return _accuracy("mc_accuracy", ids, r, h, ref_letters, [extract_choice(x, letters) or "" for x in h],
                     n_missing, n_extra)


def score_bleu(refs: Mapping[str, str], hyps: Mapping[str, str], tokenize: str = "13a",
               lowercase: bool = False) -> TaskScore:
    """Corpus BLEU by sacrebleu, one reference (default: 13a tokenisation, case-sensitive;
    ``tokenize="zh"`` for Chinese, ``"ja-mecab"``, ``"char"``... as sacrebleu names them).

    Texts are used as written (whitespace collapsed); a missing hypothesis is empty.
    """
    try:
        from sacrebleu.metrics import BLEU
    except ImportError:
        raise ImportError("BLEU scoring needs sacrebleu: pip install sacrebleu") from None
    ids, r, h, n_missing, n_extra = _pairs(refs, hyps)
    try:
        bleu = BLEU(tokenize=tokenize, lowercase=lowercase)
    except Exception as e:  # sacrebleu raises its own errors for an unknown tokenizer
        raise ValueError(f"BLEU with tokenize={tokenize!r}: {e}") from None
    res = bleu.corpus_score([" ".join(x.split()) for x in h], [[" ".join(x.split()) for x in r]])
    return TaskScore("bleu", float(res.score), len(ids), None, n_missing, n_extra,
                     detail=f"{res} ({bleu.get_signature()})")


#: The options each built-in metric takes (a task's ``metric_options``).
METRIC_OPTIONS = {"wer": ("normalizer",), "cer": ("normalizer",), "accuracy": ("normalizer",),
                  "mc_accuracy": (), "bleu": ("tokenize", "lowercase")}


def score_metric(metric: str | Callable[..., Any], refs: Mapping[str, str], hyps: Mapping[str, str],
                 labels: Sequence[str] | None = None, options: Mapping[str, Any] | None = None) -> TaskScore:
    """Score ``hyps`` against ``refs`` (``{uttid: text}``) with one of :data:`METRICS`, or with a
    corpus's own metric function ``fn(refs, hyps, **options) -> TaskScore | float``.

    ``labels``: the option letters of ``mc_accuracy`` (default ``ABCD``); unused otherwise.
    ``options``: the metric's options (:data:`METRIC_OPTIONS`; ``normalizer`` is a function
    ``str -> str`` that replaces :func:`normalize_text`).
    """
    opts = dict(options or {})
    if callable(metric):
        name = getattr(metric, "__name__", "metric")
        value = metric(dict(refs), dict(hyps), **opts)
        if isinstance(value, TaskScore):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            ids, _, _, n_missing, n_extra = _pairs(refs, hyps)
            return TaskScore(name, float(value), len(ids), None, n_missing, n_extra)
        raise ValueError(f"metric {name} returned {type(value).__name__}; expected a TaskScore or a number")
    if metric not in METRIC_OPTIONS:
        raise ValueError(f"unknown metric {metric!r} (known: {', '.join(METRICS)})")
    unknown = sorted(set(opts) - set(METRIC_OPTIONS[metric]))
    if unknown:
        raise ValueError(f"metric {metric} takes no option {', '.join(unknown)} "
                         f"(it takes: {', '.join(METRIC_OPTIONS[metric]) or 'none'})")
    if metric in ("wer", "cer"):
        res = score_texts(refs, hyps, normalize=opts.get("normalizer") or True)
        return TaskScore(metric, res.wer if metric == "wer" else res.cer, res.n_utts,
                         n_missing_hyp=res.n_missing_hyp, n_extra_hyp=res.n_extra_hyp)
    if metric == "accuracy":
        return score_accuracy(refs, hyps, **opts)
    if metric == "mc_accuracy":
        return score_mc_accuracy(refs, hyps, "".join(labels) if labels else DEFAULT_CHOICES)
    return score_bleu(refs, hyps, **opts)


