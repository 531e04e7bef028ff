"""Text -> hama units, lexicon cache, unit inventory files."""

import pytest

from tasu.g2p import HamaG2P, read_lexicon
from tasu.units import UnitInventory, text_words

hama = pytest.importorskip("hama")


@pytest.fixture(scope="module")
def inventory():
    return UnitInventory(tuple(hama.ASRModel().decoder_tokens))


def test_text_words():
    assert text_words("Don't STOP, the 'end'-game!") == ["don't", "stop", "the", "end", "game"]


def test_sentence_units_and_cache(inventory, tmp_path):
    lex = tmp_path / "lexicon.txt"
    g = HamaG2P(inventory, lex)
    u = g.sentence_units("The cat sat.")
    words = " ".join(u).split(" <wb> ")
    assert len(words) == 3 and u.count("<wb>") == 2
    assert all(x in inventory.index() for x in u)
    assert "k" in words[1].split() and "t" in words[1].split()
    lexicon, letters = read_lexicon(lex)
    assert set(lexicon) == {"the", "cat", "sat"}
    assert len(letters["cat"]) == len(lexicon["cat"])
    # the cache is used: a fresh G2P with the same file needs no model call
    g2 = HamaG2P(inventory, lex)
    assert g2.add_words(["cat", "sat"]) == 0
    assert g2.sentence_units("the cat sat") == u
    sp = g2.spellings()
    assert "c" in sp["k"]


def test_empty_and_unpronounceable(inventory, tmp_path):
    g = HamaG2P(inventory, tmp_path / "lex.txt")
    assert g.sentence_units("") == []
    assert g.sentence_units(" ... !!! ") == []


def test_inventory_file_roundtrip(inventory, tmp_path):
    p = tmp_path / "units.txt"
    inventory.to_file(p)
    assert UnitInventory.from_file(p) == inventory
    assert inventory.blank_id == inventory.size - 1 and inventory.wb_id == inventory.size - 2
    p.write_text("a 0\nb 2\n")
    with pytest.raises(ValueError, match=r"units.txt:2"):
        UnitInventory.from_file(p)


def test_bad_lexicon_line(tmp_path):
    p = tmp_path / "lex.txt"
    p.write_text("cat\tk æ t\tc a t\nbroken line\n")
    with pytest.raises(ValueError, match=r"lex.txt:2"):
        read_lexicon(p)
