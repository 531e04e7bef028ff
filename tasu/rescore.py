"""N-best rescoring by acoustic fit (decoding with ``nbest`` > 1 and ``acoustic_weight`` > 0).

The LLM's beam proposes ``nbest`` answers. Each is turned into the encoder's units (the same
text -> units as in training) and aligned with the utterance's PSD rows: a row matched to a
unit costs ``-log p(unit)``, a row left over (something the encoder inserted) costs
``insert_cost``, a unit with no row (something it deleted) ``delete_cost``. The answer with the
best ``LLM log-probability - acoustic_weight * alignment cost`` wins. This is ESPnet's joint
CTC/attention rescoring in spirit, with an edit-distance alignment over PSD rows (one row per
unit, blanks gone) instead of CTC paths over frames; it stops the LLM from writing fluent
words the speech does not contain.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np

#: probability floor of a matched row, so a unit the row gives no mass to costs -log(1e-6)
FLOOR = 1e-6


def edit_costs(rows: np.ndarray, units: Sequence[int], insert_cost: float, delete_cost: float,
               wb: int | None = None, wb_cost: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per row the cost of leaving it unexplained, per unit the cost of deleting it: ``[T]``, ``[L]``.

    With ``wb`` (the ``<wb>`` unit id) and ``wb_cost``, word boundaries are priced apart: a
    ``<wb>`` unit of the answer with no row costs ``wb_cost``, and a row costs ``wb_cost`` for the
    mass it puts on ``<wb>`` (``insert_cost`` for the rest). The encoder's word boundaries are
    its least sure output (hama writes one inside ~5 % of compound words, "rail|road", and drops
    1.4 % of them), so a high price would keep the LLM's answer split where the speech has one word.
    """
    ins = np.full(rows.shape[0], float(insert_cost))
    dele = np.full(len(units), float(delete_cost))
    if wb is not None and wb_cost is not None:
        if rows.shape[0]:
            ins += (wb_cost - insert_cost) * rows[:, wb]
        dele[np.asarray(units, dtype=np.int64) == wb] = wb_cost
    return ins, dele


def alignment_cost(rows: np.ndarray, units: Sequence[int], insert_cost: float, delete_cost: float,
                   wb: int | None = None, wb_cost: float | None = None) -> float:
    """Cheapest monotone alignment of ``[T, V]`` probability rows with a unit-id sequence
    (``wb``/``wb_cost``: word boundaries priced apart, :func:`edit_costs`).

    Dynamic programming over rows, each row's pass vectorised over the units (the chain of
    deletions along a row is a running minimum).
    """
    T, L = rows.shape[0], len(units)
    ins, dele = edit_costs(rows, units, insert_cost, delete_cost, wb, wb_cost)
    if L == 0:
        return float(ins.sum())
    match = -np.log(np.maximum(rows[:, np.asarray(units, dtype=np.int64)], FLOOR))  # [T, L]
    chain = np.concatenate([[0.0], np.cumsum(dele)])               # deleting units 0..j-1
    prev = chain                                                    # row 0: units deleted
    for t in range(T):
        cur = np.empty(L + 1)
        cur[0] = prev[0] + ins[t]
        cur[1:] = np.minimum(prev[:-1] + match[t], prev[1:] + ins[t])
        prev = np.minimum.accumulate(cur - chain) + chain
    return float(prev[L])


def pick_hypothesis(hyps: Sequence[tuple[str, float]], rows: np.ndarray, units_of: Callable[[str], list[int]],
                    weight: float, insert_cost: float, delete_cost: float,
                    wb: int | None = None, wb_cost: float | None = None) -> int:
    """Index of the best of ``(text, LLM log-probability)`` hypotheses for these PSD rows."""
    best, best_score = 0, -np.inf
    for i, (text, logp) in enumerate(hyps):
        score = logp - weight * alignment_cost(rows, units_of(text), insert_cost, delete_cost, wb, wb_cost)
        if score > best_score:
            best, best_score = i, score
    return best


def units_function(encoder, index: dict[str, int]) -> Callable[[str], list[int]]:
    """``text -> unit ids`` (``index``: the model's unit -> id) by ``encoder.text_to_units``, cached.

    The cache is bounded (the beams of one utterance share most words, later utterances rarely
    repeat whole answers), so memory stays flat however many inputs a run decodes."""

    @functools.lru_cache(maxsize=4096)
    def units_of(text: str) -> list[int]:
        return [index[u] for u in encoder.text_to_units(text)] if text.strip() else []
    return units_of


def make_rescorer(units_of: Callable[[str], list[int]], weight: float, insert_cost: float,
                  delete_cost: float, wb: int | None = None, wb_cost: float | None = None,
                  ) -> Callable[[np.ndarray, list[tuple[str, float]]], int]:
    """``(PSD rows, [(text, LLM log-prob)]) -> index of the answer`` (:func:`pick_hypothesis`),
    the ``rescorer`` of :func:`tasu.decode.decode_posteriors`."""
    def rescorer(rows: np.ndarray, cands: list[tuple[str, float]]) -> int:
        return pick_hypothesis(cands, rows, units_of, weight, insert_cost, delete_cost, wb, wb_cost)
    return rescorer
