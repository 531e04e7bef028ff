"""Posterior compression (PSD): merge runs of one non-blank argmax, drop blank frames.

Runs are found on the frame argmax of the full sequence, so a phone repeated across a
blank (``t <blank> t``) stays two rows, as CTC decoding would keep it. A run's row is the
mean of its frames' probabilities. Frames whose blank probability exceeds ``threshold``
are dropped (before merging), and runs whose argmax is blank are dropped too.
"""
from __future__ import annotations

import numpy as np


def psd_compress(log_probs: np.ndarray, blank_id: int, threshold: float = 0.5) -> np.ndarray:
    """``[T, V]`` log-posteriors -> ``[T', V]`` probabilities, T' <= T (may be 0)."""
    if log_probs.ndim != 2:
        raise ValueError(f"expected [T, V] posteriors, got shape {log_probs.shape}")
    probs = np.exp(log_probs.astype(np.float64))
    probs /= probs.sum(axis=1, keepdims=True)
    if probs.shape[0] == 0:
        return probs.astype(np.float32)
    arg = probs.argmax(axis=1)
    # a new run starts where the argmax changes
    starts = np.flatnonzero(np.r_[True, arg[1:] != arg[:-1]])
    run_id = np.cumsum(np.r_[True, arg[1:] != arg[:-1]]) - 1
    keep = (probs[:, blank_id] <= threshold) & (arg != blank_id)
    if not keep.any():
        return np.zeros((0, probs.shape[1]), dtype=np.float32)
    sums = np.zeros((len(starts), probs.shape[1]))
    np.add.at(sums, run_id[keep], probs[keep])
    counts = np.bincount(run_id[keep], minlength=len(starts))
    rows = counts > 0
    return (sums[rows] / counts[rows, None]).astype(np.float32)
