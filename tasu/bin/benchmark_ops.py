#!/usr/bin/env python3
"""Benchmark (not a test): sparse simulated posteriors and batched PSD against their dense/loop forms.

Prints, for a large unit inventory (default V = 25 055, SenseVoice's BPE size):
- simulated posteriors -> projector first layer (LayerNorm + Linear), dense ``[B, L, V]``
  rows against :class:`tasu.sparse.SparseRows`, forward and forward + backward, with the
  largest difference of the outputs;
- PSD of ``--n_utts`` random CTC-like utterances: per-frame Python loops (over torch tensors
  as the reference implementation does, and over numpy rows), per-utterance numpy
  (:func:`tasu.psd.psd_compress`) and batched (:func:`tasu.psd.psd_compress_batch`), with the
  largest difference of their outputs.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def _time(fn, repeat: int) -> tuple[float, object]:
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeat):
        out = fn()
    return (time.perf_counter() - t0) / repeat, out


def bench_sparse(V: int, B: int, L: int, hidden: int, repeat: int) -> None:
    from tasu.config import SimulationConfig
    from tasu.projector import LinearSiLUProjector
    from tasu.simulate import PosteriorSimulator
    from tasu.sparse import SparseRows, sparse_layernorm_linear

    torch.manual_seed(0)
    units = [f"▁p{i}" for i in range(V - 1)] + ["<blank>"]
    sim = PosteriorSimulator(V, range(V - 1), units, None, SimulationConfig())
    proj = LinearSiLUProjector(V, 896, hidden=hidden)
    norm, lin = proj.net[0], proj.net[1]
    rng = np.random.default_rng(0)
    sents = [rng.integers(0, V - 1, size=L) for _ in range(B)]

    def dense_rows():
        r = np.random.default_rng(1)
        return torch.from_numpy(np.stack([sim.rows(s, r) for s in sents]))   # [B, L, V]

    def sparse_rows():
        r = np.random.default_rng(1)
        return [sim.sparse(s, r) for s in sents]

    def dense_fwd():
        return lin(norm(dense_rows()))

    def sparse_fwd():  # one call per batch, as the trainer does
        return sparse_layernorm_linear(SparseRows.cat(sparse_rows()), norm, lin).view(B, L, -1)

    def backward(f):
        def run():
            proj.zero_grad()
            y = f()
            y.square().mean().backward()
            return y
        return run

    print(f"simulated rows -> LayerNorm + Linear({V}, {hidden}); B={B}, L={L}, {torch.get_num_threads()} threads")
    with torch.no_grad():
        td, yd = _time(dense_fwd, repeat)
        ts, ys = _time(sparse_fwd, repeat)
    diff = float((yd - ys).abs().max())
    print(f"  forward:            dense {td * 1e3:8.1f} ms  sparse {ts * 1e3:7.1f} ms  speed-up {td / ts:6.1f}x  "
          f"max |diff| {diff:.2e}")
    tdb, _ = _time(backward(dense_fwd), repeat)
    tsb, _ = _time(backward(sparse_fwd), repeat)
    print(f"  forward + backward: dense {tdb * 1e3:8.1f} ms  sparse {tsb * 1e3:7.1f} ms  speed-up {tdb / tsb:6.1f}x")
    print(f"  dense rows alone: {B * L * V * 4 / 2 ** 20:.0f} MiB per batch")


def _psd_frame_loop_torch(log_probs: torch.Tensor, blank: int, threshold: float = 0.5) -> np.ndarray:
    """The rule of :func:`tasu.psd.psd_compress`, written as the reference implementation (ps-slm's
    ``psd``) writes PSD: probabilities and argmax of the utterance's tensor, then a Python loop over
    frames that compares argmax ids and averages each run's kept frames."""
    probs = log_probs.double().exp()
    probs = probs / probs.sum(-1, keepdim=True)
    ids = probs.argmax(-1)
    rows, start, T = [], 0, probs.shape[0]
    for end in range(1, T + 1):
        if end == T or ids[end] != ids[start]:
            seg = probs[start:end]
            keep = (seg[:, blank] <= threshold) & (ids[start] != blank)
            if keep.any():
                rows.append(seg[keep].mean(0))
            start = end
    return (torch.stack(rows) if rows else probs.new_zeros(0, probs.shape[1])).float().numpy()


def bench_psd(n_utts: int, V: int, batch: int) -> None:
    from tasu.psd import psd_compress, psd_compress_batch, psd_compress_loop

    rng = np.random.default_rng(0)
    lengths = rng.integers(50, 400, size=n_utts)
    blank = V - 1
    utts = []
    for n in lengths:  # peaky CTC-like frames: mostly blank, short runs of one unit
        x = rng.normal(0, 1.0, size=(n, V)).astype(np.float32)
        lab = np.where(rng.random(n) < 0.6, blank, rng.integers(0, V - 1, size=n))
        lab = np.repeat(lab[::2], 2)[:n]
        x[np.arange(n), lab] += 8.0
        utts.append(x - np.log(np.exp(x).sum(1, keepdims=True)))
    frames = int(lengths.sum())
    batches = []  # padded [b, T, V] batches, as a batched encoder hands them over (not timed)
    for i in range(0, n_utts, batch):
        chunk = utts[i:i + batch]
        # padding filled (an encoder writes its whole output): untouched zero pages would
        # page-fault on the first read and bill the first timed pass for the benchmark's allocation
        x = np.full((len(chunk), max(len(u) for u in chunk), V), -1e4, dtype=np.float32)
        for j, u in enumerate(chunk):
            x[j, :len(u)] = u
        batches.append((torch.from_numpy(x), [len(u) for u in chunk]))
    print(f"PSD: {n_utts} random utterances, {frames} frames, V={V}")
    # one untimed pass of each over the first batch: thread pools, allocator and page faults warm
    _psd_frame_loop_torch(torch.from_numpy(utts[0]), blank), psd_compress_loop(utts[0], blank)
    psd_compress(utts[0], blank), psd_compress_batch(*batches[0], blank)
    # the methods take turns batch by batch, so a slow spell of this shared VM (timings here
    # drift by 1.5x over seconds) falls on all of them instead of on whichever ran then
    t_torch = t_loop = t_utt = t_first = t_med = t_best = 0.0
    ref, loop, per, bat = [], [], [], []
    for i, (x, n) in enumerate(batches):
        chunk = utts[i * batch:(i + 1) * batch]
        t0 = time.perf_counter()
        ref += [_psd_frame_loop_torch(torch.from_numpy(u), blank) for u in chunk]
        t_torch += time.perf_counter() - t0
        t0 = time.perf_counter()
        loop += [psd_compress_loop(u, blank) for u in chunk]
        t_loop += time.perf_counter() - t0
        t0 = time.perf_counter()
        per += [psd_compress(u, blank) for u in chunk]
        t_utt += time.perf_counter() - t0
        passes = []
        for _ in range(5):
            t0 = time.perf_counter()
            out = psd_compress_batch(x, n, blank)
            passes.append(time.perf_counter() - t0)
        bat += out
        t_first, t_med, t_best = t_first + passes[0], t_med + float(np.median(passes)), t_best + min(passes)
    same = all(a.shape == b.shape == c.shape == d.shape for a, b, c, d in zip(ref, loop, per, bat))
    diff = max(float(np.abs(a - b).max(initial=0)) for a, b in zip(ref, bat))
    print(f"  per-frame loop, torch (reference style)  {t_torch:7.2f} s")
    print(f"  per-frame loop, numpy rows               {t_loop:7.2f} s")
    print(f"  per-utterance numpy (psd_compress)       {t_utt:7.2f} s")
    print(f"  batched ({batch:3d} per batch), 5 passes a batch: first {t_first:.3f} s, median {t_med:.3f} s, "
          f"best {t_best:.3f} s")
    print(f"    speed-up (first / median / best): {t_torch / t_first:5.1f}x / {t_torch / t_med:5.1f}x / "
          f"{t_torch / t_best:5.1f}x the torch loop, {t_loop / t_first:4.1f}x / {t_loop / t_med:4.1f}x / "
          f"{t_loop / t_best:4.1f}x the numpy loop")
    print(f"  same rows kept everywhere: {same}; max |batched - torch loop| {diff:.1e}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vocab", type=int, default=25055, help="units for the projector benchmark")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--length", type=int, default=60, help="rows per sentence")
    ap.add_argument("--hidden", type=int, default=1024, help="projector hidden size")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--n_utts", type=int, default=1000, help="utterances for the PSD benchmark")
    ap.add_argument("--psd_vocab", type=int, default=191, help="units for the PSD benchmark (hama: 191)")
    ap.add_argument("--psd_batch", type=int, default=100)
    args = ap.parse_args(argv)
    print(f"torch {torch.__version__}")
    bench_sparse(args.vocab, args.batch, args.length, args.hidden, args.repeat)
    bench_psd(args.n_utts, args.psd_vocab, args.psd_batch)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
