"""Backoff n-gram language models in ARPA form: Witten-Bell training, static mixing, I/O.

For decoders that read ARPA files (pocketsphinx): a model is a table of explicit n-grams
(``log10 P(word | history)``) and backoff weights; a word unseen after a history gets the
history's backoff weight times its probability after the shortened history (Katz form).

- :func:`train_witten_bell`: an interpolated Witten-Bell model from sentences (lists of words).
  Unigrams are interpolated with the uniform distribution over the vocabulary (the seen words
  and ``vocab``), each higher order with the next lower one:
  ``P(w|h) = (c(h w) + T(h) P(w|h')) / (c(h) + T(h))`` with ``T(h)`` the number of distinct
  words seen after ``h`` and ``h'`` the history without its oldest word. The seen n-grams are
  the explicit entries, and ``T(h) / (c(h) + T(h))`` is exactly ``h``'s backoff weight, so
  every history's distribution sums to one over the vocabulary.
- :func:`mix`: static linear interpolation of any models that answer ``logprob(word, history)``
  (SRILM's ``-mix-lm`` construction): the explicit n-grams are the given set (the union of the
  parts' n-grams, closed under prefixes and suffixes), each with the mixture
  ``sum_i w_i P_i(word | history)`` of the parts' backed-off probabilities; unigrams are
  renormalised over the vocabulary and each history's backoff weight is recomputed so that its
  distribution sums to one. Events outside the explicit set get the backoff approximation.
- :meth:`BackoffLM.to_arpa` / :func:`read_arpa`: the ARPA text format.

``<s>`` is only a history (its unigram is ``-99``, a log of zero); ``</s>`` is a word.
Only the standard library is used: no torch, no other tasu module.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

BOS, EOS = "<s>", "</s>"
LOG10_ZERO = -99.0

__all__ = ["BOS", "EOS", "LOG10_ZERO", "BackoffLM", "train_witten_bell", "mix", "read_arpa", "ngram_set"]


class LogProb(Protocol):
    def logprob(self, word: str, history: Sequence[str]) -> float: ...


@dataclass
class BackoffLM:
    """``prob[ngram] = log10 P(ngram[-1] | ngram[:-1])``, ``backoff[history] = log10 weight``."""

    order: int
    prob: dict[tuple[str, ...], float] = field(default_factory=dict)
    backoff: dict[tuple[str, ...], float] = field(default_factory=dict)

    @property
    def vocab(self) -> list[str]:
        """The words it predicts (unigrams but ``<s>``), sorted."""
        return sorted(g[0] for g in self.prob if len(g) == 1 and g[0] != BOS)

    def logprob(self, word: str, history: Sequence[str]) -> float:
        """``log10 P(word | history)`` with backoff; :data:`LOG10_ZERO` for a word it does not know."""
        h = tuple(history[len(history) - self.order + 1:]) if self.order > 1 else ()
        bo = 0.0
        while True:
            p = self.prob.get(h + (word,))
            if p is not None:
                return bo + p
            if not h:
                return LOG10_ZERO
            bo += self.backoff.get(h, 0.0)
            h = h[1:]

    def sentence_logprob(self, words: Sequence[str]) -> float:
        """``log10`` probability of a sentence with its ``</s>`` (after ``<s>``)."""
        seq = [BOS, *words, EOS]
        return sum(self.logprob(seq[i], seq[max(0, i - self.order + 1):i]) for i in range(1, len(seq)))

    def to_arpa(self) -> str:
        """The ARPA text: n-grams of each order sorted, 7 significant decimals."""
        by_n: dict[int, list[tuple[str, ...]]] = defaultdict(list)
        for g in self.prob:
            by_n[len(g)].append(g)
        lines = ["\\data\\"] + [f"ngram {n}={len(by_n[n])}" for n in range(1, self.order + 1)]
        for n in range(1, self.order + 1):
            lines += ["", f"\\{n}-grams:"]
            for g in sorted(by_n[n]):
                bo = self.backoff.get(g) if n < self.order else None
                lines.append(f"{self.prob[g]:.7f}\t{' '.join(g)}" + (f"\t{bo:.7f}" if bo is not None else ""))
        return "\n".join(lines + ["", "\\end\\", ""])


def read_arpa(text: str) -> BackoffLM:
    """Parse ARPA text (what :meth:`BackoffLM.to_arpa` writes, or another toolkit's)."""
    lm, n = BackoffLM(order=0), 0
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("ngram ") or line in ("\\data\\", "\\end\\"):
            continue
        if line.endswith("-grams:"):
            n = int(line[1:].split("-")[0])
            lm.order = max(lm.order, n)
            continue
        parts = line.split()
        if n == 0 or len(parts) not in (n + 1, n + 2):
            raise ValueError(f"ARPA line not understood: {line!r}")
        g = tuple(parts[1:n + 1])
        lm.prob[g] = float(parts[0])
        if len(parts) == n + 2:
            lm.backoff[g] = float(parts[-1])
    return lm


def ngram_set(sentences: Iterable[Sequence[str]], order: int) -> list[set[tuple[str, ...]]]:
    """The n-grams of each order 1..order in the sentences (with ``<s>``/``</s>``; index 0: unigrams)."""
    out: list[set[tuple[str, ...]]] = [set() for _ in range(order)]
    for words in sentences:
        seq = (BOS, *words, EOS)
        for n in range(1, order + 1):
            out[n - 1].update(seq[i:i + n] for i in range(len(seq) - n + 1))
    out[0].discard((BOS,))
    return out


def train_witten_bell(sentences: Iterable[Sequence[str]], order: int = 3, vocab: Iterable[str] = ()) -> BackoffLM:
    """An interpolated Witten-Bell model (see the module docstring) in backoff form."""
    counts: list[Counter] = [Counter() for _ in range(order)]
    for words in sentences:
        seq = (BOS, *words, EOS)
        for n in range(1, order + 1):
            counts[n - 1].update(seq[i:i + n] for i in range(len(seq) - n + 1))
    counts[0].pop((BOS,), None)
    words = sorted({g[0] for g in counts[0]} | set(vocab) - {BOS})
    if not words:
        raise ValueError("train_witten_bell: no words")
    lm = BackoffLM(order=order)
    n_tok, n_typ = sum(counts[0].values()), len(counts[0])
    for w in words:  # unigrams: interpolated with the uniform distribution over the vocabulary
        lm.prob[(w,)] = math.log10((counts[0][(w,)] + n_typ / len(words)) / (n_tok + n_typ))
    lm.prob[(BOS,)] = LOG10_ZERO
    for n in range(2, order + 1):
        total: Counter = Counter()
        types: Counter = Counter()
        for g, c in counts[n - 1].items():
            total[g[:-1]] += c
            types[g[:-1]] += 1
        for g, c in counts[n - 1].items():
            h = g[:-1]
            lower = 10 ** lm.logprob(g[-1], h[1:])
            lm.prob[g] = math.log10((c + types[h] * lower) / (total[h] + types[h]))
        for h in total:
            lm.backoff[h] = math.log10(types[h] / (total[h] + types[h]))
    return lm


def mix(parts: Sequence[LogProb], weights: Sequence[float], ngrams: Sequence[set[tuple[str, ...]]],
        vocab: Iterable[str]) -> tuple[BackoffLM, dict[str, int]]:
    """Static interpolation (module docstring) over the explicit n-grams ``ngrams`` (index 0:
    unigrams; made closed under prefixes and suffixes here) and ``vocab`` (the words predicted;
    a word that every part gives probability zero is left out). Returns the model and counts
    (``dropped_words``, ``floored_histories``: histories whose explicit words already hold all
    the lower order's mass, so their backoff weight is set to a log of zero)."""
    if len(parts) != len(weights) or not parts or any(w < 0 for w in weights) or not math.isclose(sum(weights), 1):
        raise ValueError(f"mix: weights {list(weights)} must be >= 0, one per part, and sum to 1")
    order = len(ngrams)
    sets = [set(s) for s in ngrams]
    for n in range(order, 1, -1):  # closure: every n-gram's prefix and suffix are explicit too
        for g in sets[n - 1]:
            sets[n - 2].update((g[:-1], g[1:]))
    sets[0].discard((BOS,))
    sets[0].update((w,) for w in vocab)
    sets[0].add((EOS,))

    def p_mix(word: str, hist: tuple[str, ...]) -> float:
        return sum(w * 10 ** p.logprob(word, hist) for p, w in zip(parts, weights) if w > 0)

    lm, stats = BackoffLM(order=order), {"dropped_words": 0, "floored_histories": 0}
    uni = {g[0]: p_mix(g[0], ()) for g in sorted(sets[0])}  # sorted: the same sums, the same bytes
    stats["dropped_words"] = sum(1 for v in uni.values() if v <= 0)
    z = sum(uni.values())
    for w, v in uni.items():
        if v > 0:
            lm.prob[(w,)] = math.log10(v / z)
    lm.prob[(BOS,)] = LOG10_ZERO
    for n in range(2, order + 1):
        succ: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for g in sorted(sets[n - 1]):
            if all((w,) in lm.prob for w in g):
                succ[g[:-1]].append(g[-1])
        for h, ws in succ.items():
            probs = {w: p_mix(w, h) for w in ws}
            num = 1.0 - sum(probs.values())
            den = 1.0 - sum(10 ** lm.logprob(w, h[1:]) for w in ws)
            if num <= 1e-12 or den <= 1e-12:  # the explicit words take all the mass: renormalise them
                stats["floored_histories"] += 1
                z = sum(probs.values())
                probs = {w: v / z for w, v in probs.items()}
                lm.backoff[h] = LOG10_ZERO
            else:
                lm.backoff[h] = math.log10(num / den)
            for w, v in probs.items():
                lm.prob[h + (w,)] = math.log10(v) if v > 0 else LOG10_ZERO
    return lm, stats
