"""Text normalisation: the scoring normaliser, speakable training sentences, held-out sentence keys.

:func:`normalize_text` is what every system is scored after (references and hypotheses alike)
and what the held-out filter matches on.

Training text for TASU must be what a speaker would say: digits and symbols read out as words,
no markup, one sentence a line. This module does that for every text source of a recipe and
for transcripts of real recordings (telephone prompts say "press 1"):

- :func:`verbalize` reads numbers out (cardinals with thousands separators, ordinals, years,
  decimals, percents, dollar and pound amounts, times like 10:30) and ``&`` as "and";
- :func:`clean_sentence` applies the whole rule set and returns ``(sentence, None)`` or
  ``(None, reason)`` for a sentence that cannot be made speakable, so that callers count every
  skip by its reason;
- :func:`split_sentences` cuts running text (a paragraph) into sentences;
- :func:`heldout_keys` / :class:`HeldoutFilter` implement the test-set filter: a training
  sentence is removed when it equals a held-out sentence, contains a whole held-out sentence of
  at least ``MIN_CONTAINED`` words, or shares any ``NGRAM``-word window with one (all after
  :func:`normalize_text`). Keys are hashed, so a recipe can ship the filter for
  corpora whose text it may not redistribute.

Only the standard library is used (no torch): data preparation imports this.
"""
from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from collections.abc import Iterable

__all__ = ["normalize_text", "NORMALIZATION_DESCRIPTION",
           "number_words", "year_words", "verbalize", "clean_sentence", "split_sentences",
           "heldout_keys", "HeldoutFilter", "NGRAM", "MIN_CONTAINED"]

NORMALIZATION_DESCRIPTION = (
    "NFKC, lowercase, curly quotes -> ASCII, punctuation removed except "
    "word-internal apostrophes, hyphens -> spaces, whitespace collapsed"
)


# Typographic quotes and apostrophe look-alikes mapped to their ASCII forms.
_QUOTE_MAP = str.maketrans(
    {
        "\u2018": "'",  # left single quotation mark
        "\u2019": "'",  # right single quotation mark
        "\u201a": "'",  # single low-9 quotation mark
        "\u201b": "'",  # single high-reversed-9 quotation mark
        "\u2032": "'",  # prime
        "\u02bc": "'",  # modifier letter apostrophe
        "\u201c": '"',  # left double quotation mark
        "\u201d": '"',  # right double quotation mark
        "\u201e": '"',  # double low-9 quotation mark
        "\u201f": '"',  # double high-reversed-9 quotation mark
        "\u2033": '"',  # double prime
    }
)


# Hyphen and dash characters: all become word separators.
_HYPHENS = frozenset("-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d")


def _is_word_char(ch: str) -> bool:
    """True for letters, digits and combining marks (parts of a word)."""
    return ch.isalnum() or unicodedata.category(ch).startswith("M")


def normalize_text(s: str) -> str:
    """Normalise a transcript for scoring (applied to references and hypotheses).

    Steps, in order:

    1. Unicode NFKC (full-width forms, ligatures, ... become canonical).
    2. Lowercase (``str.lower``).
    3. Curly/typographic quotes become ASCII ``'`` and ``"``.
    4. Hyphens and dashes become spaces (``well-known`` -> ``well known``).
    5. Punctuation (Unicode category ``P*``, which includes ``%``, ``&``,
       ``/``) becomes a space, except an apostrophe between two word
       characters (``don't`` stays, ``'quoted'`` -> ``quoted``).  Symbols
       (``S*``, e.g. ``$``, ``+``) are kept.
    6. Runs of whitespace collapse to one space; ends are stripped.
    """
    s = unicodedata.normalize("NFKC", s).lower().translate(_QUOTE_MAP)
    out: list[str] = []
    n = len(s)
    for i, ch in enumerate(s):
        if ch in _HYPHENS:
            out.append(" ")
        elif ch == "'":
            internal = 0 < i < n - 1 and _is_word_char(s[i - 1]) and _is_word_char(s[i + 1])
            out.append("'" if internal else " ")
        elif unicodedata.category(ch).startswith("P"):
            out.append(" ")
        else:
            out.append(ch)
    return " ".join("".join(out).split())


_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10 ** 9, "billion"), (10 ** 6, "million"), (1000, "thousand"))
_ORD_IRREGULAR = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                  "nine": "ninth", "twelve": "twelfth"}


def _below_thousand(n: int) -> list[str]:
    out: list[str] = []
    if n >= 100:
        out += [_ONES[n // 100], "hundred"]
        n %= 100
    if n >= 20:
        out.append(_TENS[n // 10] + (f"-{_ONES[n % 10]}" if n % 10 else ""))
    elif n or not out:
        out.append(_ONES[n])
    return out


def number_words(n: int) -> str:
    """Cardinal ``n`` (0 <= n < 10**12) in words: 1234 -> 'one thousand two hundred thirty-four'."""
    if not 0 <= n < 10 ** 12:
        raise ValueError(f"number out of range: {n}")
    if n == 0:
        return "zero"
    out: list[str] = []
    for value, name in _SCALES:
        if n >= value:
            out += _below_thousand(n // value) + [name]
            n %= value
    if n:
        out += _below_thousand(n)
    return " ".join(out)


def ordinal_words(n: int) -> str:
    """Ordinal in words: 21 -> 'twenty-first'."""
    words = number_words(n)
    head, sep, last = words.rpartition(" ")
    pre, dash, unit = last.rpartition("-")
    if unit in _ORD_IRREGULAR:
        unit = _ORD_IRREGULAR[unit]
    elif unit.endswith("y"):
        unit = unit[:-1] + "ieth"
    else:
        unit += "th"
    return head + sep + pre + dash + unit


def year_words(n: int) -> str:
    """A year as said: 1945 -> 'nineteen forty-five', 1900 -> 'nineteen hundred', 2005 -> 'two thousand five'."""
    if 2000 <= n <= 2009 or n % 1000 == 0:
        return number_words(n)
    hi, lo = divmod(n, 100)
    if lo == 0:
        return f"{number_words(hi)} hundred"
    return f"{number_words(hi)} {'oh ' + _ONES[lo] if lo < 10 else number_words(lo)}"


_NUM = r"\d{1,3}(?:,\d{3})+|\d+"
_PATTERNS: list[tuple[re.Pattern[str], object]] = [
    # $5, $1,200, $3.50, $54 billion; £20
    (re.compile(rf"([$£])({_NUM})(?:\.(\d\d?))?(?:\s+(thousand|million|billion|trillion)\b)?(?![.,]?\d)"),
     lambda m: " ".join(filter(None, [
         number_words(int(m[2].replace(",", ""))) + (f" point {' '.join(_ONES[int(d)] for d in m[3])}"
                                                     if m[3] and m[4] else ""),
         m[4] or "",
         ("dollar" if m[1] == "$" else "pound") + ("" if m[2] == "1" and not m[4] else "s"),
         (f"and {number_words(int(m[3].ljust(2, '0')))} {'cent' if m[1] == '$' else 'pence'}"
          f"{'' if m[3] == '01' else 's'}" if m[3] and int(m[3]) and not m[4] else "")]))),
    # 10:30 (times), read as 'ten thirty'; 10:05 'ten oh five'; 10:00 'ten o'clock'
    (re.compile(r"\b(\d{1,2}):(\d\d)\b"),
     lambda m: f"{number_words(int(m[1]))} " + (
         "o'clock" if m[2] == "00" else (f"oh {_ONES[int(m[2])]}" if m[2][0] == "0" else number_words(int(m[2]))))),
    # 1st 2nd 23rd 100th
    (re.compile(r"\b(\d+)(?:st|nd|rd|th)\b", re.I), lambda m: ordinal_words(int(m[1]))),
    # 7.5, 0.25 -> 'seven point five'
    (re.compile(r"\b(\d+)\.(\d+)\b"),
     lambda m: f"{number_words(int(m[1]))} point {' '.join(_ONES[int(d)] for d in m[2])}"),
    # 9% / 9 per cent
    (re.compile(rf"\b({_NUM})\s?%"), lambda m: f"{number_words(int(m[1].replace(',', '')))} percent"),
    # years: 4 digits 1100-2099 without separators
    (re.compile(r"\b(1[1-9]\d\d|20\d\d)s\b"),
     lambda m: (lambda w: w[:-1] + "ies" if w.endswith("y") else w + "s")(year_words(int(m[1])))),
    (re.compile(r"\b(1[1-9]\d\d|20\d\d)\b"), lambda m: year_words(int(m[1]))),
    # any other cardinal (with or without thousands separators)
    (re.compile(rf"\b({_NUM})\b"), lambda m: number_words(int(m[1].replace(",", "")))),
    # digits glued to letters: 3D -> 'three D', mp3 -> 'mp three'
    (re.compile(r"(\d+)(?=[A-Za-z])"), lambda m: number_words(int(m[1])) + " "),
    (re.compile(r"(?<=[A-Za-z])(\d+)"), lambda m: " " + number_words(int(m[1]))),
]


def verbalize(s: str) -> str:
    """Digits and ``& % $ £`` read out as words; everything else unchanged.

    Numbers of 13 or more digits are left alone (the caller's character check then rejects the
    sentence).
    """
    if "&" in s:
        s = re.sub(r"\s*&\s*", " and ", s)
    if not any(c.isdigit() for c in s):
        return s
    for pat, fn in _PATTERNS:
        def sub(m: re.Match[str], fn=fn) -> str:
            try:
                return fn(m)  # type: ignore[operator]
            except ValueError:
                return m[0]
        s = pat.sub(sub, s)
    return s


_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "`": "'",
                         "\u2013": " - ", "\u2014": " - ", "\u00a0": " "})
_STRIP = re.compile(r"[\"_*]|''|--+|\[\d+\]")   # quotes, Gutenberg italics/emphasis, dashes, footnote marks
_ALLOWED = re.compile(r"[A-Za-z][A-Za-z' ,.;:!?-]*")
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")


def clean_sentence(s: str, min_words: int = 1, max_words: int = 1000) -> tuple[str | None, str | None]:
    """One sentence of written text -> a speakable sentence, or ``(None, reason)``.

    Rules, in order: HTML entities decoded, NFKC and ASCII quotes/dashes; numbers and symbols read out
    (:func:`verbalize`); double quotes, ``_`` / ``*`` emphasis and bracketed footnote marks
    removed; then the sentence is refused (reason in brackets) if it still holds a character
    outside letters and ``' ,.;:!?-`` (``chars``), has no lower-case letter (``caps``: headings),
    or has fewer than ``min_words`` / more than ``max_words`` words (``short`` / ``long``).
    Whitespace is collapsed and a leading lower-case letter capitalised.
    """
    s = unicodedata.normalize("NFKC", html.unescape(s)).translate(_QUOTES)
    s = verbalize(s)
    s = _STRIP.sub(" ", s)
    s = " ".join(s.split()).strip(" -:;,'")
    s = re.sub(r"\s+([,.;:!?])", r"\1", s)
    if not s:
        return None, "empty"
    if not _ALLOWED.fullmatch(s):
        return None, "chars"
    if not any(c.islower() for c in s):
        return None, "caps"
    n = len(_WORD.findall(s))
    if n < min_words:
        return None, "short"
    if n > max_words:
        return None, "long"
    if s[0].islower():
        s = s[0].upper() + s[1:]
    s = re.sub(r"\bi\b", "I", s)
    return s, None


_ABBREV = ("mr", "mrs", "ms", "dr", "st", "mt", "prof", "rev", "gen", "col", "capt", "lt", "sgt", "jr",
           "sr", "vs", "etc", "no", "vol", "fig", "ch", "co", "inc", "ltd", "esq", "hon", "gov", "sen",
           "rep", "messrs", "mme", "mlle", "u.s", "e.g", "i.e", "a.m", "p.m")
_SPLIT = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]*[A-Z0-9])")


def split_sentences(paragraph: str) -> list[str]:
    """Cut a paragraph of running text into sentences (after ``. ! ?`` before a capital), keeping
    abbreviations (``Mr.``, ``Dr.``, ``e.g.``) and single initials (``J. Smith``) together."""
    text = " ".join(paragraph.split())
    out: list[str] = []
    start = 0
    for m in _SPLIT.finditer(text):
        before = text[start:m.start()].rstrip("\"')]")
        last = before.rsplit(" ", 1)[-1].lower().rstrip(".")
        if before.endswith(".") and (last in _ABBREV or (len(last) == 1 and last.isalpha())):
            continue
        out.append(text[start:m.start()].strip())
        start = m.end()
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return [s for s in out if s]


NGRAM = 8          # a training sentence sharing any 8-word window with a held-out sentence goes
MIN_CONTAINED = 4  # ... and so does one containing a whole held-out sentence of >= 4 words


def _h(key: str) -> str:
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def heldout_keys(sentence: str) -> set[str]:
    """Hashed keys of one held-out sentence: its normalised whole (``=``), and either its
    ``NGRAM``-word windows or, when shorter, the whole word sequence as a containment key."""
    words = normalize_text(sentence).split()
    if not words:
        return set()
    keys = {_h("=" + " ".join(words))}
    if len(words) >= NGRAM:
        keys |= {_h(" ".join(words[i:i + NGRAM])) for i in range(len(words) - NGRAM + 1)}
    elif len(words) >= MIN_CONTAINED:
        keys.add(_h(" ".join(words)))
    return keys


class HeldoutFilter:
    """Test-set filter over hashed keys (see the module docstring for the rule)."""

    def __init__(self, keys: Iterable[str] = ()) -> None:
        self.keys: set[str] = set(keys)

    def add(self, sentences: Iterable[str]) -> int:
        """Add held-out sentences; returns how many gave keys."""
        n = 0
        for s in sentences:
            k = heldout_keys(s)
            n += bool(k)
            self.keys |= k
        return n

    def hits(self, sentence: str) -> bool:
        """True when ``sentence`` must leave the training text."""
        words = normalize_text(sentence).split()
        if not words or not self.keys:
            return False
        if _h("=" + " ".join(words)) in self.keys:
            return True
        L = len(words)
        for n in range(MIN_CONTAINED, min(NGRAM, L) + 1):
            for i in range(L - n + 1):
                if _h(" ".join(words[i:i + n])) in self.keys:
                    return True
        return False
