"""N-best rescoring by acoustic fit: the alignment cost and the choice it makes."""
import numpy as np
import pytest

from tasu.rescore import FLOOR, alignment_cost, pick_hypothesis


def one_hot_rows(ids, V=6, p=0.9):
    rows = np.full((len(ids), V), (1 - p) / (V - 1))
    rows[np.arange(len(ids)), ids] = p
    return rows


def reference_cost(rows, units, ins, dele):
    """The same alignment, one cell at a time."""
    T, L = rows.shape[0], len(units)
    D = np.zeros((T + 1, L + 1))
    D[0, :] = np.arange(L + 1) * dele
    D[:, 0] = np.arange(T + 1) * ins
    for t in range(1, T + 1):
        for j in range(1, L + 1):
            D[t, j] = min(D[t - 1, j - 1] - np.log(max(rows[t - 1, units[j - 1]], FLOOR)),
                          D[t - 1, j] + ins, D[t, j - 1] + dele)
    return D[T, L]


def test_alignment_cost_equals_the_cell_by_cell_dynamic_programme():
    rng = np.random.default_rng(0)
    for _ in range(200):
        T, L = rng.integers(0, 10, size=2)
        rows = rng.dirichlet(np.ones(6), size=T) if T else np.zeros((0, 6))
        units = list(rng.integers(0, 6, size=L))
        assert alignment_cost(rows, units, 2.0, 5.0) == pytest.approx(reference_cost(rows, units, 2.0, 5.0))


def test_alignment_cost_prices_matches_insertions_and_deletions():
    rows = one_hot_rows([1, 2, 3])
    exact = alignment_cost(rows, [1, 2, 3], 2.0, 5.0)
    assert exact == pytest.approx(-3 * np.log(0.9))
    # one unit more than the rows carry: a deletion; one unit less: a row left over (insertion)
    assert alignment_cost(rows, [1, 2, 4, 3], 2.0, 5.0) == pytest.approx(exact + 5.0)
    assert alignment_cost(rows, [1, 3], 2.0, 5.0) == pytest.approx(-2 * np.log(0.9) + 2.0)
    # a substituted unit costs what the row gives it, when that is cheaper than ins + del
    assert alignment_cost(rows, [1, 4, 3], 2.0, 5.0) == pytest.approx(-2 * np.log(0.9) - np.log(0.02))
    assert alignment_cost(rows, [], 2.0, 5.0) == pytest.approx(3 * 2.0)
    assert alignment_cost(rows[:0], [1, 2], 2.0, 5.0) == pytest.approx(2 * 5.0)


def test_pick_hypothesis_prefers_the_answer_the_rows_carry_once_the_weight_allows():
    rows = one_hot_rows([1, 2, 3])
    units = {"one two three": [1, 2, 3], "one two four three": [1, 2, 4, 3], "": []}
    hyps = [("one two four three", -1.0), ("one two three", -2.5), ("", -9.0)]  # the LLM likes the longer one
    assert pick_hypothesis(hyps, rows, units.__getitem__, 0.0, 2.0, 5.0) == 0
    assert pick_hypothesis(hyps, rows, units.__getitem__, 0.5, 2.0, 5.0) == 1
    assert pick_hypothesis(hyps[:1], rows, units.__getitem__, 10.0, 2.0, 5.0) == 0


def reference_wb_cost(rows, units, ins, dele, wb, wb_cost):
    """The alignment with word boundaries priced apart, one cell at a time."""
    T, L = rows.shape[0], len(units)
    row_ins = [ins * (1 - rows[t, wb]) + wb_cost * rows[t, wb] for t in range(T)]
    unit_del = [wb_cost if u == wb else dele for u in units]
    D = np.zeros((T + 1, L + 1))
    D[0, 1:] = np.cumsum(unit_del)
    D[1:, 0] = np.cumsum(row_ins)
    for t in range(1, T + 1):
        for j in range(1, L + 1):
            D[t, j] = min(D[t - 1, j - 1] - np.log(max(rows[t - 1, units[j - 1]], FLOOR)),
                          D[t - 1, j] + row_ins[t - 1], D[t, j - 1] + unit_del[j - 1])
    return D[T, L]


def test_word_boundaries_priced_apart_equal_the_cell_by_cell_programme():
    rng = np.random.default_rng(3)
    for _ in range(200):
        T, L = rng.integers(0, 9, size=2)
        rows = rng.dirichlet(np.ones(6) * 0.3, size=T) if T else np.zeros((0, 6))
        units = list(rng.integers(0, 6, size=L))
        got = alignment_cost(rows, units, 2.0, 5.0, wb=5, wb_cost=0.5)
        assert got == pytest.approx(reference_wb_cost(rows, units, 2.0, 5.0, 5, 0.5))
        # no wb cost: as before
        assert alignment_cost(rows, units, 2.0, 5.0, wb=5) == pytest.approx(reference_cost(rows, units, 2.0, 5.0))


def test_a_join_the_speech_splits_wins_once_word_boundaries_are_cheap():
    # units 1 p, 2 eɪ, 3 d; 5 <wb>: the encoder wrote "p eɪ <wb> d eɪ" for "payday"
    rows = one_hot_rows([1, 2, 5, 3, 2])
    units = {"pay day": [1, 2, 5, 3, 2], "payday": [1, 2, 3, 2]}
    hyps = [("pay day", -1.5), ("payday", -1.0)]   # the LLM prefers the join
    assert pick_hypothesis(hyps, rows, units.__getitem__, 1.0, 4.0, 5.0) == 0          # the <wb> row costs 4
    assert pick_hypothesis(hyps, rows, units.__getitem__, 1.0, 4.0, 5.0, wb=5, wb_cost=0.1) == 1
    left = alignment_cost(rows, units["payday"], 4.0, 5.0, wb=5, wb_cost=0.1)
    assert left == pytest.approx(-4 * np.log(0.9) + 0.1 * 0.9 + 4.0 * 0.1)  # the <wb> row, 90 % at 0.1
    # and an answer's <wb> the speech does not carry costs wb_cost, not the delete cost
    assert alignment_cost(one_hot_rows([1, 2, 3, 2]), units["pay day"], 4.0, 5.0, wb=5, wb_cost=0.1) \
        == pytest.approx(-4 * np.log(0.9) + 0.1)
