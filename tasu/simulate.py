"""Simulated CTC posteriors from text units (TASU's text-only training input).

Each unit becomes one PSD-like row: a smoothed one-hot whose peak mass ``1 - eps`` sits on
the unit and whose ``eps`` is spread over a few competing units (plus a uniform floor).
Per utterance a noise strength ``s ~ U(strength_min, strength_max)`` scales the event
rates; per unit, independently: deletion (``drop``), substitution by another unit of the
same class (vowel/consonant) or any active unit (``substitute``), a repeated row
(``repeat``), an inserted random unit after it (``insert``) and a spurious word boundary
after it inside a word (``wb_insert``: real recognisers split words about as often as they
merge them). ``<wb>`` rows are dropped with their own rate (``wb_drop``). ``wb_split`` puts a
``<wb>`` row where a word's spelling splits into two words of the lexicon (rail|road, a|head,
to|day; :func:`compound_splits`): hama writes one there for about 5 % of such words of real read
speech, which a model trained on G2P units alone reads as two words ("to day", "tooth brush").
Everything draws from the numpy ``Generator`` passed in.

A real CTC posterior row that is wrong is also less sure of itself, and the unit it replaced
is often its runner-up. ``sub_smooth_*`` gives substituted rows their own (larger) smoothing
range and ``true_competitor`` is the probability that the replaced unit takes the biggest
share of that smoothing mass, so the LLM can learn to read the runner-up. Substitutes come
from the same phonetic class with probability ``same_class``; ``classes`` picks the classes:
``vowel`` (vowels / consonants) or ``manner`` (vowels, stops, fricatives and affricates,
nasals, approximants).

``confusions`` (a table estimated by ``tasu.bin.estimate_confusions`` from an encoder's best
paths against the reference units of a few utterances) replaces those guesses by what the
encoder really does: a substitute for unit ``u`` is drawn from the units the encoder wrote
for ``u`` (with probability ``confusion_weight``, when ``u`` was seen substituted at least
``confusion_min`` times), and inserted units from the units it inserted. The event rates stay
those configured above.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tasu.config import SimulationConfig
from tasu.sparse import SparseRows

VOWEL_CHARS = set("aeiouæɑɒɔəɛɜɝɪʊʌyøœɐɘɵɤɯɨʉɚ")
# Manner classes of consonants (IPA base letters); a unit's class is that of its first letter.
MANNER = {
    "stop": set("pbtdkgɡcɟqɢʔʈɖɾɽ"),
    "fricative": set("fvθðszʃʒhɦxɣχʁçʝɸβʂʐɕʑħʕ"),
    "nasal": set("mnŋɲɱɴ"),
    "approximant": set("lɫɹrjwʋɻɭʎʟɰɥʀʙɮ"),
}


def unit_class(unit: str, classes: str = "vowel") -> str | None:
    """Phonetic class of an IPA unit (``None`` for symbols that are not phones)."""
    if set(unit) & VOWEL_CHARS:
        return "vowel"
    letters = [c for c in unit if c.isalpha()]
    if not letters or unit.startswith("<"):
        return None
    if classes == "vowel":
        return "consonant"
    if classes != "manner":
        raise ValueError(f"simulation.classes must be 'vowel' or 'manner', got {classes!r}")
    # affricates (t͡ʃ, d͡ʒ) count as fricatives: their release is what is heard
    if "͡" in unit:
        return "fricative"
    for name, chars in MANNER.items():
        if letters[0] in chars:
            return name
    return None


class PosteriorSimulator:
    """Units (ids) -> simulated posterior rows ``[L', V]``.

    ``active`` are the unit ids that occur in real text (the phoneme set of the training
    lexicon): substitutes, insertions and competitors are drawn from them only.
    """

    def __init__(self, vocab_size: int, active: Sequence[int], units: Sequence[str],
                 wb_id: int | None, cfg: SimulationConfig,
                 splits: dict[tuple[int, ...], tuple[int, ...]] | None = None) -> None:
        self.V = vocab_size
        # a word's unit ids -> the unit positions a <wb> may go before (wb_split); none given: no word
        # is split (the oracle rows of tasu.bin.simulate_posteriors); the trainer insists on a lexicon
        self.splits = splits or {}
        self.cfg = cfg
        self.scale = 1.0  # multiplies every noise rate and the smoothing (a noise curriculum sets it)
        self.wb_id = wb_id
        self.active = np.array(sorted(set(active) - {wb_id}), dtype=np.int64)
        cls = [unit_class(units[i], cfg.classes) for i in self.active]
        self._class_of = {int(u): c for u, c in zip(self.active, cls) if c is not None}
        self._by_class = {c: self.active[np.array([x == c for x in cls])] for c in set(cls) if c is not None}
        self._confused: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._inserted: tuple[np.ndarray, np.ndarray] | None = None
        if cfg.confusions:
            self._confused, self._inserted = read_confusions(cfg.confusions, units, wb_id, cfg.confusion_min)

    def _substitute(self, u: int, rng: np.random.Generator) -> int:
        if u in self._confused and rng.random() < self.cfg.confusion_weight:
            ids, p = self._confused[u]
            return int(ids[np.searchsorted(p, rng.random(), side="right").clip(max=len(ids) - 1)])
        cls = self._class_of.get(u)
        pool = self._by_class[cls] if cls is not None and rng.random() < self.cfg.same_class else self.active
        pool = pool[pool != u]
        if len(pool) == 0:
            pool = self.active[self.active != u]
        return int(pool[rng.integers(len(pool))]) if len(pool) else u

    def noisy(self, ids: Sequence[int], rng: np.random.Generator) -> tuple[list[int], list[int]]:
        """Noised ids, and per output row the unit it replaced (-1 where it is not a substitute)."""
        c = self.cfg
        s = rng.uniform(c.strength_min, c.strength_max) * self.scale
        out: list[int] = []
        orig: list[int] = []
        split_at = self._split_positions(ids) if c.wb_split > 0 and self.splits and self.wb_id is not None else set()
        for k, u in enumerate(ids):
            if k in split_at and out[-1:] != [self.wb_id] and rng.random() < c.wb_split * s:
                out.append(self.wb_id)
                orig.append(-1)
            if u == self.wb_id:
                if rng.random() >= c.wb_drop * s:
                    out.append(u)
                    orig.append(-1)
                continue
            if rng.random() < c.drop * s:
                continue
            was = -1
            if rng.random() < c.substitute * s:
                was, u = u, self._substitute(u, rng)
            out.append(u)
            orig.append(was)
            if rng.random() < c.repeat * s:
                out.append(u)
                orig.append(was)
            if rng.random() < c.insert * s:
                if self._inserted is not None:
                    ids_, p = self._inserted
                    out.append(int(ids_[np.searchsorted(p, rng.random(), side="right").clip(max=len(ids_) - 1)]))
                else:
                    out.append(int(self.active[rng.integers(len(self.active))]))
                orig.append(-1)
            if self.wb_id is not None and k + 1 < len(ids) and ids[k + 1] != self.wb_id \
                    and rng.random() < c.wb_insert * s:
                out.append(self.wb_id)
                orig.append(-1)
        return out, orig

    def _split_positions(self, ids: Sequence[int]) -> set[int]:
        """Indices into ``ids`` of the units a compound split puts a ``<wb>`` before."""
        out: set[int] = set()
        start = 0
        for k in range(len(ids) + 1):
            if k == len(ids) or ids[k] == self.wb_id:
                out.update(start + p for p in self.splits.get(tuple(ids[start:k]), ()))
                start = k + 1
        return out

    def noisy_ids(self, ids: Sequence[int], rng: np.random.Generator) -> list[int]:
        """Apply deletions, substitutions, repeats and insertions to a unit id sequence."""
        return self.noisy(ids, rng)[0]

    def sparse(self, ids: Sequence[int], rng: np.random.Generator,
               replaced: Sequence[int] | None = None) -> SparseRows:
        """Smoothed one-hot rows for an (already noised) id sequence, as :class:`SparseRows`.

        ``replaced[i] >= 0`` marks row ``i`` as a substitute for that unit (see ``noisy``).
        """
        c = self.cfg
        n = len(ids)
        n_act = max(len(self.active), 1)
        k = 1 + max(c.competitors, 0)
        if n == 0:
            return SparseRows.from_numpy(np.zeros((0, k), np.int64), np.zeros((0, k)), np.zeros(0),
                                         self.active, self.V)
        eps = rng.uniform(c.smooth_min, c.smooth_max) * rng.random(n) ** 0.5 * self.scale
        rep = np.asarray(replaced if replaced is not None else [-1] * n, dtype=np.int64)
        sub = rep >= 0
        if sub.any() and (c.sub_smooth_min is not None or c.sub_smooth_max is not None):
            lo = c.smooth_min if c.sub_smooth_min is None else c.sub_smooth_min
            hi = c.smooth_max if c.sub_smooth_max is None else c.sub_smooth_max
            eps[sub] = rng.uniform(lo, hi, size=int(sub.sum())) * min(self.scale, 1.0)
        cols, weights = [np.asarray(ids, dtype=np.int64)], [1.0 - eps]
        if c.competitors > 0:
            comp = self.active[rng.integers(len(self.active), size=(n, c.competitors))]
            share = rng.dirichlet(np.ones(c.competitors), size=n)
            runner = sub & (rng.random(n) < c.true_competitor)
            if runner.any():  # the replaced unit takes the biggest share
                comp[runner, 0] = rep[runner]
                share[runner] = np.sort(share[runner], axis=1)[:, ::-1]
            share *= (eps * (1 - c.floor))[:, None]
            cols += list(comp.T)
            weights += list(share.T)
            floor = eps * c.floor / n_act
        else:
            floor = eps / n_act
        return SparseRows.from_numpy(np.stack(cols, 1), np.stack(weights, 1), floor, self.active, self.V)

    def rows(self, ids: Sequence[int], rng: np.random.Generator,
             replaced: Sequence[int] | None = None) -> np.ndarray:
        """The same rows as ``sparse``, as a dense ``[L', V]`` float32 array."""
        return self.sparse(ids, rng, replaced).dense().numpy()

    def __call__(self, ids: Sequence[int], rng: np.random.Generator, sparse: bool = False) -> np.ndarray | SparseRows:
        """Noised, smoothed rows for ``ids``: dense ``[L', V]``, or :class:`SparseRows`."""
        out, replaced = self.noisy(ids, rng)
        return self.sparse(out, rng, replaced) if sparse else self.rows(out, rng, replaced)


def compound_splits(lexicon: dict[str, Sequence[str]], letters: dict[str, Sequence[str]],
                    index: dict[str, int]) -> dict[tuple[int, ...], tuple[int, ...]]:
    """Where words split into two words of the same lexicon, in units: ``{unit ids of the word:
    positions k, a <wb> going before unit k}``.

    ``lexicon``/``letters``: :func:`tasu.g2p.read_lexicon` (each unit's letters, ``-`` for none).
    A split is at a unit boundary whose letters before and after are both words of the lexicon,
    the first of at least two letters or ``a``, the second of at least three, and one of them
    sounds as the word does there (its units are those of the word before or after the split):
    rail|road, a|head, to|day, car|pet; not b|oat (one letter). Words whose letters do not cover
    their units one by one, or that have a unit outside ``index``, are left out.
    """
    out: dict[tuple[int, ...], set[int]] = {}
    for word, units in lexicon.items():
        spans = letters.get(word, ())
        if len(units) < 2 or len(spans) != len(units) or not all(u in index for u in units):
            continue
        pos, found = 0, set()
        for k, span in enumerate(spans[:-1], 1):
            if span != "-":
                at = word.find(span, pos)
                if at < 0:
                    break
                pos = at + len(span)
            head, tail = word[:pos], word[pos:]
            if (len(head) >= 2 or head == "a") and len(tail) >= 3 and head in lexicon and tail in lexicon \
                    and (tuple(lexicon[head]) == tuple(units[:k]) or tuple(lexicon[tail]) == tuple(units[k:])):
                found.add(k)
        if found:
            out.setdefault(tuple(index[u] for u in units), set()).update(found)
    return {ids: tuple(sorted(ks)) for ids, ks in out.items()}


EPS = "<eps>"


def read_confusions(path: str, units: Sequence[str], wb_id: int | None, min_count: int = 3,
                    ) -> tuple[dict[int, tuple[np.ndarray, np.ndarray]], tuple[np.ndarray, np.ndarray] | None]:
    """A confusion table (``ref hyp count`` lines, ``<eps>`` for none) -> sampling tables.

    Returns, per reference unit id substituted at least ``min_count`` times, the units written
    for it with their cumulative probabilities; and the same for inserted units (None if none).
    ``<wb>`` and deletions are left to ``wb_drop``/``wb_insert``/``drop``. Unknown units are
    an error naming the file and line.
    """
    index = {u: i for i, u in enumerate(units)}
    subs: dict[int, dict[int, int]] = {}
    ins: dict[int, int] = {}
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError as e:
        raise FileNotFoundError(f"{path}: cannot read the confusion table ({e.strerror})") from None
    for n, line in enumerate(lines, start=1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) != 3 or not parts[2].isdigit():
            raise ValueError(f"{path}:{n}: expected '<ref unit> <hyp unit> <count>', got {line!r}")
        ref, hyp, cnt = parts[0], parts[1], int(parts[2])
        for u in (ref, hyp):
            if u != EPS and u not in index:
                raise ValueError(f"{path}:{n}: unit {u!r} is not in the encoder's inventory")
        if hyp == EPS or (wb_id is not None and index.get(hyp) == wb_id):
            continue
        if ref == EPS:
            ins[index[hyp]] = ins.get(index[hyp], 0) + cnt
        elif ref != hyp and index[ref] != wb_id:
            subs.setdefault(index[ref], {})[index[hyp]] = subs.get(index[ref], {}).get(index[hyp], 0) + cnt

    def table(counts: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
        ids = np.array(sorted(counts), dtype=np.int64)
        c = np.array([counts[i] for i in ids], dtype=np.float64)
        return ids, np.cumsum(c) / c.sum()

    confused = {u: table(c) for u, c in subs.items() if sum(c.values()) >= min_count}
    return confused, (table(ins) if ins else None)
