"""Training examples: the text-only, paired and task examples the trainer batches.

A :class:`TextExample` is one answer to learn and where its speech rows come from: unit ids
to simulate posteriors from (text-only, stage 2) or real PSD posteriors (paired, stage 3).
"""
from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tasu.prompt import PromptTemplate
from tasu.units import UnitInventory


@dataclass(frozen=True)
class TextExample:
    """One training example: units to simulate posteriors from (text-only), or real posteriors (paired)."""
    uid: str
    unit_ids: np.ndarray     # encoder unit ids, <wb> between words (empty for a paired example)
    answer_ids: tuple[int, ...]  # answer tokens + end token
    text: str = ""
    feats: np.ndarray | None = None  # paired: PSD-compressed posteriors [T', V] of the utterance's audio
    template: PromptTemplate | None = None  # the prompt of its task (None: the model's own, ASR)
    target: str = "text"     # the data-dir file the answer comes from (word shuffling: `text` only)

    @property
    def length(self) -> int:
        """Rows the projector gets: units to simulate, or real posterior frames."""
        return len(self.unit_ids) if self.feats is None else self.feats.shape[0]


def shuffle_words(ex: TextExample, wb_id: int | None, tokenizer, eos_id: int,
                  rng: np.random.Generator) -> TextExample:
    """The same words in a random order, in both the units and the answer.

    Returns ``ex`` unchanged when its unit groups and words do not pair up one to one
    (a word without pronunciation) or it has no word boundaries.
    """
    words = ex.text.split()
    if wb_id is None or len(words) < 2 or ex.feats is not None or ex.target != "text":
        return ex
    groups = np.split(ex.unit_ids, np.flatnonzero(ex.unit_ids == wb_id))
    groups = [g[g != wb_id] for g in groups]
    if len(groups) != len(words):
        return ex
    order = rng.permutation(len(words))
    ids = np.concatenate([np.r_[groups[i], wb_id] for i in order])[:-1]
    text = " ".join(words[i] for i in order)
    ans = tuple(tokenizer(text, add_special_tokens=False)["input_ids"]) + (eos_id,)
    return TextExample(ex.uid, ids, ans, text, template=ex.template)


def answer_ids(tokenizer, texts: Sequence[str], eos_id: int) -> list[tuple[int, ...]]:
    """Answer tokens + end token of each text, in one tokenizer call: a fast (Rust) tokenizer
    encodes a list about 2.3 times faster than one text at a time (SmolLM2's, 2 cores)."""
    if not texts:
        return []
    return [tuple(ids) + (eos_id,) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]


def unit_ids(units: str, index: Mapping[str, int]) -> np.ndarray:
    """A units string as inventory ids; an unknown unit raises ``KeyError(unit)``."""
    return np.array([index[x] for x in units.split()], dtype=np.int64)


def check_units(units: dict[str, str], text: dict[str, str], inventory: UnitInventory, path: Path) -> None:
    """Every utterance of a units file has a transcript and only inventory units; errors say
    ``file:line`` (checked before the LLM is loaded)."""
    from tasu.data import read_table_lines

    index = inventory.index()
    lines = {t.key: t.line for t in read_table_lines(path) if t.key}
    for uid, u in units.items():
        if uid not in text:
            raise ValueError(f"{path}:{lines.get(uid, '?')}: utterance {uid!r} has units but no transcript")
        bad = next((x for x in u.split() if x not in index), None)
        if bad is not None:
            raise ValueError(f"{path}:{lines.get(uid, '?')}: utterance {uid!r}: unit {bad!r} is not in the "
                             f"inventory of the encoder ({inventory.size} units)")


def make_examples(units: dict[str, str], text: dict[str, str], inventory: UnitInventory,
                  tokenizer, eos_id: int, source: str = "units") -> list[TextExample]:
    """Pair unit strings with answer tokens; unknown units are an error naming the utterance."""
    index = inventory.index()
    ids = []
    for uid, u in units.items():
        if uid not in text:
            raise ValueError(f"{source}: utterance {uid} has units but no transcript")
        try:
            ids.append(unit_ids(u, index))
        except KeyError as e:
            raise ValueError(f"{source}: utterance {uid}: unit {e.args[0]!r} is not in the inventory") from None
    answers = answer_ids(tokenizer, [text[uid] for uid in units], eos_id)
    return [TextExample(uid, i, a, text[uid]) for uid, i, a in zip(units, ids, answers)]


def make_paired_examples(feats: dict[str, np.ndarray], text: dict[str, str], n_units: int,
                         tokenizer, eos_id: int, source: str = "feats.scp") -> tuple[list[TextExample], list[str]]:
    """Pair real PSD posteriors (stage 1) with answer tokens.

    Returns the examples and the ids of ``text`` without posteriors (skipped in stage 1:
    the caller logs their count). Posteriors of another width than the inventory, or
    without a transcript, are errors naming the utterance.
    """
    for uid, m in feats.items():
        if uid not in text:
            raise ValueError(f"{source}: utterance {uid} has posteriors but no transcript")
        if m.ndim != 2 or m.shape[1] != n_units or m.shape[0] == 0:
            raise ValueError(f"{source}: utterance {uid}: posteriors of shape {tuple(m.shape)}, "
                             f"expected [frames > 0, {n_units}] (the encoder's inventory)")
    answers = answer_ids(tokenizer, [text[uid] for uid in feats], eos_id)
    out = [TextExample(uid, np.zeros(0, dtype=np.int64), a, text[uid],
                       np.require(m, dtype=np.float32, requirements="W"))  # writable once: torch shares it
           for (uid, m), a in zip(feats.items(), answers)]
    return out, sorted(set(text) - set(feats))


def make_task_examples(units: dict[str, str], answers: dict[str, str], inventory: UnitInventory, tokenizer,
                       eos_id: int, templates: Sequence[PromptTemplate] | Mapping[str, Sequence[PromptTemplate]],
                       target: str, source: str = "units") -> list[TextExample]:
    """Text-only examples of one task: the units of each utterance with a ``target`` answer,
    asked with the task's prompts in turn (example ``i`` gets prompt ``i mod #prompts``).
    ``templates``: the task's prompts, or ``{uid: prompts}`` for a task with prompt fields."""
    exs = make_examples({u: units[u] for u in answers if u in units}, answers, inventory, tokenizer, eos_id, source)
    out = []
    for i, e in enumerate(exs):
        tpls = templates[e.uid] if isinstance(templates, Mapping) else templates
        out.append(TextExample(e.uid, e.unit_ids, e.answer_ids, e.text, template=tpls[i % len(tpls)], target=target))
    return out


class WordLists:
    """Random sequences of lexicon words as text-only examples (:class:`tasu.config.WordListConfig`)."""

    def __init__(self, prons: dict[str, np.ndarray], wb_id: int | None, tokenizer, eos_id: int,
                 min_words: int, max_words: int) -> None:
        if not prons:
            raise ValueError("word lists: the lexicon has no word with units of this inventory")
        if not 1 <= min_words <= max_words:
            raise ValueError(f"word lists: need 1 <= min_words <= max_words, got {min_words}, {max_words}")
        self.words = sorted(prons)
        self.prons, self.wb_id, self.tokenizer, self.eos_id = prons, wb_id, tokenizer, eos_id
        self.min_words, self.max_words = min_words, max_words
        self.n_drawn = 0

    @classmethod
    def from_lexicon(cls, path: Path, inventory: UnitInventory, tokenizer, eos_id: int, min_words: int,
                     max_words: int) -> WordLists:
        """Every word of a lexicon file (``word<TAB>units[<TAB>letters]``) whose units are all in
        ``inventory``; words without units, or with units of another inventory, are left out."""
        from tasu.g2p import read_lexicon

        index = inventory.index()
        lex, _ = read_lexicon(path)
        prons = {w: np.array([index[u] for u in units], dtype=np.int64) for w, units in lex.items()
                 if units and all(u in index for u in units) and len(w.split()) == 1}
        return cls(prons, inventory.wb_id, tokenizer, eos_id, min_words, max_words)

    def units(self) -> set[int]:
        """Every unit id the word lists use."""
        return {int(i) for p in self.prons.values() for i in p} | ({self.wb_id} if self.wb_id is not None else set())

    def draw(self, rng: random.Random, n: int) -> list[TextExample]:
        """``n`` word lists of ``min_words``..``max_words`` words drawn uniformly from the lexicon."""
        out = []
        for _ in range(n):
            words = [rng.choice(self.words) for _ in range(rng.randint(self.min_words, self.max_words))]
            parts: list[np.ndarray] = []
            for w in words:
                if parts and self.wb_id is not None:
                    parts.append(np.array([self.wb_id], dtype=np.int64))
                parts.append(self.prons[w])
            text = " ".join(words)
            ans = tuple(self.tokenizer(text, add_special_tokens=False)["input_ids"]) + (self.eos_id,)
            self.n_drawn += 1
            out.append(TextExample(f"wordlist-{self.n_drawn:09d}", np.concatenate(parts), ans, text))
        return out


def length_batches(examples: Sequence[TextExample], batch_size: int, rng: random.Random,
                   bucket: int = 50, max_positions: int = 0) -> Iterator[list[TextExample]]:
    """Endless shuffled batches of similar length (little padding), epoch after epoch."""
    if not examples:
        raise ValueError("no examples to draw batches from")
    while True:
        yield from epoch_batches(examples, batch_size, rng, bucket, max_positions)


def positions(e: TextExample) -> int:
    """What an example puts through the LLM besides the prompt: its rows and its answer tokens."""
    return e.length + len(e.answer_ids)


def epoch_batches(examples: Sequence[TextExample], batch_size: int, rng: random.Random,
                  bucket: int = 50, max_positions: int = 0) -> list[list[TextExample]]:
    """One epoch of ``examples`` in shuffled batches: shuffled, cut into buckets of
    ``batch_size * bucket`` sorted by length, batched, the batches shuffled.

    ``max_positions`` > 0: a batch also ends before its size x its longest example's
    :func:`positions` would pass this (an example longer than that makes a batch by itself),
    so batches of short sentences are larger than those of long ones, up to ``batch_size``.
    """
    order = list(examples)
    rng.shuffle(order)
    batches = []
    for i in range(0, len(order), batch_size * bucket):
        chunk = sorted(order[i:i + batch_size * bucket], key=lambda e: e.length)
        if not max_positions:
            batches += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
            continue
        cur: list[TextExample] = []
        longest = 0
        for e in chunk:
            n = positions(e)
            if cur and (len(cur) == batch_size or (len(cur) + 1) * max(longest, n) > max_positions):
                batches.append(cur)
                cur, longest = [], 0
            cur.append(e)
            longest = max(longest, n)
        if cur:
            batches.append(cur)
    rng.shuffle(batches)
    return batches
