"""A pocketsphinx language model and dictionary from adaptation text (the peer given the same text).

:func:`build_sphinx_lm` writes, into one directory, what ``pocketsphinx.Decoder(lm=..., dict=...)``
reads:

- ``lm.arpa``: a trigram (``order``) model, the static mix (:func:`tasu.ngram.mix`)
  ``weight * A + (1 - weight) * D`` of
  A, an interpolated Witten-Bell model (:func:`tasu.ngram.train_witten_bell`) of the adaptation
  sentences, and D, pocketsphinx's own default US English model (``en-us.lm.bin``, read through
  ``pocketsphinx.NGramModel.prob``). Why not pocketsphinx's own mixing: its Python API has no
  weighted model set (``lmctl`` only switches between models), and writing the shipped binary
  model out as ARPA crashes (its header's n-gram counts disagree with its trie; pocketsphinx
  issue 502), so D's n-grams cannot be listed. D is therefore queried, not copied: its
  vocabulary is the dictionary's words it knows (72 544, which hold all of its unigram mass);
  the explicit n-grams of the mix are all unigrams, A's n-grams, and the n-grams of the
  optional ``general`` sentences (for the recipe, a sample of the TASU training text), each
  with the mixture of both models' backed-off probabilities; D's bigrams and trigrams outside
  that set are reached through the mix's recomputed backoff weights (every history's
  distribution sums to one). ``weight`` 1: A alone, over A's words only.
- ``dict``: pocketsphinx's ``cmudict-en-us.dict`` plus the adaptation words it lacks, spelled
  by hama's G2P (IPA, as :mod:`tasu.g2p` uses it) mapped to ARPAbet with :data:`IPA_TO_ARPABET`
  (diacritics and length marks dropped); a word without a vowel letter (``pbx``, ``www``) is
  spelled letter by letter from the dictionary's letter entries instead. ``g2p_added`` lists
  the words added, ``unspelled`` the ones that could not be (no letters, or an IPA symbol
  without an ARPAbet phone): they are left out of the model.
- ``info``: how the model was built, with the counts.

Words are :func:`tasu.textnorm.normalize_text` tokens (what scoring compares). No torch.
"""
from __future__ import annotations

import logging
import math
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from tasu.fileio import atomic_write_text
from tasu.ngram import LOG10_ZERO, mix, ngram_set, train_witten_bell
from tasu.textnorm import normalize_text

log = logging.getLogger("tasu.sphinx_lm")

#: hama's IPA units (English G2P output) -> CMU ARPAbet without stress (pocketsphinx en-us's phones).
IPA_TO_ARPABET = {
    "ɑ": "AA", "a": "AA", "ɒ": "AA", "ä": "AA", "æ": "AE", "ʌ": "AH", "ə": "AH", "ɐ": "AH", "ᵊ": "AH",
    "ɔ": "AO", "aʊ": "AW", "aɪ": "AY", "ɛ": "EH", "e": "EH", "eə": "EH", "ɚ": "ER", "ɝ": "ER", "ɜ": "ER",
    "eɪ": "EY", "ɪ": "IH", "ɨ": "IH", "ɪə": "IH", "i": "IY", "o": "OW", "oʊ": "OW", "ɔɪ": "OY", "ʊ": "UH",
    "u": "UW", "ʉ": "UW", "y": "UW",
    "b": "B", "t͡ʃ": "CH", "d": "D", "ð": "DH", "f": "F", "ɸ": "F", "g": "G", "ɡ": "G", "ɣ": "G", "h": "HH",
    "ɦ": "HH", "ç": "HH", "d͡ʒ": "JH", "ɟ͡ʝ": "Y", "k": "K", "kʰ": "K", "c": "K", "x": "K", "l": "L", "ɫ": "L",
    "ʎ": "L", "m": "M", "ɱ": "M", "n": "N", "ɲ": "N", "ŋ": "NG", "p": "P", "pʰ": "P", "ɹ": "R", "r": "R",
    "ɻ": "R", "ʁ": "R", "s": "S", "ʃ": "SH", "t": "T", "tʰ": "T", "ɾ": "T", "ʔ": "T", "θ": "TH", "v": "V",
    "β": "V", "ʋ": "V", "w": "W", "j": "Y", "ʝ": "Y", "ɟ": "Y", "z": "Z", "ʒ": "ZH",
}
TIE = "\u0361"


def read_dict(path: Path) -> dict[str, str]:
    """A pocketsphinx dictionary: word -> its first pronunciation (``word(2)`` variants folded)."""
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        word, _, phones = line.partition(" ")
        out.setdefault(word.split("(")[0], phones.strip())
    return out


def ipa_to_arpabet(units: Sequence[str]) -> tuple[list[str], str]:
    """ARPAbet phones of hama IPA units, or ``([], reason)``; ``X ͡ Y`` is one unit, marks are dropped."""
    merged: list[str] = []
    for u in (u.strip() for u in units):
        if merged and (u == TIE or merged[-1].endswith(TIE)):
            merged[-1] += u
        elif u:
            merged.append(u)
    phones = []
    for u in merged:
        if u in IPA_TO_ARPABET:
            phones.append(IPA_TO_ARPABET[u])
        elif u.rstrip("ːˑ") in IPA_TO_ARPABET:
            phones.append(IPA_TO_ARPABET[u.rstrip("ːˑ")])
        elif not all(unicodedata.category(ch) in ("Mn", "Lm", "Sk") for ch in u):
            return [], f"IPA {u!r} has no ARPAbet phone"
    return phones, "" if phones else "no phone"


def spell_words(words: Sequence[str], dictionary: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Pronunciations for ``words`` missing from ``dictionary``: (word -> ARPAbet, word -> why not)."""
    added, unspelled = {}, {}
    model = None
    for w in sorted(set(words) - dictionary.keys()):
        letters = [c for c in w if c.isalpha()]
        if not letters:
            unspelled[w] = "no letters"
        elif not set(w) & set("aeiouy") and all(c in dictionary for c in letters):
            added[w] = " ".join(dictionary[c] for c in letters)   # pbx -> P IY B IY EH K S
        else:
            if model is None:
                try:
                    import hama
                except ImportError:
                    raise ImportError("spelling new words needs hama's G2P: `pip install hama`") from None
                model = hama.G2PModel()
            phones, why = ipa_to_arpabet([a.phoneme for a in model.predict(w).alignments])
            if phones:
                added[w] = " ".join(phones)
            else:
                unspelled[w] = why
    return added, unspelled


class SphinxDefaultLM:
    """pocketsphinx's binary en-us model as a :class:`tasu.ngram.mix` part (``logprob`` in log10)."""

    def __init__(self, path: Path | None = None) -> None:
        try:
            from pocketsphinx import Config, LogMath, NGramModel, get_model_path
        except ImportError:
            raise ImportError("the pocketsphinx LM needs `pip install pocketsphinx`") from None
        self.path = path or Path(get_model_path()) / "en-us" / "en-us.lm.bin"
        config = Config()
        config["loglevel"] = "FATAL"
        self._lmath = LogMath()          # kept alive: the model computes through it
        self._lm = NGramModel(config, self._lmath, str(self.path))
        self._zero = self._lmath.get_zero()
        self._scale = self._lmath.log_to_log10(-1_000_000) / -1_000_000

    def logprob(self, word: str, history: Sequence[str]) -> float:
        v = self._lm.prob([word, *reversed(history[-2:])])
        return LOG10_ZERO if v <= self._zero else v * self._scale

    def knows(self, word: str) -> bool:
        return self._lm.prob([word]) > self._zero


def build_sphinx_lm(sentences: Sequence[str], out: Path, weight: float = 0.5, general: Sequence[str] = (),
                    order: int = 3) -> dict[str, object]:
    """Write ``out/{lm.arpa,dict,g2p_added,unspelled,info}`` (module docstring); returns the counts."""
    from pocketsphinx import get_model_path

    if not 0 < weight <= 1:
        raise ValueError(f"weight {weight}: the adaptation text's share must be in (0, 1]")
    base_dict = Path(get_model_path()) / "en-us" / "cmudict-en-us.dict"
    dictionary = read_dict(base_dict)
    adapt = [normalize_text(s).split() for s in sentences]
    adapt = [s for s in adapt if s]
    if not adapt:
        raise ValueError("build_sphinx_lm: no adaptation sentence has a word")
    words = {w for s in adapt for w in s}
    added, unspelled = spell_words(sorted(words), dictionary)
    a_model = train_witten_bell(adapt, order)
    speakable = {w for w in words if w not in unspelled}
    parts: list = [a_model]
    vocab = set(speakable)
    sets = ngram_set(adapt, order)
    n_general = 0
    if weight < 1:
        default = SphinxDefaultLM()
        parts.append(default)
        vocab |= {w for w in dictionary if default.knows(w)}
        gen = [s for s in (normalize_text(t).split() for t in general) if s]
        n_general = len(gen)
        for n, extra in enumerate(ngram_set(gen, order)):
            sets[n] |= extra
    sets = [{g for g in s if all(w in vocab or w in ("<s>", "</s>") for w in g)} for s in sets]
    lm, stats = mix(parts, [weight, 1 - weight] if weight < 1 else [1.0], sets, vocab)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "lm.arpa", lm.to_arpa())
    atomic_write_text(out / "dict", base_dict.read_text(encoding="utf-8")
                      + "".join(f"{w} {p}\n" for w, p in sorted(added.items())))
    atomic_write_text(out / "g2p_added", "".join(f"{w} {p}\n" for w, p in sorted(added.items())))
    atomic_write_text(out / "unspelled", "".join(f"{w} {r}\n" for w, r in sorted(unspelled.items())))
    counts = {"sentences": len(adapt), "words": len(words), "g2p_added": len(added), "unspelled": len(unspelled),
              "general_sentences": n_general, "weight": weight, "order": order,
              **{f"{n}-grams": sum(1 for g in lm.prob if len(g) == n) for n in range(1, order + 1)}, **stats}
    how = (f"{weight} * Witten-Bell {order}-gram of {len(adapt)} adaptation sentences"
           + (f" + {1 - weight:g} * pocketsphinx en-us.lm.bin, explicit n-grams: all unigrams, the adaptation "
              f"text's and {n_general} general sentences' n-grams" if weight < 1 else ""))
    atomic_write_text(out / "info", how + "\n" + "".join(f"{k} {v}\n" for k, v in counts.items()))
    log.info("%s: %s; %s", out, how, ", ".join(f"{k} {v}" for k, v in counts.items()))
    return counts


def perplexity(lm, sentences: Sequence[str], order: int = 3) -> tuple[float, int]:
    """(per-word perplexity with ``</s>``, OOV count) of ``lm`` (anything with ``logprob``) on
    sentences; words the model gives probability zero are counted as OOV and left out."""
    total, n, oov = 0.0, 0, 0
    for s in sentences:
        seq = ["<s>", *normalize_text(s).split(), "</s>"]
        for i in range(1, len(seq)):
            lp = lm.logprob(seq[i], seq[max(0, i - order + 1):i])
            if lp <= LOG10_ZERO:
                oov += 1
            else:
                total, n = total + lp, n + 1
    return (10 ** (-total / n) if n else math.nan), oov
