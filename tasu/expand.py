"""N-best expansion by lexicon neighbours: answers in which a word is swapped for a lexicon word
whose units fit the speech better.

The LLM reads common words well and misreads rare ones as common look-alikes ("paced" ->
"paid", "movable types" -> "movable tabs"): the beam then holds no answer with the right word,
and rescoring by acoustic fit (:mod:`tasu.rescore`) can only pick among wrong ones. Here the
best answer is aligned with the PSD rows; for every word, and every two adjacent words, the rows
between its neighbours' rows are read off (their most likely units, word boundaries left out,
also with one row fewer at either edge) and the lexicon words whose units are within one edit of
that reading are looked up (a deletion-neighbourhood index, as in SymSpell). A word that fits
those rows better than the answer's own words, by more than ``margin`` in alignment cost, makes a
new answer, and so does a word that joins two and fits as well as they do. The caller
scores the new answers with the LLM (teacher forcing, the same speech prompt) and the rescorer
picks among beams and new answers by LLM log-probability - weight x alignment cost, so a swap
stands only where the LLM also finds it plausible in context.

The lexicon is that of the training text: a word the model was never taught is not proposed.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from tasu.rescore import FLOOR, alignment_cost, edit_costs


def align_rows(rows: np.ndarray, units: Sequence[int], insert_cost: float, delete_cost: float,
               wb: int | None = None, wb_cost: float | None = None) -> list[int]:
    """For each unit, the row it is matched to in the cheapest monotone alignment (the cost of
    :func:`tasu.rescore.alignment_cost`), or -1 where the unit is deleted."""
    T, L = rows.shape[0], len(units)
    ins, dele = edit_costs(rows, units, insert_cost, delete_cost, wb, wb_cost)
    match = -np.log(np.maximum(rows[:, np.asarray(units, dtype=np.int64)], FLOOR)) if L else np.zeros((T, 0))
    D = np.empty((T + 1, L + 1))
    D[0] = np.concatenate([[0.0], np.cumsum(dele)])
    D[:, 0] = np.concatenate([[0.0], np.cumsum(ins)])
    for t in range(1, T + 1):
        for j in range(1, L + 1):
            D[t, j] = min(D[t - 1, j - 1] + match[t - 1, j - 1], D[t - 1, j] + ins[t - 1], D[t, j - 1] + dele[j - 1])
    out = [-1] * L
    t, j = T, L
    while t > 0 and j > 0:
        if np.isclose(D[t, j], D[t - 1, j - 1] + match[t - 1, j - 1]):
            out[j - 1] = t - 1
            t, j = t - 1, j - 1
        elif np.isclose(D[t, j], D[t - 1, j] + ins[t - 1]):
            t -= 1
        else:
            j -= 1
    return out


def _key(units: Sequence[int]) -> str:
    return "".join(chr(0x100 + u) for u in units)


def _deletions(key: str, depth: int = 1) -> set[str]:
    """``key`` and every string made from it by deleting up to ``depth`` units."""
    out, frontier = {key}, {key}
    for _ in range(depth):
        frontier = {k[:i] + k[i + 1:] for k in frontier for i in range(len(k))}
        out |= frontier
    return out


class LexiconNeighbours:
    """Words by pronunciation, found from a reading of units within one edit (deletion-neighbourhood
    index over the pronunciations: a key and its one-unit deletions point to the pronunciation);
    ``max_edits`` 2 indexes two-unit deletions too (a short hotword list, read more loosely)."""

    def __init__(self, prons: Iterable[tuple[str, Sequence[int]]], max_homophones: int = 3,
                 max_edits: int = 1) -> None:
        if max_edits not in (1, 2):
            raise ValueError(f"max_edits must be 1 or 2, got {max_edits}")
        self.max_edits = max_edits
        self.words: dict[str, list[str]] = {}   # pronunciation key -> words, first seen first
        self.index: dict[str, set[str]] = {}    # key or a one-unit deletion of it -> pronunciation keys
        for word, units in prons:
            if not units:
                continue
            k = _key(units)
            homs = self.words.setdefault(k, [])
            if word not in homs and len(homs) < max_homophones:
                homs.append(word)
        for k in self.words:
            for d in _deletions(k, max_edits):
                self.index.setdefault(d, set()).add(k)

    @classmethod
    def from_lexicon(cls, path: str | Path, unit_index: dict[str, int], max_homophones: int = 3) -> LexiconNeighbours:
        """From a lexicon file (``word<TAB>unit unit ...[<TAB>...]``, e.g. ``dump/lexicon.txt``); a
        pronunciation with a unit outside ``unit_index`` (the model's units) is left out."""
        from tasu.g2p import read_lexicon

        units_of_word, _ = read_lexicon(Path(path))  # ValueError naming file:line
        prons = ((w, [unit_index[u] for u in units]) for w, units in units_of_word.items()
                 if all(u in unit_index for u in units))
        return cls(prons, max_homophones)

    def __len__(self) -> int:
        return len(self.words)

    def near(self, units: Sequence[int]) -> list[tuple[list[int], list[str]]]:
        """Pronunciations within ``max_edits`` edits of ``units`` (substitutions, insertions or
        deletions; with 2, also a few pairs of substitutions further off), with their words."""
        if not units:
            return []
        keys: set[str] = set()
        for d in _deletions(_key(units), self.max_edits):
            keys |= self.index.get(d, set())
        return [([ord(c) - 0x100 for c in k], self.words[k]) for k in sorted(keys)]


def propose(words: Sequence[str], rows: np.ndarray, units_of: Callable[[str], list[int]],
            neighbours: LexiconNeighbours, insert_cost: float, delete_cost: float, margin: float = 0.0,
            max_span: int = 2, per_span: int = 2, max_answers: int = 16,
            wb: int | None = None, wb_cost: float | None = None) -> list[str]:
    """New answers for the answer ``words`` read from PSD ``rows`` ([T, V] probabilities): each swaps
    one span of 1..``max_span`` words for a lexicon word that fits the span's rows better by more
    than ``margin`` (a word that joins two, also where it fits as well as they do: the encoder
    writes word boundaries inside compound words); the ``per_span`` best words of each span, and
    one answer with the non-overlapping swaps of the largest total gain. At most ``max_answers``:
    that one first, then the single swaps, best gain first. ``wb``: the ``<wb>`` unit id, left out
    of the rows' readings (and priced at ``wb_cost`` in the alignment, :func:`tasu.rescore.edit_costs`)."""
    if not words or rows.shape[0] == 0:
        return []
    wunits = [units_of(w) for w in words]
    flat = [u for us in wunits for u in us]
    owner = [i for i, us in enumerate(wunits) for _ in us]
    matched = align_rows(rows, flat, insert_cost, delete_cost, wb, wb_cost)
    first = [len(rows)] * len(words)
    last = [-1] * len(words)
    for j, t in enumerate(matched):
        if t >= 0:
            first[owner[j]] = min(first[owner[j]], t)
            last[owner[j]] = max(last[owner[j]], t)
    swaps: list[tuple[float, int, int, str]] = []   # (gain, first word, end word, new word)
    for i in range(len(words)):
        for k in range(i + 1, min(i + max_span, len(words)) + 1):
            lo = max([last[m] for m in range(i)], default=-1) + 1
            hi = min([first[m] for m in range(k, len(words))], default=len(rows))
            if hi - lo < 1:
                continue
            seg = rows[lo:hi]
            own = [u for us in wunits[i:k] for u in us]
            cur = alignment_cost(seg, own, insert_cost, delete_cost, wb, wb_cost)
            # the rows' best units, word boundaries left out: a word's units have none, and a span's
            # rows hold the <wb> rows on both sides (and inside, where the encoder parted a word)
            reading = [u for u in seg.argmax(1).tolist() if u != wb]
            found: dict[tuple[int, ...], list[str]] = {}
            for r in {(0, len(reading)), (1, len(reading)), (0, len(reading) - 1)}:
                for pron, ws in neighbours.near(reading[r[0]:r[1]]):
                    found[tuple(pron)] = ws
            own_words = {w.lower().strip(".,;:!?\"'") for w in words[i:k]}
            scored = []
            for pron, ws in found.items():
                gain = cur - alignment_cost(seg, pron, insert_cost, delete_cost, wb, wb_cost)
                # a join ("tooth brush" -> "toothbrush") is as good a fit when only a <wb> parts them:
                # the two words' units are scored without it, so a join that fits as well is proposed
                if gain > margin or (k - i > 1 and gain >= margin):
                    scored += [(gain, i, k, w) for w in ws if w not in own_words]
            scored.sort(key=lambda s: -s[0])
            swaps += scored[:per_span]
    swaps.sort(key=lambda s: (-s[0], s[1], s[2], s[3]))
    answers: list[str] = []

    def add(ws: list[str]) -> None:
        text = " ".join(ws)
        if text not in answers and text != " ".join(words):
            answers.append(text)
    # the combined answer: the non-overlapping swaps of the largest total gain (weighted interval
    # scheduling over word positions, each span's best swap)
    best: list[tuple[float, list[tuple[int, int, str]]]] = [(0.0, [])]
    for k in range(1, len(words) + 1):
        best.append(best[k - 1])
        for gain, i, end, w in swaps:
            if end == k and best[i][0] + gain > best[k][0]:
                best[k] = (best[i][0] + gain, best[i][1] + [(i, k, w)])
    taken = best[-1][1]
    if len(taken) > 1:
        ws = list(words)
        for i, k, w in sorted(taken, reverse=True):
            ws[i:k] = [w]
        add(ws)
    for _, i, k, w in swaps:
        if len(answers) >= max_answers:
            break
        add(list(words[:i]) + [w] + list(words[k:]))
    return answers[:max_answers]
