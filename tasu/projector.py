"""Projectors: encoder posterior rows -> LLM input embeddings."""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

from tasu.sparse import SparseRows, UnitLinear, sparse_layernorm_linear


class LinearSiLUProjector(nn.Module):
    """LayerNorm -> Linear -> SiLU -> Linear, applied to each posterior row.

    Takes dense ``[L, V]`` rows or :class:`~tasu.sparse.SparseRows` (same result; the first
    layer is then computed from the few listed units, see :mod:`tasu.sparse`). The first
    Linear is a :class:`~tasu.sparse.UnitLinear` (unit-major weight) for that sparse path.
    """

    accepts_sparse = True

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 1024) -> None:
        super().__init__()
        self.in_dim, self.out_dim = in_dim, out_dim
        self.net = nn.Sequential(nn.LayerNorm(in_dim), UnitLinear(in_dim, hidden), nn.SiLU(),
                                 nn.Linear(hidden, out_dim))

    def forward(self, x: torch.Tensor | SparseRows) -> torch.Tensor:
        if isinstance(x, SparseRows):
            return self.net[3](self.net[2](sparse_layernorm_linear(x, self.net[0], self.net[1])))
        return self.net(x)


def build_projector(kind: str, in_dim: int, out_dim: int, **kwargs) -> nn.Module:
    if kind == "linear_silu":
        return LinearSiLUProjector(in_dim, out_dim, **kwargs)
    raise ValueError(f"unknown projector {kind!r}; known: linear_silu")


def spelling_targets(units: Sequence[str], spellings: Mapping[str, Mapping[str, int]],
                     tokenizer, embedding: torch.Tensor, word_boundary: str | None = "<wb>") -> tuple[torch.Tensor, torch.Tensor]:
    """Target embedding per unit: the LLM embedding of the letters that most often spell it.

    ``<wb>`` targets the space token. Returns ``(targets [V, D], has_target [V] bool)``;
    units never seen in the lexicon have no target.
    """
    V, D = len(units), embedding.shape[1]
    targets = torch.zeros(V, D)
    has = torch.zeros(V, dtype=torch.bool)
    for i, u in enumerate(units):
        if u == word_boundary:
            ids = tokenizer(" ", add_special_tokens=False)["input_ids"]
        elif u in spellings and spellings[u]:
            best = max(spellings[u].items(), key=lambda kv: kv[1])[0]
            ids = tokenizer(best, add_special_tokens=False)["input_ids"]
        else:
            continue
        targets[i] = embedding[ids].float().mean(0)
        has[i] = True
    return targets, has


def fit_projector(projector: nn.Module, targets: torch.Tensor, has_target: torch.Tensor,
                  steps: int = 400, lr: float = 3e-3, max_smooth: float = 0.5, seed: int = 0) -> float:
    """Regress the projector so a (smoothed) one-hot of unit ``u`` maps to ``targets[u]``.

    A warm start: the LLM first sees speech as a letter-like spelling of what was said.
    Returns the final mean squared error relative to the targets' mean square.
    """
    g = torch.Generator().manual_seed(seed)
    ids = torch.nonzero(has_target).squeeze(1)
    V = targets.shape[0]
    opt = torch.optim.Adam(projector.parameters(), lr=lr)
    scale = targets[ids].pow(2).mean()
    rel = float("nan")
    for _ in range(steps):
        u = ids[torch.randint(len(ids), (256,), generator=g)]
        other = ids[torch.randint(len(ids), (256,), generator=g)]
        eps = torch.rand(256, 1, generator=g) * max_smooth
        x = torch.zeros(256, V)
        x[torch.arange(256), u] = 1.0
        x = (1 - eps) * x
        x[torch.arange(256), other] += eps.squeeze(1)
        loss = (projector(x) - targets[u]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        rel = float(loss.detach() / scale)
    return rel
