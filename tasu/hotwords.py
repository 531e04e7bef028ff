"""Hotwords (contextual biasing) at decode time, no training: a user's words and phrases are
proposed where the speech fits them and favoured when the rescorer chooses.

Two list shapes, both plain text, UTF-8:

* a **global list** (``tasu-infer --hotwords FILE``), one word or phrase a line, as in
  sherpa-onnx's ``--hotwords-file`` and icefall's ``--context-file``; an optional score after a
  tab (or sherpa-onnx's `` :score`` at the end of the line) replaces the default score
  (``--hotwords_score``, :attr:`tasu.config.DecodeConfig.hotword_score`)::

      voicemail
      press pound	3.0
      extension :2.5

* **per-utterance lists** (``--hotwords_per_utt FILE``), the shape of the standard biasing
  benchmark (Le et al. 2021, fbai-speech ``is21_deep_bias``): ``<utt-id> w1 w2 ...``, one word
  each (all at the default score); an utterance with no line gets the global list alone.

How they act (:class:`Biasing`, built once a list and used by :func:`tasu.decode.decode_posteriors`
through two calls, so decoding stays unaware of where the words came from):

1. **Proposals.** Each answer the n-best expansion expands (:mod:`tasu.expand`) is aligned with
   its PSD rows; every span of up to one word more than the longest phrase is read off, and the
   listed phrases whose units are within ``hotword_max_edits`` edits of that reading (a
   deletion-neighbourhood index over the list, built once per list) make a new answer with the
   span swapped for the phrase, where its alignment cost is at most ``-hotword_margin`` worse
   than the span's own words. Words outside the lexicon get their units from the encoder's G2P.
2. **Bonus.** The rescorer sees each answer's LLM log-prob plus ``score`` x the number of words
   of every listed phrase the answer contains (whole-word matches after scoring's normalisation),
   so a listed word wins where the speech and the LLM find it about as likely as a look-alike,
   and loses where they do not (a distractor that fits nowhere is never proposed).
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tasu.expand import LexiconNeighbours, propose
from tasu.textnorm import normalize_text

_SHERPA_SCORE = re.compile(r"^(.*\S)\s+:(\S+)$")


class HotwordError(ValueError):
    """A hotword file that cannot be read; the message names the file and line."""


def _score(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise HotwordError(f"{where}: score {text!r} is not a number") from None
    if not np.isfinite(value):
        raise HotwordError(f"{where}: score {text!r} is not finite")
    return value


def _lines(path: Path) -> Iterable[tuple[int, str]]:
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise HotwordError(f"{path}: cannot read the hotword list ({e.strerror or e})") from None
    for n, line in enumerate(raw.split(b"\n"), 1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise HotwordError(f"{path}:{n}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
        text = text.strip()
        if text and not text.startswith("#"):
            yield n, text


def read_hotwords(path: str | os.PathLike[str], default_score: float) -> dict[str, float]:
    """A global list: ``{phrase: score}`` (a repeated phrase keeps its last score). Lines starting
    with ``#`` are comments; an empty list is an error (it would bias nothing)."""
    out: dict[str, float] = {}
    for n, line in _lines(Path(path)):
        where = f"{path}:{n}"
        phrase, tab, score = line.partition("\t")
        if tab:
            value = _score(score.strip(), where)
        elif m := _SHERPA_SCORE.match(line):
            phrase, value = m.group(1), _score(m.group(2), where)
        else:
            value = default_score
        if not normalize_text(phrase):
            raise HotwordError(f"{where}: the phrase {phrase!r} has no word in it")
        out[" ".join(phrase.split())] = value
    if not out:
        raise HotwordError(f"{path}: no hotwords in it (one word or phrase a line)")
    return out


def read_utt_hotwords(path: str | os.PathLike[str], default_score: float) -> dict[str, dict[str, float]]:
    """Per-utterance lists ``<utt-id> w1 w2 ...`` -> ``{utt-id: {word: score}}``; a line with an id
    and no word is an empty list, a repeated id is an error naming both lines."""
    out: dict[str, dict[str, float]] = {}
    first: dict[str, int] = {}
    for n, line in _lines(Path(path)):
        uid, *words = line.split()
        if uid in out:
            raise HotwordError(f"{path}:{n}: utterance {uid!r} again (first at line {first[uid]})")
        out[uid], first[uid] = {w: default_score for w in words}, n
    return out


@dataclass
class Biasing:
    """The lists and what decoding asks of them: :meth:`propose` and :meth:`bonus`.

    ``units_of``: text -> unit ids (the model's G2P); ``wb``: the ``<wb>`` unit id, left out of a
    phrase's units (a reading of the rows leaves it out too). Alignment costs and expansion bounds
    are those of the decoding config (:class:`tasu.config.DecodeConfig`).
    """

    units_of: Callable[[str], list[int]]
    global_phrases: Mapping[str, float] = field(default_factory=dict)
    per_utt: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    wb: int | None = None
    insert_cost: float = 2.0
    delete_cost: float = 5.0
    wb_cost: float | None = None
    margin: float = 2.0           # a phrase is proposed where it fits at most this much worse
    max_edits: int = 2            # of the rows' reading from the phrase's units
    per_span: int = 2
    max_answers: int = 8
    _index: dict[str, tuple[LexiconNeighbours, dict[str, float], int]] = field(default_factory=dict, repr=False)

    def phrases(self, uid: str) -> dict[str, float]:
        """The phrases that bias utterance ``uid``: the global list and its own."""
        own = self.per_utt.get(uid)
        return {**self.global_phrases, **own} if own else dict(self.global_phrases)

    def _lookup(self, uid: str) -> tuple[LexiconNeighbours, dict[str, float], int]:
        key = uid if uid in self.per_utt else ""
        if key not in self._index:
            if len(self._index) > 64:  # per-utterance lists: keep memory flat over a long run
                self._index.clear()
            phrases = self.phrases(uid)
            prons = []
            for p in phrases:
                units = [u for u in self.units_of(p) if u != self.wb]
                if units:
                    prons.append((p, units))
            span = max((len(p.split()) for p in phrases), default=1) + 1
            norm = {tuple(normalize_text(p).split()): s for p, s in phrases.items()}
            self._index[key] = (LexiconNeighbours(prons, max_homophones=8, max_edits=self.max_edits),
                                {" ".join(k): s for k, s in norm.items() if k}, span)
        return self._index[key]

    def propose(self, uid: str, rows: np.ndarray, text: str) -> list[str]:
        """New answers for ``text`` (an answer to utterance ``uid`` read from PSD ``rows``) in which
        a span of words is swapped for a listed phrase that fits those rows (:func:`tasu.expand.propose`)."""
        if not text.split():
            return []
        nb, _, span = self._lookup(uid)
        if not len(nb):
            return []
        return propose(text.split(), rows, self.units_of, nb, self.insert_cost, self.delete_cost, -self.margin,
                       max_span=span, per_span=self.per_span, max_answers=self.max_answers, wb=self.wb,
                       wb_cost=self.wb_cost)

    def bonus(self, uid: str, text: str) -> float:
        """Score x words of each listed phrase ``text`` contains (whole words, after normalisation;
        a phrase counts once per occurrence, overlapping occurrences once)."""
        _, norm, _ = self._lookup(uid)
        if not norm:
            return 0.0
        words = normalize_text(text).split()
        total = 0.0
        for phrase, score in norm.items():
            pw = phrase.split()
            i = 0
            while i + len(pw) <= len(words):
                if words[i:i + len(pw)] == pw:
                    total += score * len(pw)
                    i += len(pw)
                else:
                    i += 1
        return total


def unknown_utterances(per_utt: Mapping[str, object], keys: Iterable[str]) -> list[str]:
    """Ids of per-utterance lists that name no input (warned about and counted by the caller)."""
    known = set(keys)
    return sorted(u for u in per_utt if u not in known)
