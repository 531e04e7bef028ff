"""Closed-vocabulary decoding: the LLM may only write words of a given list.

Like a Kaldi lexicon, a word list fixes what can be recognised: generation walks a prefix
trie of the words' token sequences (the first word without a leading space, later words
with one) and may end only after a whole word. Useful for closed-vocabulary tasks (a
command set, the training text's vocabulary); it makes every other word unreachable.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

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
