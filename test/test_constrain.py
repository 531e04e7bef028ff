"""Closed-vocabulary decoding: whatever the model prefers, only listed words come out."""
import pytest
import torch
from test_model import V, tiny_model

from tasu.constrain import VocabularyConstraint, read_word_list

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


class Loop:
    """A 'model' that never stops: only the tokens of ``cycle`` in turn are allowed, never the end."""

    def __init__(self, cycle):
        self.cycle = cycle

    def __call__(self, input_ids, scores):
        out = torch.full_like(scores, float("-inf"))
        out[:, self.cycle[input_ids.shape[1] % len(self.cycle)]] = 0
        return out


@pytest.mark.parametrize("num_beams", [1, 2])
def test_a_looping_model_stops_at_the_length_bound(num_beams):
    from tasu.config import GuardConfig
    from tasu.constrain import length_bounds

    model, tpl = tiny_model()
    torch.manual_seed(1)
    feats = [torch.rand(n, V) for n in (4, 10, 20)]
    loop = Loop([7, 8, 9])
    free = model.generate(feats, max_new_tokens=40, num_beams=num_beams, constraint=loop)
    assert [len(h) for h in free] == [40, 40, 40]                      # without a guard: to max_new_tokens
    guard = GuardConfig(max_len_ratio=0.5, max_len_offset=2, loop_repeats=0)
    hyps = model.generate(feats, max_new_tokens=40, num_beams=num_beams, constraint=loop, guard=guard)
    assert [len(h) for h in hyps] == length_bounds([4, 10, 20], 0.5, 2, 40) == [4, 7, 12]
    assert hyps[2] == [7, 8, 9] * 4


@pytest.mark.parametrize("num_beams", [1, 2])
def test_the_loop_guard_ends_and_cuts_a_loop(num_beams):
    from tasu.config import GuardConfig

    model, tpl = tiny_model()
    feats = [torch.rand(6, V), torch.rand(9, V)]
    hyps = model.generate(feats, max_new_tokens=40, num_beams=num_beams, constraint=Loop([7, 8]),
                          guard=GuardConfig(loop_repeats=3))
    assert hyps == [[7, 8], [7, 8]]                                    # 3 copies written, cut to one
    if num_beams > 1:
        nbest = model.generate_nbest(feats, num_beams, max_new_tokens=40, constraint=Loop([7, 8]),
                                     guard=GuardConfig(loop_repeats=3))
        assert [per[0][0] for per in nbest] == [[7, 8], [7, 8]]         # (other beams are dead: one token allowed)


def test_trim_loops_keeps_one_copy_and_leaves_the_rest():
    from tasu.constrain import trim_loops

    assert trim_loops([1, 2, 3, 4, 3, 4, 3, 4], 3) == [1, 2, 3, 4]
    assert trim_loops([1, 2, 3, 4, 3, 4], 3) == [1, 2, 3, 4, 3, 4]     # two copies: not a loop
    assert trim_loops([5, 5, 5, 5, 5], 3) == [5]
    assert trim_loops([1, 2, 3], 0) == [1, 2, 3]
