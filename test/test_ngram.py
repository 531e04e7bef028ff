"""tasu.ngram: Witten-Bell training and static mixing give proper distributions; ARPA in and out."""
import math

import pytest

from tasu.ngram import BOS, EOS, LOG10_ZERO, mix, ngram_set, read_arpa, train_witten_bell

CORPUS = [s.split() for s in ["the cat sat", "the cat ran", "a dog sat on the mat", "the dog", "press one"]]
OTHER = [s.split() for s in ["a cat ran on the mat", "press the pound key", "the dog sat"]]


def histories(lm):
    """The empty history, every explicit history, and histories the model never saw."""
    seen = [g for g in lm.prob if len(g) < lm.order and g != (EOS,)]
    return [(), *seen, ("zebra",), ("the", "zebra"), ("zebra", "cat"), (BOS, "dog")]


def worst_sum(lm):
    vocab = lm.vocab
    return max(abs(sum(10 ** lm.logprob(w, h) for w in vocab) - 1) for h in histories(lm))


def test_witten_bell_sums_to_one_after_every_history():
    lm = train_witten_bell(CORPUS, order=3, vocab=["zebra"])
    assert lm.vocab == sorted({w for s in CORPUS for w in s} | {EOS, "zebra"})
    assert worst_sum(lm) < 1e-12
    # by hand: 21 tokens (with </s>), 11 seen types, a vocabulary of 12: P(the) = (4 + 11/12) / (21 + 11)
    assert lm.logprob("the", []) == pytest.approx(math.log10((4 + 11 / 12) / 32))
    # after "the": c = 4 (cat cat mat dog), T = 3; P(cat | the) = (2 + 3 P(cat)) / 7
    p_cat = (2 + 11 / 12) / 32
    assert lm.logprob("cat", ["the"]) == pytest.approx(math.log10((2 + 3 * p_cat) / 7))
    assert lm.logprob(BOS, []) == LOG10_ZERO and lm.logprob("unknown", ["the"]) == LOG10_ZERO
    assert lm.sentence_logprob(["the", "cat", "sat"]) > lm.sentence_logprob(["sat", "cat", "the"])


def test_arpa_round_trip_and_pocketsphinx_reads_it(tmp_path):
    lm = train_witten_bell(CORPUS, order=3)
    text = lm.to_arpa()
    assert text.startswith("\\data\\\nngram 1=") and text.endswith("\\end\\\n")
    back = read_arpa(text)
    assert back.order == 3 and back.prob.keys() == lm.prob.keys()
    for h in histories(lm):
        for w in lm.vocab:
            assert back.logprob(w, h) == pytest.approx(lm.logprob(w, h), abs=1e-6)
    ps = pytest.importorskip("pocketsphinx")
    (tmp_path / "lm.arpa").write_text(text)
    config = ps.Config()
    config["loglevel"] = "FATAL"
    lmath = ps.LogMath()
    model = ps.NGramModel(config, lmath, str(tmp_path / "lm.arpa"))
    for words in (["cat", "the", BOS], ["sat", "cat"], ["mat", "dog", "cat"], [EOS, "one"]):
        ours = lm.logprob(words[0], words[:0:-1])
        assert lmath.log_to_log10(model.prob(words)) == pytest.approx(ours, abs=2e-3)   # its log base 1.0001


def test_mix_sums_to_one_and_is_the_mixture_on_explicit_ngrams():
    a, b = train_witten_bell(CORPUS, order=3), train_witten_bell(OTHER, order=3, vocab=["zebra"])
    sets = [x | y for x, y in zip(ngram_set(CORPUS, 3), ngram_set(OTHER, 3))]
    m, stats = mix([a, b], [0.3, 0.7], sets, set(a.vocab) | set(b.vocab))
    assert stats == {"dropped_words": 0, "floored_histories": 0}
    assert set(m.vocab) == set(a.vocab) | set(b.vocab)
    assert worst_sum(m) < 1e-9
    for w, h in (("cat", ("the",)), ("key", ("the", "pound")), ("sat", (BOS, "the", "cat")), ("one", ("press",))):
        want = 0.3 * 10 ** a.logprob(w, h) + 0.7 * 10 ** b.logprob(w, h)
        assert m.logprob(w, h) == pytest.approx(math.log10(want), abs=1e-12)
    only_a, _ = mix([a], [1.0], ngram_set(CORPUS, 3), a.vocab)        # one part over its own n-grams: itself
    assert all(only_a.logprob(w, h) == pytest.approx(a.logprob(w, h)) for h in histories(a) for w in a.vocab)
    assert worst_sum(read_arpa(m.to_arpa())) < 1e-5
    with pytest.raises(ValueError, match="sum to 1"):
        mix([a, b], [0.5, 0.6], sets, a.vocab)
