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


def ctc_greedy(log_probs: np.ndarray, blank_id: int) -> list[int]:
    """Best-path CTC decoding: frame argmax, repeats merged, blanks removed."""
    arg = np.asarray(log_probs).argmax(axis=1)
    keep = np.r_[True, arg[1:] != arg[:-1]] & (arg != blank_id) if len(arg) else np.zeros(0, bool)
    return [int(a) for a in arg[keep]]


def psd_compress_batch(log_probs, lengths, blank_id: int, threshold: float = 0.5) -> list[np.ndarray]:
    """Batched PSD: ``[B, T, V]`` log-posteriors (numpy or torch) + valid lengths -> B arrays.

    Same rule and result as :func:`psd_compress` on each ``log_probs[b, :lengths[b]]``,
    computed for the whole batch at once (runs of all utterances are numbered globally and
    averaged with one ``index_add``).
    """
    import torch

    x = torch.as_tensor(log_probs).to(torch.float64)
    if x.ndim != 3:
        raise ValueError(f"expected [B, T, V] posteriors, got shape {tuple(x.shape)}")
    B, T, V = x.shape
    n = torch.as_tensor(lengths, dtype=torch.long).reshape(-1)
    if n.numel() != B or (n < 0).any() or (n > T).any():
        raise ValueError(f"lengths {n.tolist()} do not fit a batch of {B} x {T} frames")
    probs = x.exp()
    probs = probs / probs.sum(-1, keepdim=True)
    arg = probs.argmax(-1)                                            # [B, T]
    valid = torch.arange(T)[None, :] < n[:, None]
    new = torch.ones(B, T, dtype=torch.bool)
    new[:, 1:] = arg[:, 1:] != arg[:, :-1]
    run = new.long().cumsum(1) - 1                                    # run index within its utterance
    runs_per_utt = torch.where(valid, run + 1, 0).amax(1) if T else torch.zeros(B, dtype=torch.long)
    offset = torch.cumsum(runs_per_utt, 0) - runs_per_utt
    keep = valid & (probs[..., blank_id] <= threshold) & (arg != blank_id)
    gid = (run + offset[:, None])[keep]
    R = int(runs_per_utt.sum())
    sums = torch.zeros(R, V, dtype=torch.float64).index_add_(0, gid, probs[keep])
    counts = torch.zeros(R, dtype=torch.long).index_add_(0, gid, torch.ones_like(gid))
    rows = (sums / counts.clamp(min=1)[:, None]).to(torch.float32).numpy()
    out = []
    for b in range(B):
        lo, hi = int(offset[b]), int(offset[b] + runs_per_utt[b])
        out.append(rows[lo:hi][counts[lo:hi].numpy() > 0])
    return out


def psd_compress_loop(log_probs: np.ndarray, blank_id: int, threshold: float = 0.5) -> np.ndarray:
    """Reference PSD, one frame at a time in Python (for tests and benchmarks only)."""
    probs = np.exp(np.asarray(log_probs, dtype=np.float64))
    rows: list[np.ndarray] = []
    prev, acc, cnt = None, None, 0
    for t in range(probs.shape[0]):
        p = probs[t] / probs[t].sum()
        a = int(p.argmax())
        if a != prev:                      # a new run starts: close the previous one
            if cnt:
                rows.append(acc / cnt)
            prev, acc, cnt = a, np.zeros_like(p), 0
        if a != blank_id and p[blank_id] <= threshold:
            acc += p
            cnt += 1
    if cnt:
        rows.append(acc / cnt)
    V = probs.shape[1] if probs.ndim == 2 else 0
    return np.array(rows, dtype=np.float32).reshape(len(rows), V)
