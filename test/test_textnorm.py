"""Speakable-text rules and the held-out filter (tasu.textnorm)."""
import pytest

from tasu.textnorm import (
    HeldoutFilter,
    clean_sentence,
    heldout_keys,
    number_words,
    ordinal_words,
    split_sentences,
    verbalize,
    year_words,
)


@pytest.mark.parametrize("n, words", [
    (0, "zero"), (7, "seven"), (13, "thirteen"), (21, "twenty-one"), (100, "one hundred"),
    (105, "one hundred five"), (1000, "one thousand"), (1234, "one thousand two hundred thirty-four"),
    (2_000_017, "two million seventeen"), (10 ** 9, "one billion")])
def test_number_words(n, words):
    assert number_words(n) == words


def test_number_words_range():
    with pytest.raises(ValueError):
        number_words(10 ** 12)


@pytest.mark.parametrize("n, words", [(1, "first"), (2, "second"), (3, "third"), (5, "fifth"), (12, "twelfth"),
                                      (20, "twentieth"), (21, "twenty-first"), (100, "one hundredth")])
def test_ordinal_words(n, words):
    assert ordinal_words(n) == words


@pytest.mark.parametrize("n, words", [(1945, "nineteen forty-five"), (1900, "nineteen hundred"),
                                      (1805, "eighteen oh five"), (2005, "two thousand five"),
                                      (2019, "twenty nineteen"), (2000, "two thousand")])
def test_year_words(n, words):
    assert year_words(n) == words


@pytest.mark.parametrize("text, spoken", [
    ("In 1945 we had 3 cows.", "In nineteen forty-five we had three cows."),
    ("It cost $1,200.50", "It cost one thousand two hundred dollars and fifty cents"),
    ("It cost $1", "It cost one dollar"),
    ("a $54 billion deficit, $1.5 million and $2", "a fifty-four billion dollars deficit, one point five million "
                                                   "dollars and two dollars"),
    ("the 21st century", "the twenty-first century"),
    ("at 10:30 or 10:05 or 9:00", "at ten thirty or ten oh five or nine o'clock"),
    ("up 7.5 or 9%", "up seven point five or nine percent"),
    ("the 1990s", "the nineteen nineties"),
    ("salt & pepper", "salt and pepper"),
    ("3D audio as mp3", "three D audio as mp three"),
    ("no digits here", "no digits here"),
])
def test_verbalize(text, spoken):
    assert verbalize(text) == spoken


@pytest.mark.parametrize("text, out, why", [
    ("\u201cWell,\u201d said he, \u201cI _really_ don\u2019t know.\u201d", "Well, said he, I really don't know.", None),
    ("the 2nd time &amp; the last", "The second time and the last", None),
    ("CHAPTER IV", None, "caps"),
    ("See page <12> of the book", None, "chars"),
    ("Yes.", None, "short"),
    ("word " * 40, None, "long"),
    ("   ", None, "empty"),
    ("and then i said so", "And then I said so", None),
])
def test_clean_sentence(text, out, why):
    assert clean_sentence(text, min_words=3, max_words=35) == (out, why)


def test_split_sentences_keeps_abbreviations_and_initials():
    para = 'Mr. Smith went to Washington. He met J. Edgar Hoover! "Why?" she asked. It ended.'
    assert split_sentences(para) == ["Mr. Smith went to Washington.", "He met J. Edgar Hoover!",
                                     '"Why?" she asked.', "It ended."]


def test_heldout_filter_rule():
    f = HeldoutFilter()
    assert f.add(["Will we ever forget it.", "For the twentieth time that evening the two men shook hands.",
                  "Go."]) == 3
    assert f.hits("will we ever forget it")                                   # the same sentence, normalised
    assert f.hits("And so, will we ever forget it, my friend?")               # contains a short one whole
    assert f.hits("For the twentieth time that evening the two men met")      # shares an 8-word window
    assert f.hits("go")                                                       # a very short one: exact only
    assert not f.hits("Let us go now.")
    assert not f.hits("will we ever")                                         # a part of a short one is fine
    assert not f.hits("For the twentieth time that evening we sang")          # 7 shared words are fine
    assert not HeldoutFilter().hits("anything at all")


def test_heldout_keys_are_hashed():
    keys = heldout_keys("For the twentieth time that evening the two men shook hands.")
    assert len(keys) == 1 + 4 and all(len(k) == 16 and "twentieth" not in k for k in keys)
