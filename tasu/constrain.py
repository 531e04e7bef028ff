"""Closed-vocabulary decoding: the LLM may only write words of a given list.

Like a Kaldi lexicon, a word list fixes what can be recognised: generation walks a prefix
trie of the words' token sequences (the first word without a leading space, later words
with one) and may end only after a whole word. Useful for closed-vocabulary tasks (a
command set, the training text's vocabulary); it makes every other word unreachable.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import torch


class TokenTrie:
    """Prefix trie over token-id sequences; node 0 is the root."""

    def __init__(self, seqs: Iterable[Sequence[int]]) -> None:
        self.children: list[dict[int, int]] = [{}]
        self.final: list[bool] = [False]
        for seq in seqs:
            node = 0
            for t in seq:
                nxt = self.children[node].get(t)
                if nxt is None:
                    nxt = len(self.children)
                    self.children[node][t] = nxt
                    self.children.append({})
                    self.final.append(False)
                node = nxt
            if node:
                self.final[node] = True


def read_word_list(path: Path) -> list[str]:
    """Words of a list file: the first field of each non-empty line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read the word list: {e}") from None
    words = [ln.split()[0] for ln in lines if ln.strip()]
    if not words:
        raise ValueError(f"{path}: the word list is empty")
    return words


class VocabularyConstraint:
    """A ``transformers`` logits processor that keeps generation inside a word list."""

    def __init__(self, tokenizer, words: Iterable[str], eos_id: int) -> None:
        words = sorted(set(words))
        enc = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"]  # noqa: E731
        self.first = TokenTrie(enc(w) for w in words)
        self.later = TokenTrie(enc(" " + w) for w in words)
        self.eos_id = eos_id
        self.n_words = len(words)

    def allowed(self, ids: Sequence[int]) -> list[int] | None:
        """Token ids allowed after ``ids`` (the answer so far); ``None``: no constraint applies."""
        trie, node = self.first, 0
        for t in ids:
            nxt = trie.children[node].get(t)
            if nxt is None and trie.final[node]:
                trie, nxt = self.later, self.later.children[0].get(t)
            if nxt is None:
                return None  # left the vocabulary (only possible without this processor)
            node = nxt
        out = list(trie.children[node])
        if trie.final[node]:
            out += list(self.later.children[0]) + [self.eos_id]
        return out

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        mask = torch.full_like(scores, float("-inf"))
        for b, row in enumerate(input_ids.tolist()):
            ok = self.allowed(row)
            if ok is None:
                mask[b] = 0
            else:
                mask[b, ok] = 0
        return scores + mask


class GenerationGuard:
    """A ``transformers`` logits processor that bounds an answer by its speech and stops loops.

    - Length: row ``b`` of the batch (beams of one example share its bound) may write at most
      ``bounds[b // num_beams]`` tokens; then only ``eos_id`` is allowed. :func:`length_bounds`
      derives the bounds from the number of PSD rows: an answer has about one token per two to
      four phones, so a bound proportional to the rows stops a model that drifts into fluent text
      the speech does not hold.
    - Loops: when the last ``n`` tokens (any ``n`` up to ``max_ngram``) have just been written
      ``loop_repeats`` times in a row, only ``eos_id`` is allowed (0: no loop guard). The loop's
      extra copies are cut afterwards by :func:`trim_loops`.
    """

    def __init__(self, bounds: Sequence[int] | None, eos_id: int, num_beams: int = 1,
                 loop_repeats: int = 0, max_ngram: int = 12) -> None:
        self.bounds = list(bounds) if bounds is not None else None
        self.eos_id = eos_id
        self.num_beams = num_beams
        self.loop_repeats = loop_repeats
        self.max_ngram = max_ngram

    def _looping(self, row: list[int]) -> bool:
        r, t = self.loop_repeats, len(row)
        for n in range(1, min(self.max_ngram, t // r) + 1):
            tail = row[t - n:]
            if all(row[t - (k + 1) * n: t - k * n] == tail for k in range(1, r)):
                return True
        return False

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        t = input_ids.shape[1]
        stop = []
        for b in range(input_ids.shape[0]):
            if self.bounds is not None and t >= self.bounds[b // self.num_beams]:
                stop.append(b)
            elif self.loop_repeats > 1 and t >= self.loop_repeats and self._looping(input_ids[b].tolist()):
                stop.append(b)
        if stop:
            keep = scores[stop, self.eos_id].clone()
            scores[stop] = float("-inf")
            scores[stop, self.eos_id] = torch.where(torch.isfinite(keep), keep, torch.zeros_like(keep))
        return scores


def length_bounds(n_rows: Sequence[int], ratio: float, offset: int, cap: int) -> list[int]:
    """Answer token bounds: ``ceil(ratio * rows) + offset``, at most ``cap`` (max_new_tokens)."""
    return [min(cap, int(-(-ratio * r // 1)) + offset) for r in n_rows]


def trim_loops(ids: Sequence[int], repeats: int, max_ngram: int = 12) -> list[int]:
    """Cut a trailing loop: when the answer ends in ``repeats`` or more copies of one n-gram,
    keep a single copy (``repeats`` <= 1: unchanged)."""
    ids = list(ids)
    if repeats <= 1:
        return ids
    for n in range(1, min(max_ngram, len(ids) // repeats) + 1):
        tail = ids[len(ids) - n:]
        k = 1
        while len(ids) >= (k + 1) * n and ids[len(ids) - (k + 1) * n: len(ids) - k * n] == tail:
            k += 1
        if k >= repeats:
            return ids[: len(ids) - (k - 1) * n]
    return ids
