"""Long inputs read in pieces: PSD rows cut at the encoder's word boundaries.

The LLM learns to read sentences of the training text's lengths (open_en: at most 35 words,
about 190 PSD rows); on a prompt of 60 words it drifts: it skips a clause, repeats one or ends
early. A transcript is the concatenation of its pieces' transcripts, so an input longer than
``max_rows`` rows is cut into pieces of at most that many, each at a row the encoder reads as a
word boundary (its best unit is ``<wb>``; that row is dropped, as it parts two words), the cuts
as evenly spaced as the boundaries allow. An input with no boundary in reach is cut at the even
point. Tasks whose answers are not transcripts are never cut (:func:`splits_answers`).
"""
from __future__ import annotations

import math

import numpy as np


def segment_bounds(rows: np.ndarray, wb_id: int | None, max_rows: int) -> list[tuple[int, int]]:
    """``[T', V]`` PSD rows -> ``[(start, end), ...]``: pieces of at most ``max_rows`` rows, in order,
    covering every row but the word-boundary rows cut at (``max_rows`` <= 0 or T' <= ``max_rows``:
    one piece, the whole input)."""
    T = int(rows.shape[0])
    if max_rows <= 0 or T <= max_rows:
        return [(0, T)]
    wb = np.flatnonzero(rows.argmax(1) == wb_id) if wb_id is not None else np.zeros(0, dtype=np.int64)
    out: list[tuple[int, int]] = []
    s = 0
    while T - s > max_rows:
        target = s + (T - s) / math.ceil((T - s) / max_rows)  # the even cut of what is left
        reach = wb[(wb > s) & (wb <= s + max_rows)]  # cutting at row c leaves [s, c) and c + 1 on
        if len(reach):
            c = int(reach[np.argmin(np.abs(reach - target))])
            out.append((s, c))
            s = c + 1
        else:
            c = max(s + 1, round(target))
            out.append((s, c))
            s = c
    if s < T:
        out.append((s, T))
    return out


def splits_answers(task) -> bool:
    """Whether a task's answers are transcripts, which pieces may be read apart and joined: the
    model's own prompt (no task) or a task scored by WER or CER."""
    return task is None or getattr(task, "metric", None) in ("wer", "cer")
