"""Long inputs read in pieces (tasu.segment): where the cuts fall, and that Speech2Text's joined
answer is the pieces' answers read one by one."""
import numpy as np
import pytest
from test_inference import UNITS, s2t

from tasu.segment import segment_bounds, splits_answers

WB = UNITS.index("<wb>")


def rows_of(best: list[int], v: int = len(UNITS)) -> np.ndarray:
    """One-hot-ish PSD rows whose best units are ``best``."""
    m = np.full((len(best), v), 0.01, dtype=np.float32)
    m[np.arange(len(best)), best] = 0.9
    return m


def test_short_inputs_and_a_zero_limit_stay_whole():
    m = rows_of([1, WB, 2] * 10)
    assert segment_bounds(m, WB, 0) == [(0, 30)]
    assert segment_bounds(m, WB, 30) == [(0, 30)]
    assert segment_bounds(rows_of([]), WB, 5) == [(0, 0)]


def test_cuts_fall_on_the_word_boundary_nearest_the_even_point_and_drop_it():
    # 20 rows: words of 3 units parted by <wb> at rows 3, 7, 11, 15 (and a 4-unit last word)
    best = [1, 2, 3, WB, 1, 2, 3, WB, 1, 2, 3, WB, 1, 2, 3, WB, 1, 2, 3, 4]
    assert segment_bounds(rows_of(best), WB, 12) == [(0, 11), (12, 20)]   # even point 10: <wb> at 11
    # limit 8: three pieces; the first even point is 6.67, the boundary in reach nearest it is 7
    got = segment_bounds(rows_of(best), WB, 8)
    assert got == [(0, 7), (8, 15), (16, 20)]
    assert all(b - a <= 8 for a, b in got) and best[7] == best[15] == WB
    # every row but the cut boundaries is in exactly one piece
    kept = [i for a, b in got for i in range(a, b)]
    assert kept == [i for i in range(20) if i not in (7, 15)]


def test_no_boundary_in_reach_cuts_at_the_even_point():
    # 25 rows, limit 10: three pieces, the first cut at 8.33; then 17 rows left, two pieces, cut at 16.5
    assert segment_bounds(rows_of([1] * 25), WB, 10) == [(0, 8), (8, 16), (16, 25)]
    assert segment_bounds(rows_of([1] * 25), None, 10) == [(0, 8), (8, 16), (16, 25)]


@pytest.mark.parametrize("n,limit", [(50, 7), (203, 40), (1000, 150), (41, 40)])
def test_pieces_are_within_the_limit_in_order_and_lose_only_cut_boundaries(n, limit):
    rng = np.random.default_rng(n)
    best = rng.choice([1, 2, 3, WB], size=n, p=[0.3, 0.3, 0.2, 0.2]).tolist()
    got = segment_bounds(rows_of(best), WB, limit)
    assert len(got) >= 2 and all(0 < b - a <= limit for a, b in got)
    assert got[0][0] == 0 and got[-1][1] == n
    for (_, b), (a2, _) in zip(got, got[1:]):
        assert a2 == b or (a2 == b + 1 and best[b] == WB)   # contiguous, or the dropped boundary


def test_only_transcription_tasks_are_cut():
    class T:
        def __init__(self, metric):
            self.metric = metric
    assert splits_answers(None) and splits_answers(T("wer")) and splits_answers(T("cer"))
    assert not splits_answers(T("bleu")) and not splits_answers(T("accuracy"))


def test_a_long_input_is_answered_as_its_pieces_joined():
    best = ([1, 2, 3, WB] * 9)[:-1]                       # 35 rows, <wb> at 3, 7, ..., 31
    long = rows_of(best)
    whole = s2t()
    cut = s2t(segment_rows=16)
    bounds = segment_bounds(long, WB, 16)
    assert len(bounds) == 3
    short = rows_of([1, 2, 3])
    got = cut.decode_posteriors([("long", long), ("short", short), ("empty", long[:0])])
    alone = whole.decode_posteriors([(str(j), long[a:b]) for j, (a, b) in enumerate(bounds)] + [("short", short)])
    assert got["long"].text == " ".join(alone[str(j)].text for j in range(3) if alone[str(j)].text)
    assert got["long"].n_rows == 35 and got["short"].text == alone["short"].text and got["empty"].text == ""
    assert set(got) == {"long", "short", "empty"}
    assert whole.decode_posteriors([("long", long)])["long"].n_rows == 35
