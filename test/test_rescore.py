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
