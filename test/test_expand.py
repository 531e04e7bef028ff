"""N-best expansion by lexicon neighbours: the alignment's row spans, the neighbour index, the swaps."""
import numpy as np
import pytest

from tasu.expand import LexiconNeighbours, align_rows, propose
from tasu.rescore import FLOOR, alignment_cost


def one_hot_rows(ids, V=12, p=0.9):
    rows = np.full((len(ids), V), (1 - p) / (V - 1))
    rows[np.arange(len(ids)), ids] = p
    return rows


def path_cost(rows, units, matched, ins, dele):
    """Cost of the alignment that ``matched`` describes (a unit's row, or -1: deleted)."""
    used = [t for t in matched if t >= 0]
    assert used == sorted(used) and len(set(used)) == len(used)  # monotone, one unit a row
    cost = sum(-np.log(max(rows[t, u], FLOOR)) for u, t in zip(units, matched) if t >= 0)
    return cost + dele * matched.count(-1) + ins * (rows.shape[0] - len(used))


def test_align_rows_gives_an_alignment_of_the_cheapest_cost():
    rng = np.random.default_rng(1)
    for _ in range(200):
        T, L = rng.integers(0, 9, size=2)
        rows = rng.dirichlet(np.ones(6) * 0.3, size=T) if T else np.zeros((0, 6))
        units = list(rng.integers(0, 6, size=L))
        matched = align_rows(rows, units, 2.0, 5.0)
        assert len(matched) == L
        assert path_cost(rows, units, matched, 2.0, 5.0) == pytest.approx(alignment_cost(rows, units, 2.0, 5.0))


# units: 1 p, 2 eɪ, 3 d, 4 s, 5 t, 6 ð, 7 ə, 8 m, 9 ʌ, 10 n
LEX = [("paid", [1, 2, 3]), ("paced", [1, 2, 4, 5]), ("paste", [1, 2, 4, 5]), ("pays", [1, 2, 4]),
       ("the", [6, 7]), ("money", [8, 9, 10, 2]), ("tea", [5, 2])]
UNITS = dict(LEX)


def units_of(word):
    return UNITS[word.lower().strip(".,")]


def test_neighbours_are_the_pronunciations_within_one_edit():
    nb = LexiconNeighbours(LEX)
    assert len(nb) == 6  # paced and paste share one pronunciation
    near = {tuple(p): ws for p, ws in nb.near([1, 2, 4, 5])}
    assert near[(1, 2, 4, 5)] == ["paced", "paste"]          # the same
    assert near[(1, 2, 4)] == ["pays"]                       # one unit fewer
    assert (1, 2, 3) not in near                             # two edits away
    assert set(near) == {(1, 2, 4, 5), (1, 2, 4)}
    assert {tuple(p) for p, _ in nb.near([1, 2, 3])} == {(1, 2, 3), (1, 2, 4)}  # a substitution
    assert nb.near([]) == []
    one = {tuple(p): ws for p, ws in LexiconNeighbours(LEX, max_homophones=1).near([1, 2, 4, 5])}
    assert one[(1, 2, 4, 5)] == ["paced"]  # the first of the homophones


def test_neighbours_from_a_lexicon_file(tmp_path):
    lex = tmp_path / "lexicon.txt"
    lex.write_text("paid\tp eɪ d\tp ai d\npaced\tp eɪ s t\nqueue\tk j u\n", encoding="utf-8")
    nb = LexiconNeighbours.from_lexicon(lex, {"p": 1, "eɪ": 2, "d": 3, "s": 4, "t": 5})
    assert len(nb) == 2  # "queue" has units the model does not know
    assert [ws for _, ws in nb.near([1, 2, 4, 5])] == [["paced"]]
    lex.write_text("paid\tp eɪ d\nbroken line\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"lexicon.txt:2: expected '<word>\\t<units>"):
        LexiconNeighbours.from_lexicon(lex, {"p": 1, "eɪ": 2, "d": 3})


def test_propose_swaps_the_word_the_rows_do_not_carry():
    # the speech says "the money paced": the answer misread the last word
    rows = one_hot_rows([6, 7, 8, 9, 10, 2, 1, 2, 4, 5])
    nb = LexiconNeighbours(LEX)
    new = propose("The money paid".split(), rows, units_of, nb, 2.0, 5.0)
    assert new[:2] == ["The money paced", "The money paste"]
    assert len(new) == 2                               # per_span: the 2 best words of a span
    more = propose("The money paid".split(), rows, units_of, nb, 2.0, 5.0, per_span=3)
    assert more == new + ["The money pays"]            # also better than "paid", less than "paced"
    assert all(a.startswith("The money ") for a in new)  # the words the rows carry stay
    assert propose("The money paced".split(), rows, units_of, nb, 2.0, 5.0) == []  # nothing fits better
    # a margin above the gain of every swap proposes nothing
    gain = alignment_cost(rows[6:], [1, 2, 3], 2.0, 5.0) - alignment_cost(rows[6:], [1, 2, 4, 5], 2.0, 5.0)
    assert propose("The money paid".split(), rows, units_of, nb, 2.0, 5.0, margin=gain + 1e-6) == []
    assert propose("The money paid".split(), rows, units_of, nb, 2.0, 5.0, max_answers=1) == ["The money paced"]


def test_propose_joins_two_words_and_combines_swaps():
    # the speech says "tea paced": the answer split the first word in two and misread the second
    rows = one_hot_rows([5, 2, 1, 2, 4, 5])
    lex = LEX + [("a", [7]), ("t", [5])]
    UNITS.update(lex)
    new = propose("t a paid".split(), rows, units_of, LexiconNeighbours(lex), 2.0, 5.0)
    assert new[0] == "tea paced"  # both swaps at once come first
    assert "tea paid" in new and "t a paced" in new
    assert propose([], rows, units_of, LexiconNeighbours(lex), 2.0, 5.0) == []
    assert propose(["tea"], rows[:0], units_of, LexiconNeighbours(lex), 2.0, 5.0) == []


def test_propose_joins_two_words_the_encoder_parted_with_a_word_boundary():
    # the speech says "payday"; the encoder wrote "p eɪ <wb> d eɪ" (unit 11: <wb>) and the answer split it
    rows = one_hot_rows([1, 2, 11, 3, 2])
    lex = LEX + [("pay", [1, 2]), ("day", [3, 2]), ("payday", [1, 2, 3, 2])]
    UNITS.update(lex)
    nb = LexiconNeighbours(lex)
    assert "payday" in propose("pay day".split(), rows, units_of, nb, 4.0, 5.0)  # a fit as good as theirs
    assert "payday" in propose("pay day".split(), rows, units_of, nb, 4.0, 5.0, wb=11, wb_cost=0.5)
    # the span's rows hold the <wb> rows around it too: left out of the reading, the join is found
    framed = one_hot_rows([6, 7, 11, 1, 2, 11, 3, 2, 11, 5, 2])            # "the pay day tea"
    assert "the payday tea" in propose("the pay day tea".split(), framed, units_of, nb, 4.0, 5.0, wb=11, wb_cost=0.5)
    assert "the payday tea" not in propose("the pay day tea".split(), framed, units_of, nb, 4.0, 5.0)
    # but one word is not swapped for another that only fits as well (a homophone)
    assert propose("The money paced".split(), one_hot_rows([6, 7, 8, 9, 10, 2, 1, 2, 4, 5]), units_of,
                   LexiconNeighbours(LEX), 2.0, 5.0, wb=11, wb_cost=0.5) == []
    # the rows' word boundaries are priced apart in the alignment too: the same spans come out
    assert align_rows(rows, [1, 2, 3, 2], 4.0, 5.0, wb=11, wb_cost=0.5) == [0, 1, 3, 4]
    ins_wb = 4.0 * (1 - 0.9) + 0.5 * 0.9   # the <wb> row: 90 % of its mass at 0.5, the rest at 4
    assert path_cost(rows, [1, 2, 3, 2], [0, 1, 3, 4], 4.0, 5.0) - 4.0 + ins_wb == pytest.approx(
        alignment_cost(rows, [1, 2, 3, 2], 4.0, 5.0, wb=11, wb_cost=0.5))


class _WordTok:
    """Token ids are word numbers: enough of a tokenizer for decode_posteriors."""
    def __init__(self):
        self.vocab: list[str] = []

    def __call__(self, text, add_special_tokens=False):
        ids = []
        for w in text.split():
            if w not in self.vocab:
                self.vocab.append(w)
            ids.append(self.vocab.index(w))
        return {"input_ids": ids}

    def decode(self, ids, skip_special_tokens=True):
        return " ".join(self.vocab[i] for i in ids)


class _ScoredAnswers:
    """A stand-in SpeechLLM: the beam answers "a b"; teacher forcing scores answers from a table,
    and their priors (score_prior) from another."""
    def __init__(self, scores, priors=None):
        self.tokenizer, self.scores, self.scored, self.priors, self.prior_asked = _WordTok(), scores, [], priors, []

    def generate_nbest(self, feats, num_beams, max_new_tokens, constraint, templates, guard):
        return [[(self.tokenizer("a b")["input_ids"], self.scores["a b"])] for _ in feats]

    def score_answers(self, feats, answers, templates=None):
        texts = [[self.tokenizer.decode(ids) for ids in ex] for ex in answers]
        self.scored.append(texts)
        return [[self.scores[t] for t in ex] for ex in texts]

    def score_prior(self, answers, templates=None):
        texts = [[self.tokenizer.decode(ids) for ids in ex] for ex in answers]
        self.prior_asked += [t for ex in texts for t in ex]
        return [[self.priors[t] for t in ex] for ex in texts]


@pytest.mark.parametrize("rounds, answer, expanded", [
    (1, "a c", ["a b"]),                   # the first round's best swap
    (2, "y c", ["a b", "a c"]),            # the choice "a c" expanded again: "y c" is better still
    (4, "y c", ["a b", "a c", "y c"]),     # "y c" proposes nothing new: no fourth round, none re-expanded
])
def test_expand_rounds_expand_the_rescorers_choice_again(rounds, answer, expanded):
    from tasu.decode import decode_posteriors

    proposals = {"a b": ["a c", "x b"], "a c": ["y c", "a b"], "y c": ["a c"]}
    model = _ScoredAnswers({"a b": -5.0, "a c": -3.0, "x b": -4.0, "y c": -1.0})
    calls = []

    def expander(rows, text):
        calls.append(text)
        return proposals[text]

    def rescorer(rows, cands):  # the LLM's score alone
        return max(range(len(cands)), key=lambda i: cands[i][1])

    nbest = {}
    got = decode_posteriors(model, [("u1", np.zeros((3, 4), np.float32))], rescorer=rescorer, nbest=nbest,
                            expander=expander, expand_rounds=rounds)
    assert got == {"u1": answer} and calls == expanded
    # every answer is scored once: those the beam or an earlier round already had are not proposed again
    assert [c for c, _ in nbest["u1"]] == ["a b", "a c", "x b"] + (["y c"] if rounds > 1 else [])
    assert [t for r in model.scored for ex in r for t in ex] == [c for c, _ in nbest["u1"]][1:]


@pytest.mark.parametrize("weight, answer", [
    (0.0, "y c"),    # log-probs alone: "a c", then its expansion "y c"
    (1.0, "x b"),    # the prior makes "x b" the choice; it expands to nothing new
    (-1.0, "y c"),   # priors subtracted (ILME): "a c", then "y c"
])
def test_prior_weight_adds_each_answers_prior_for_the_rescorer_only(weight, answer):
    from tasu.decode import decode_posteriors

    model = _ScoredAnswers({"a b": -5.0, "a c": -3.0, "x b": -4.0, "y c": -1.0},
                           priors={"a b": -9.0, "a c": -8.0, "x b": -2.0, "y c": -20.0})

    def rescorer(rows, cands):
        return max(range(len(cands)), key=lambda i: cands[i][1])

    nbest = {}
    got = decode_posteriors(model, [("u1", np.zeros((3, 4), np.float32))], rescorer=rescorer, nbest=nbest,
                            expander=lambda rows, text: {"a b": ["a c", "x b"], "a c": ["y c"]}.get(text, []),
                            expand_rounds=2, prior_weight=weight)
    assert got == {"u1": answer}
    # nbest keeps the LLM's log-probs alone; each answer's prior is scored once, and only when weighted
    assert dict(nbest["u1"]) == {t: model.scores[t] for t, _ in nbest["u1"]}
    assert sorted(model.prior_asked) == (sorted(t for t, _ in nbest["u1"]) if weight else [])
