"""Simulated CTC posteriors from text units (TASU's text-only training input).

Each unit becomes one PSD-like row: a smoothed one-hot whose peak mass ``1 - eps`` sits on
the unit and whose ``eps`` is spread over a few competing units (plus a uniform floor).
Per utterance a noise strength ``s ~ U(strength_min, strength_max)`` scales the event
rates; per unit, independently: deletion (``drop``), substitution by another unit of the
same class (vowel/consonant) or any active unit (``substitute``), a repeated row
(``repeat``), an inserted random unit after it (``insert``) and a spurious word boundary
after it inside a word (``wb_insert``: real recognisers split words about as often as they
merge them). ``<wb>`` rows are dropped with their own rate (``wb_drop``). Everything draws from the numpy ``Generator`` passed in.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

VOWEL_CHARS = set("aeiouæɑɒɔəɛɜɝɪʊʌyøœɐɘɵɤɯɨʉ")


@dataclass(frozen=True)
class SimulationConfig:
    drop: float = 0.05
    substitute: float = 0.08
    repeat: float = 0.04
    insert: float = 0.03
    wb_drop: float = 0.10
    wb_insert: float = 0.0     # P(a <wb> row after a unit that is not the last of its word)
    strength_min: float = 0.0
    strength_max: float = 2.0
    smooth_min: float = 0.05   # eps range: mass off the top unit
    smooth_max: float = 0.5
    competitors: int = 2       # units sharing eps besides the uniform floor
    floor: float = 0.1         # share of eps spread uniformly over active units
    same_class: float = 0.7    # P(a substitute is of the same class)


class PosteriorSimulator:
    """Units (ids) -> simulated posterior rows ``[L', V]``.

    ``active`` are the unit ids that occur in real text (the phoneme set of the training
    lexicon): substitutes, insertions and competitors are drawn from them only.
    """

    def __init__(self, vocab_size: int, active: Sequence[int], units: Sequence[str],
                 wb_id: int | None, cfg: SimulationConfig) -> None:
        self.V = vocab_size
        self.cfg = cfg
        self.scale = 1.0  # multiplies every noise rate and the smoothing (a noise curriculum sets it)
        self.wb_id = wb_id
        self.active = np.array(sorted(set(active) - {wb_id}), dtype=np.int64)
        is_vowel = np.array([bool(set(units[i]) & VOWEL_CHARS) for i in self.active])
        self._class_of = {int(u): bool(v) for u, v in zip(self.active, is_vowel)}
        self._by_class = {True: self.active[is_vowel], False: self.active[~is_vowel]}

    def _substitute(self, u: int, rng: np.random.Generator) -> int:
        cls = self._class_of.get(u)
        pool = self._by_class[cls] if cls is not None and rng.random() < self.cfg.same_class else self.active
        pool = pool[pool != u]
        if len(pool) == 0:
            pool = self.active[self.active != u]
        return int(pool[rng.integers(len(pool))]) if len(pool) else u

    def noisy_ids(self, ids: Sequence[int], rng: np.random.Generator) -> list[int]:
        """Apply deletions, substitutions, repeats and insertions to a unit id sequence."""
        c = self.cfg
        s = rng.uniform(c.strength_min, c.strength_max) * self.scale
        out: list[int] = []
        for k, u in enumerate(ids):
            if u == self.wb_id:
                if rng.random() >= c.wb_drop * s:
                    out.append(u)
                continue
            if rng.random() < c.drop * s:
                continue
            if rng.random() < c.substitute * s:
                u = self._substitute(u, rng)
            out.append(u)
            if rng.random() < c.repeat * s:
                out.append(u)
            if rng.random() < c.insert * s:
                out.append(int(self.active[rng.integers(len(self.active))]))
            if self.wb_id is not None and k + 1 < len(ids) and ids[k + 1] != self.wb_id \
                    and rng.random() < c.wb_insert * s:
                out.append(self.wb_id)
        return out

    def rows(self, ids: Sequence[int], rng: np.random.Generator) -> np.ndarray:
        """Smoothed one-hot rows for an (already noised) id sequence."""
        c = self.cfg
        n = len(ids)
        out = np.zeros((n, self.V), dtype=np.float32)
        if n == 0:
            return out
        eps = rng.uniform(c.smooth_min, c.smooth_max) * rng.random(n) ** 0.5 * self.scale
        idx = np.arange(n)
        if len(self.active):
            out[:, self.active] = (eps * c.floor / len(self.active))[:, None]
        if c.competitors > 0:
            comp = self.active[rng.integers(len(self.active), size=(n, c.competitors))]
            share = rng.dirichlet(np.ones(c.competitors), size=n) * (eps * (1 - c.floor))[:, None]
            for k in range(c.competitors):
                np.add.at(out, (idx, comp[:, k]), share[:, k])
        else:
            out[:, self.active] += (eps * (1 - c.floor) / len(self.active))[:, None]
        out[idx, np.asarray(ids)] += (1.0 - eps)
        out /= out.sum(axis=1, keepdims=True)
        return out

    def __call__(self, ids: Sequence[int], rng: np.random.Generator) -> np.ndarray:
        return self.rows(self.noisy_ids(ids, rng), rng)
