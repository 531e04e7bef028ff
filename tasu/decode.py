"""Batched generation over PSD posteriors (a kaldiio scp) with a trained SpeechLLM."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Protocol

import numpy as np
import torch

from tasu.config import GuardConfig
from tasu.model import SpeechLLM
from tasu.prompt import PromptTemplate
from tasu.runtime import release_memory


def length_sorted_batches(items: list[tuple[str, np.ndarray]],
                          batch_size: int) -> Iterator[list[tuple[str, np.ndarray]]]:
    """Batches of similar length (longest first, so memory peaks early)."""
    order = sorted(items, key=lambda kv: -kv[1].shape[0])
    for i in range(0, len(order), batch_size):
        yield order[i:i + batch_size]


Templates = PromptTemplate | Mapping[str, PromptTemplate] | None


def batch_templates(template: Templates, uids: list[str]) -> list[PromptTemplate] | None:
    """The prompts of a batch: one template for all, one per utterance id (a mapping), or None."""
    if template is None:
        return None
    if isinstance(template, PromptTemplate):
        return [template] * len(uids)
    missing = [u for u in uids if u not in template]
    if missing:
        raise ValueError(f"no prompt for utterance {missing[0]!r} (its prompt fields are missing)")
    return [template[u] for u in uids]


def answer_text(tokenizer, ids: list[int]) -> str:
    """An answer's token ids as one line of text (special tokens dropped, whitespace collapsed)."""
    return " ".join(tokenizer.decode(ids, skip_special_tokens=True).split())


@contextmanager
def timed(timings: dict[str, float] | None, stage: str):
    """Add the seconds the block takes to ``timings[stage]`` (None: time nothing)."""
    if timings is None:
        yield
        return
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - t0


class Biasing(Protocol):
    """What decoding asks of a hotword list (:class:`tasu.hotwords.Biasing`)."""

    def propose(self, uid: str, rows: np.ndarray, text: str) -> list[str]: ...

    def bonus(self, uid: str, text: str) -> float: ...


def choices(model: SpeechLLM, batch: list[tuple[str, np.ndarray]], beams: list[list[tuple[str, float]]],
            rescorer: Callable[[np.ndarray, list[tuple[str, float]]], int], priors: list[dict[str, float]],
            prior_weight: float, templates: list[PromptTemplate] | None, biasing: Biasing | None = None,
            timings: dict[str, float] | None = None) -> list[int]:
    """The rescorer's choice among each input's answers; with ``prior_weight``, each answer's LLM
    log-prob plus that times its prior (scored once an answer, cached in ``priors``); with
    ``biasing``, plus its bonus for the listed words the answer holds."""
    if prior_weight:
        tok = model.tokenizer
        todo = [[t for t, _ in cands if t not in pri] for cands, pri in zip(beams, priors)]
        with timed(timings, "priors"):
            got = model.score_prior([[tok(t, add_special_tokens=False)["input_ids"] for t in td] for td in todo],
                                    templates)
        for pri, td, sc in zip(priors, todo, got):
            pri.update(zip(td, sc))
    with timed(timings, "rescore"):
        if not prior_weight and biasing is None:
            return [rescorer(mat, cands) for (_, mat), cands in zip(batch, beams)]
        return [rescorer(mat, [(t, s + (prior_weight * pri[t] if prior_weight else 0.0)
                                + (biasing.bonus(uid, t) if biasing is not None else 0.0)) for t, s in cands])
                for (uid, mat), cands, pri in zip(batch, beams, priors)]


def decode_posteriors(model: SpeechLLM, items: Iterable[tuple[str, np.ndarray]], batch_size: int = 16,
                      max_new_tokens: int = 48, num_beams: int = 1, progress=None,
                      constraint=None, template: Templates = None,
                      rescorer: Callable[[np.ndarray, list[tuple[str, float]]], int] | None = None,
                      nbest: dict[str, list[tuple[str, float]]] | None = None,
                      guard: GuardConfig | None = None,
                      expander: Callable[[np.ndarray, str], list[str]] | None = None,
                      expand_rounds: int = 1, prior_weight: float = 0.0,
                      biasing: Biasing | None = None, timings: dict[str, float] | None = None) -> dict[str, str]:
    """``(uid, [T', V] posteriors)`` -> ``{uid: hypothesis text}`` (``constraint``: see SpeechLLM.generate).

    ``template``: the prompt of every utterance (e.g. ``task.template(tokenizer)``), or ``{uid: template}``
    (a task with prompt fields); None: the model's own.
    ``rescorer``: ``(posteriors, [(text, LLM log-prob)] of the num_beams beams) -> index of the
    answer`` (e.g. :func:`tasu.rescore.pick_hypothesis`); the beams go into ``nbest`` when given.
    ``guard``: answer length bounded by the speech, loops stopped (:class:`tasu.config.GuardConfig`).
    ``expander``: ``(posteriors, best beam answer) -> more answers`` (:func:`tasu.expand.propose`),
    scored by the LLM on the same speech and put after the beams for the rescorer; ``expand_rounds`` > 1
    expands the rescorer's choice again, where it is an answer not expanded yet, up to that many rounds.
    ``prior_weight``: the rescorer sees each answer's LLM log-prob plus this times its prior
    (:meth:`SpeechLLM.score_prior`, the prompt without the speech); ``nbest`` keeps the log-probs alone.
    ``biasing``: hotwords (:mod:`tasu.hotwords`): each expanded answer also gets its proposals (listed
    phrases swapped in where the rows fit them), and the rescorer sees its bonus; needs ``rescorer``.
    ``timings``: seconds by stage are added to it (``generate``, ``propose``: the expansion's and
    hotwords' alignments, ``score_answers``, ``priors``, ``rescore``).
    """
    if biasing is not None and rescorer is None:
        raise ValueError("hotwords act through the rescorer: decode with acoustic_weight > 0")
    tok = model.tokenizer
    out: dict[str, str] = {}
    items = list(items)
    for batch in length_sorted_batches(items, batch_size):
        feats = [torch.from_numpy(np.array(m, dtype=np.float32)) for _, m in batch]
        templates = batch_templates(template, [uid for uid, _ in batch])
        if rescorer is None:
            with timed(timings, "generate"):
                hyps = model.generate(feats, max_new_tokens=max_new_tokens, num_beams=num_beams,
                                      constraint=constraint, templates=templates, guard=guard)
            out.update((uid, answer_text(tok, ids)) for (uid, _), ids in zip(batch, hyps))
        else:
            with timed(timings, "generate"):
                beams = model.generate_nbest(feats, num_beams, max_new_tokens, constraint, templates, guard)
            beams = [[(answer_text(tok, ids), score) for ids, score in cands] for cands in beams]
            priors: list[dict[str, float]] = [{} for _ in batch]  # answer -> the LLM's prior of it
            if expander is not None or biasing is not None:
                # round 1 expands the beam's best answer; each further round, the rescorer's choice so
                # far where it is an answer not expanded yet (a swap moves the rows of its neighbours)
                seeds = [cands[0][0] for cands in beams]
                done: list[set[str]] = [set() for _ in batch]
                for r in range(expand_rounds):
                    if r:
                        picks = choices(model, batch, beams, rescorer, priors, prior_weight, templates, biasing,
                                        timings)
                        seeds = [cands[p][0] for cands, p in zip(beams, picks)]
                    extra = []
                    with timed(timings, "propose"):
                        for (uid, mat), cands, seed, seen in zip(batch, beams, seeds, done):
                            have = {c for c, _ in cands}
                            new = [] if seed in seen else (expander(mat, seed) if expander is not None else []) + (
                                biasing.propose(uid, mat, seed) if biasing is not None else [])
                            extra.append(list(dict.fromkeys(t for t in new if t not in have)))
                            seen.add(seed)
                    if not any(extra):
                        break
                    with timed(timings, "score_answers"):
                        scores = model.score_answers(feats, [[tok(t, add_special_tokens=False)["input_ids"]
                                                              for t in ex] for ex in extra], templates)
                    beams = [cands + list(zip(ex, sc)) for cands, ex, sc in zip(beams, extra, scores)]
            picks = choices(model, batch, beams, rescorer, priors, prior_weight, templates, biasing, timings)
            for (uid, _), cands, p in zip(batch, beams, picks):
                out[uid] = cands[p][0]
                if nbest is not None:
                    nbest[uid] = cands
        if progress is not None:
            progress.update(len(batch))
        release_memory()
    return out


def decode_texts(model: SpeechLLM, texts: dict[str, str], batch_size: int = 16, max_new_tokens: int = 48,
                 num_beams: int = 1, progress=None, template: Templates = None) -> dict[str, str]:
    """The cascade baseline: ``{uid: text}`` read by the LLM in place of the speech -> ``{uid: answer}``."""
    tok = model.tokenizer
    ids = {u: tok(t, add_special_tokens=False)["input_ids"] for u, t in texts.items()}
    order = sorted(ids, key=lambda u: -len(ids[u]))
    out: dict[str, str] = {}
    for i in range(0, len(order), batch_size):
        batch = order[i:i + batch_size]
        hyps = model.generate_from_text([ids[u] for u in batch], max_new_tokens, num_beams,
                                        templates=batch_templates(template, batch))
        for u, h in zip(batch, hyps):
            out[u] = answer_text(tok, h)
        if progress is not None:
            progress.update(len(batch))
    return out
