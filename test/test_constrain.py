"""Closed-vocabulary decoding: whatever the model prefers, only listed words come out."""
import pytest
import torch

from tasu.constrain import VocabularyConstraint, read_word_list
from test_model import V, tiny_model

PIECES = ["<pad>", "<s>", "</s>", "the", " the", "cat", " cat", "alog", " dog", "dog", " a", "a", "c", " c",
          "at", "t", "he", " ", "h", "o", "g", "d", "l"]


class PieceTokenizer:
    """Greedy longest-match over PIECES; a leading space belongs to the next word's first piece."""

    def __call__(self, s, add_special_tokens=False):
        ids, i = [], 0
        while i < len(s):
            best = max((p for p in PIECES[3:] if s.startswith(p, i)), key=len)
            ids.append(PIECES.index(best))
            i += len(best)
        return {"input_ids": ids}

    def decode(self, ids):
        return "".join(PIECES[i] for i in ids if i > 2)


WORDS = ["the", "cat", "catalog", "dog"]


def test_allowed_tokens_follow_the_word_trie():
    tok = PieceTokenizer()
    c = VocabularyConstraint(tok, WORDS, eos_id=2)
    first = {tok(w)["input_ids"][0] for w in WORDS}
    assert set(c.allowed([])) == first                                   # a first word, no end yet
    cat = tok("cat")["input_ids"]
    after_cat = set(c.allowed(cat))
    assert PIECES.index("alog") in after_cat and 2 in after_cat          # "catalog" or end
    assert PIECES.index(" dog") in after_cat and PIECES.index("dog") not in after_cat
    assert c.allowed(tok("dog dog")["input_ids"]) is not None
    assert c.allowed(tok("a")["input_ids"]) is None                      # outside: no constraint


def test_constrained_generation_writes_only_listed_words():
    model, tpl = tiny_model()
    tok = PieceTokenizer()
    c = VocabularyConstraint(tok, WORDS, eos_id=tpl.eos_id)
    torch.manual_seed(1)
    feats = [torch.rand(n, V) for n in (3, 5, 8, 4)]
    free = model.generate(feats, max_new_tokens=12)
    assert any(t >= len(PIECES) for h in free for t in h)  # the random model alone writes anything
    for num_beams in (1, 3):
        hyps = model.generate(feats, max_new_tokens=12, num_beams=num_beams, constraint=c)
        for h in hyps:
            assert all(t < len(PIECES) for t in h)
            words = tok.decode(h).split()
            # a hypothesis cut by max_new_tokens may end inside a word; every earlier word is listed
            assert all(w in WORDS for w in words[:-1]) and words, tok.decode(h)


def test_word_list_errors_name_the_file(tmp_path):
    empty = tmp_path / "vocab.txt"
    empty.write_text("\n \n")
    with pytest.raises(ValueError, match="vocab.txt: the word list is empty"):
        read_word_list(empty)
    with pytest.raises(ValueError, match="missing.txt"):
        read_word_list(tmp_path / "missing.txt")
    (tmp_path / "w.txt").write_text("the 12\ncat\n")
    assert read_word_list(tmp_path / "w.txt") == ["the", "cat"]
