"""hama's grapheme-to-phoneme model and the lexicon file that caches it.

:class:`HamaG2P` turns words into hama's IPA units (the inventory of the hama encoder), with a
lexicon file (``word<TAB>units<TAB>letters`` lines, see :class:`HamaG2P`) so that each word is
converted once; new words can be converted in worker processes (``nj``), since the G2P runs at
about 30 words/s per core.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from tasu.fileio import atomic_write_text
from tasu.units import UnitInventory, text_words


class HamaG2P:
    """Word -> IPA phonemes with ``hama.G2PModel``, memoised in a lexicon file.

    The lexicon file holds ``<word>\t<unit> <unit> ...\t<letters> <letters> ...`` lines: the
    units and, for each, the letters of the word it was aligned to (``-`` for none). Words
    whose G2P yields no unit of the inventory get an empty pronunciation; G2P symbols outside
    the inventory are dropped and counted in ``unknown_symbols``.
    """

    def __init__(self, inventory: UnitInventory, lexicon: Path | None = None) -> None:
        self.inventory = inventory
        self._known = set(inventory.units) - {inventory.blank, inventory.word_boundary}
        self.lexicon_path = lexicon
        self.lexicon: dict[str, tuple[str, ...]] = {}
        self.letters: dict[str, tuple[str, ...]] = {}
        self.unknown_symbols: dict[str, int] = {}
        self._model = None
        if lexicon is not None and lexicon.exists():
            self.lexicon, self.letters = read_lexicon(lexicon)

    def _g2p(self, word: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if self._model is None:
            import hama

            self._model = hama.G2PModel()
        return g2p_alignment(self._model, word, self._known, self.unknown_symbols)

    def add_words(self, words: Iterable[str], progress: bool = False, nj: int = 1) -> int:
        """G2P every word not yet in the lexicon; returns how many were new.

        ``nj`` > 1 runs the G2P in that many worker processes (the model is single-threaded:
        two processes on two cores are twice as fast); the lexicon is the same either way.
        """
        new = sorted({w for w in words if w not in self.lexicon})
        if nj > 1 and len(new) >= 2 * nj:
            import multiprocessing as mp

            chunks = [new[i::nj] for i in range(nj)]
            with mp.get_context("fork").Pool(nj) as pool:
                parts = pool.map(_g2p_words, [(c, sorted(self._known), progress and i == 0)
                                              for i, c in enumerate(chunks)])
            for res, unknown in parts:
                for w, (units, letters) in res.items():
                    self.lexicon[w], self.letters[w] = units, letters
                for sym, n in unknown.items():
                    self.unknown_symbols[sym] = self.unknown_symbols.get(sym, 0) + n
        else:
            it: Iterable[str] = new
            if progress and new:
                from tqdm import tqdm

                it = tqdm(new, desc="g2p", unit="word", mininterval=5)
            for w in it:
                self.lexicon[w], self.letters[w] = self._g2p(w)
        if new and self.lexicon_path is not None:
            write_lexicon(self.lexicon_path, self.lexicon, self.letters)
        return len(new)

    def sentence_units(self, text: str) -> list[str]:
        """Units of a sentence with ``<wb>`` between words; empty when nothing is pronounceable."""
        words = text_words(text)
        self.add_words(words)
        out: list[str] = []
        for w in words:
            pron = self.lexicon[w]
            if not pron:
                continue
            if out and self.inventory.word_boundary:
                out.append(self.inventory.word_boundary)
            out.extend(pron)
        return out

    def spellings(self) -> dict[str, dict[str, int]]:
        """How often each unit is spelled by each letter string, over the lexicon.

        Used to place units near the LLM embeddings of the letters that spell them.
        """
        counts: dict[str, dict[str, int]] = {}
        for w, units in self.lexicon.items():
            for u, span in zip(units, self.letters.get(w, ())):
                if span != "-":
                    c = counts.setdefault(u, {})
                    c[span] = c.get(span, 0) + 1
        return counts


def g2p_alignment(model, word: str, known: set[str] | frozenset[str],
                  unknown: dict[str, int]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """One word through ``hama.G2PModel``: its units and, for each, the letters it was aligned
    to; symbols outside ``known`` are dropped and counted in ``unknown``."""
    al = [a for a in model.predict(word).alignments if a.phoneme.strip()]
    units, letters = [], []
    for i, a in enumerate(al):
        if a.phoneme not in known:
            unknown[a.phoneme] = unknown.get(a.phoneme, 0) + 1
            continue
        end = al[i + 1].char_index if i + 1 < len(al) else len(word)
        units.append(a.phoneme)
        letters.append(word[a.char_index:end] or "-")
    return tuple(units), tuple(letters)


def _g2p_words(job: tuple[list[str], list[str], bool]):
    """Worker of :meth:`HamaG2P.add_words` with ``nj`` > 1: G2P of a chunk of words."""
    import hama

    words, known, progress = job
    model, known_set, unknown = hama.G2PModel(), set(known), {}
    it: Iterable[str] = words
    if progress:
        from tqdm import tqdm

        it = tqdm(words, desc="g2p (1 of the workers)", unit="word", mininterval=5)
    return {w: g2p_alignment(model, w, known_set, unknown) for w in it}, unknown


def read_lexicon(path: Path) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """Read a lexicon file into (word -> units, word -> aligned letters)."""
    lex, letters = {}, {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split("\t")
        if len(parts) not in (2, 3):
            raise ValueError(f"{path}:{n}: expected '<word>\\t<units>[\\t<letters>]', got {line!r}")
        lex[parts[0]] = tuple(parts[1].split())
        letters[parts[0]] = tuple(parts[2].split()) if len(parts) == 3 else ()
    return lex, letters


def write_lexicon(path: Path, lex: dict[str, Sequence[str]], letters: dict[str, Sequence[str]]) -> None:
    atomic_write_text(path, "".join(
        f"{w}\t{' '.join(p)}\t{' '.join(letters.get(w, ()))}\n" for w, p in sorted(lex.items())))
