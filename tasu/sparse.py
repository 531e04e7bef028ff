"""Sparse posterior rows: a few weighted units over a uniform floor on the active units.

Simulated posteriors are a smoothed one-hot plus a couple of competitors, so each row is
``x = f * a + sum_j w_j e_{id_j}`` (``a``: indicator of the active units). With 25k
BPE units a dense ``[L, V]`` matrix per sentence is almost all floor; :class:`SparseRows`
keeps ``(ids, weights, floor)`` and :func:`sparse_layernorm_linear` computes
``Linear(LayerNorm(x))`` exactly from them in ``O(k H)`` per row instead of ``O(V H)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class SparseRows:
    """``n`` rows over ``vocab_size`` units. ``ids`` are distinct per row; ``-1`` pads."""

    ids: torch.Tensor        # [n, k] long
    weights: torch.Tensor    # [n, k] float, 0 where ids == -1
    floor: torch.Tensor      # [n] mass on every active unit
    active: torch.Tensor     # [V] bool
    vocab_size: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.ids.shape[0], self.vocab_size)

    def to(self, device) -> "SparseRows":
        return SparseRows(self.ids.to(device), self.weights.to(device), self.floor.to(device),
                          self.active.to(device), self.vocab_size)

    @classmethod
    def cat(cls, parts: "list[SparseRows]") -> "SparseRows":
        """Rows of several sentences stacked (same inventory), e.g. one projector call per batch."""
        if not parts:
            raise ValueError("no sparse rows to concatenate")
        V, k = parts[0].vocab_size, max(p.ids.shape[1] for p in parts)
        if any(p.vocab_size != V for p in parts):
            raise ValueError("sparse rows over different inventories")
        pad = lambda t, v: torch.nn.functional.pad(t, (0, k - t.shape[1]), value=v)  # noqa: E731
        return cls(torch.cat([pad(p.ids, -1) for p in parts]), torch.cat([pad(p.weights, 0.0) for p in parts]),
                   torch.cat([p.floor for p in parts]), parts[0].active, V)

    def dense(self) -> torch.Tensor:
        """The ``[n, V]`` matrix these rows stand for."""
        n = self.ids.shape[0]
        x = self.floor[:, None] * self.active.to(self.floor.dtype)[None, :].expand(n, -1)
        ok = self.ids >= 0
        return x.scatter_add(1, self.ids.clamp(min=0), torch.where(ok, self.weights, 0.0))

    @classmethod
    def from_numpy(cls, ids: np.ndarray, weights: np.ndarray, floor: np.ndarray, active: np.ndarray,
                   vocab_size: int) -> "SparseRows":
        """Merge repeated ids within a row (weights add), normalise rows to sum 1."""
        ids = np.array(ids, dtype=np.int64)
        w = np.array(weights, dtype=np.float64)
        for j in range(1, ids.shape[1]):          # k is small: merge column j into an equal earlier one
            for i in range(j):
                same = (ids[:, j] == ids[:, i]) & (ids[:, j] >= 0)
                w[same, i] += w[same, j]
                w[same, j] = 0.0
                ids[same, j] = -1
        w[ids < 0] = 0.0
        mask = np.zeros(vocab_size, dtype=bool)
        mask[np.asarray(active, dtype=np.int64)] = True
        total = floor * mask.sum() + w.sum(1)
        total[total <= 0] = 1.0
        return cls(torch.from_numpy(ids), torch.from_numpy((w / total[:, None]).astype(np.float32)),
                   torch.from_numpy((floor / total).astype(np.float32)), torch.from_numpy(mask), vocab_size)


def sparse_layernorm_linear(x: SparseRows, norm: torch.nn.LayerNorm, linear: torch.nn.Linear) -> torch.Tensor:
    """``linear(norm(x.dense()))`` without building the dense rows (differentiable)."""
    V = x.vocab_size
    if norm.normalized_shape != (V,) or linear.in_features != V:
        raise ValueError(f"sparse rows over {V} units, but the layers expect {norm.normalized_shape} / {linear.in_features}")
    W = linear.weight                                     # [H, V]
    gamma = norm.weight if norm.weight is not None else W.new_ones(V)
    beta = norm.bias if norm.bias is not None else W.new_zeros(V)
    act = x.active.to(W.dtype)
    f = x.floor.to(W.dtype)                               # [n]
    ok = x.ids >= 0
    ids = x.ids.clamp(min=0)
    w = torch.where(ok, x.weights.to(W.dtype), 0.0)       # [n, k]
    a_id = act[ids]                                       # are the listed units active?
    n_act = act.sum()
    mean = (f * n_act + w.sum(1)) / V
    sq = f ** 2 * n_act + ((f[:, None] * a_id + w) ** 2 - (f[:, None] * a_id) ** 2).sum(1)
    inv_std = torch.rsqrt(sq / V - mean ** 2 + norm.eps)
    # the only O(V H) work, once per call: W (gamma * a), W gamma, W beta in one pass over W
    g_act, g_all, w_beta = (W @ torch.stack([gamma * act, gamma, beta], 1)).unbind(1)
    cols = torch.nn.functional.embedding(ids, W.t()) * (w * gamma[ids])[..., None]  # [n, k, H]
    wx = f[:, None] * g_act + cols.sum(1)                 # W (gamma * x)
    out = (wx - mean[:, None] * g_all) * inv_std[:, None] + w_beta
    return out + linear.bias if linear.bias is not None else out
