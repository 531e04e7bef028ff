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

    def to(self, device) -> SparseRows:
        return SparseRows(self.ids.to(device), self.weights.to(device), self.floor.to(device),
                          self.active.to(device), self.vocab_size)

    @classmethod
    def cat(cls, parts: list[SparseRows]) -> SparseRows:
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
                   vocab_size: int) -> SparseRows:
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


class UnitLinear(torch.nn.Module):
    """``nn.Linear`` over unit posteriors, its weight stored unit-major: ``table [V, H]``.

    Row ``u`` of ``table`` is what unit ``u`` adds to the output, so the sparse path gathers
    a few contiguous rows per posterior row (a column gather from ``nn.Linear``'s ``[H, V]``
    weight reads ``H`` scattered floats per unit and costs more than the rest of the layer).
    Same initialisation and results as ``nn.Linear(V, H)``; :attr:`weight` is the ``[H, V]``
    view. State dicts written with an ``nn.Linear`` here (``<prefix>weight``) still load.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        ref = torch.nn.Linear(in_features, out_features, bias=bias)  # nn.Linear's init, RNG draws included
        self.table = torch.nn.Parameter(ref.weight.detach().t().contiguous())
        self.bias = torch.nn.Parameter(ref.bias.detach().clone()) if bias else None

    @property
    def weight(self) -> torch.Tensor:
        """The ``[H, V]`` view ``nn.Linear`` would hold."""
        return self.table.t()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(x, self.table.t(), self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        old = state_dict.pop(prefix + "weight", None)   # an nn.Linear's [H, V] weight
        if old is not None and prefix + "table" not in state_dict:
            if tuple(old.shape) != (self.out_features, self.in_features):
                raise ValueError(f"{prefix}weight has shape {tuple(old.shape)}, expected "
                                 f"{(self.out_features, self.in_features)} (nn.Linear layout)")
            state_dict[prefix + "table"] = old.t()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def _key(module: str, leaf: str) -> str:
    """State-dict key of ``leaf`` in the submodule named ``module`` ("" is the root)."""
    return f"{module}.{leaf}" if module else leaf


def upgrade_state_dict(state: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``state`` with each :class:`UnitLinear` of ``model`` in its ``table`` layout.

    Weights saved when these layers were ``nn.Linear`` hold ``<prefix>weight [H, V]``; this
    renames and transposes them, for callers that compare keys and shapes before
    ``load_state_dict`` (which converts by itself).
    """
    out = dict(state)
    for name, mod in model.named_modules():
        if isinstance(mod, UnitLinear):
            new, old = _key(name, "table"), _key(name, "weight")
            if new not in out and old in out and out[old].ndim == 2:
                out[new] = out.pop(old).t()
    return out


def upgrade_optimizer_state(opt: torch.optim.Optimizer, state: dict[str, torch.Tensor],
                            model: torch.nn.Module) -> int:
    """Transpose the optimizer state (Adam moments) of each :class:`UnitLinear` table whose
    weights ``state`` holds in the old ``nn.Linear`` layout (``<prefix>weight``): a checkpoint
    written before the change. Returns how many tensors were transposed."""
    old = {id(m.table) for name, m in model.named_modules()
           if isinstance(m, UnitLinear) and _key(name, "weight") in state and _key(name, "table") not in state}
    n = 0
    for group in opt.param_groups:
        for p in group["params"]:
            if id(p) not in old:
                continue
            for k, v in opt.state.get(p, {}).items():
                if torch.is_tensor(v) and v.ndim == 2 and v.shape == p.shape[::-1]:
                    opt.state[p][k] = v.t().contiguous()
                    n += 1
    return n


def rows_times_table(S: torch.Tensor, T: torch.Tensor, block: int = 1024) -> torch.Tensor:
    """``S @ T`` for a few rows ``S [m, V]`` and a tall ``T [V, H]``, accumulated over row blocks
    of ``T``. The product is memory-bound (one read of ``T``); on the CPU, one GEMM with
    ``m <= 4`` reads ``T`` at about half the bandwidth that 1 024-row blocks get
    (``python -m tasu.bin.benchmark_ops``: 25 055 x 1 024, 11-12 ms against 8.5 ms)."""
    if T.device.type != "cpu" or T.shape[0] <= 2 * block:
        return S @ T
    out = S.new_zeros(S.shape[0], T.shape[1])
    for i in range(0, T.shape[0], block):
        out.addmm_(S[:, i:i + block], T[i:i + block])
    return out


def sparse_layernorm_linear(x: SparseRows, norm: torch.nn.LayerNorm,
                            linear: UnitLinear | torch.nn.Linear) -> torch.Tensor:
    """``linear(norm(x.dense()))`` without building the dense rows (differentiable).

    Forward: one pass over the weight ``T [V, H]`` (``gamma^T T``, ``beta^T T``) plus ``O(k H)``
    per row. Backward (:class:`_SparseLayerNormLinear`): the weight gradient is a rank-3 outer
    product plus the listed rows, written in one ``[V, H]`` pass; the LayerNorm gradients
    take one more read of ``T``. Computed in float32 (autocast off). With a plain
    ``nn.Linear`` the weight is read through its transpose (slower).
    """
    V = x.vocab_size
    if norm.normalized_shape != (V,) or linear.in_features != V:
        raise ValueError(f"sparse rows over {V} units, but the layers expect "
                         f"{norm.normalized_shape} / {linear.in_features}")
    T = linear.table if isinstance(linear, UnitLinear) else linear.weight.t()   # [V, H]
    gamma = norm.weight if norm.weight is not None else T.new_ones(V)
    beta = norm.bias if norm.bias is not None else T.new_zeros(V)
    bias = linear.bias if linear.bias is not None else T.new_zeros(T.shape[1])
    ok = x.ids >= 0
    w = torch.where(ok, x.weights, 0.0)
    return _SparseLayerNormLinear.apply(T, gamma, beta, bias, x.ids.clamp(min=0), w, x.floor, x.active, norm.eps)


class _SparseLayerNormLinear(torch.autograd.Function):
    """``y_r = T^T LN(x_r) + b`` for ``x_r = f_r a + sum_j w_rj e_{id_rj}`` (see :func:`sparse_layernorm_linear`).

    With ``s_r = 1 / std(x_r)`` and ``mu_r = mean(x_r)``:
    ``y_r = s_r (f_r T^T(gamma a) + sum_j w_rj gamma_id T[id]) - mu_r s_r T^T gamma + T^T beta + b``.
    With ``G = dL/dy`` and ``c = sum_r f_r s_r G_r``, ``m = sum_r mu_r s_r G_r``, ``g = sum_r G_r``:
    ``dT = (gamma a) c^T - gamma m^T + beta g^T + sum_{r,j} w_rj gamma_id s_r e_id G_r^T``;
    ``dgamma_v = a_v T[v].c - T[v].m + sum_{r,j: id=v} w_rj s_r T[v].G_r``; ``dbeta = T g``;
    ``db = g``. ``x`` is data: it gets no gradient.
    """

    @staticmethod
    def forward(ctx, T, gamma, beta, bias, ids, w, f, active, eps: float):
        with torch.autocast(T.device.type, enabled=False):
            T, gamma, beta, bias = T.float(), gamma.float(), beta.float(), bias.float()
            V = T.shape[0]
            act = active.to(T.dtype)
            w, f = w.to(T.dtype), f.to(T.dtype)
            a_id = act[ids]                                   # are the listed units active?
            n_act = act.sum()
            mean = (f * n_act + w.sum(1)) / V
            sq = f ** 2 * n_act + ((f[:, None] * a_id + w) ** 2 - (f[:, None] * a_id) ** 2).sum(1)
            inv_std = torch.rsqrt(sq / V - mean ** 2 + eps)
            g_all, w_beta = rows_times_table(torch.stack([gamma, beta]), T).unbind(0)  # one pass over T
            inactive = torch.nonzero(~active).squeeze(1)
            if inactive.numel() <= 64:                        # (gamma * a)^T T from gamma^T T
                g_act = g_all - (gamma[inactive, None] * T[inactive]).sum(0)
            else:
                g_act = (gamma * act) @ T
            gw = w * gamma[ids]
            wx = torch.addr(torch.nn.functional.embedding_bag(ids, T, mode="sum", per_sample_weights=gw),
                            f, g_act)                         # T^T (gamma * x)
            out = torch.addr(torch.addcmul(w_beta + bias, wx, inv_std[:, None]), mean * inv_std, g_all, alpha=-1)
        ctx.save_for_backward(T, gamma, beta, ids, w, f, act, mean, inv_std)
        return out

    @staticmethod
    def backward(ctx, G):
        T, gamma, beta, ids, w, f, act, mean, inv_std = ctx.saved_tensors
        need_T, need_gamma, need_beta, need_bias = ctx.needs_input_grad[:4]
        dT = dgamma = dbeta = db = None
        with torch.autocast(T.device.type, enabled=False):
            G = G.float()
            H = T.shape[1]
            cmg = torch.stack([f * inv_std, mean * inv_std, torch.ones_like(f)]) @ G   # rows c, m, g: [3, H]
            Gs = G * inv_std[:, None]                                                  # s_r G_r
            flat = ids.reshape(-1)
            if need_T:   # one [V, H] write: the rank-3 part, then the listed rows added in place
                dT = torch.stack([gamma * act, -gamma, beta], 1) @ cmg
                dT.index_add_(0, flat, ((w * gamma[ids])[..., None] * Gs[:, None, :]).reshape(-1, H))
            if need_gamma or need_beta:  # one read of T
                Tc, Tm, Tg = (T @ cmg.t()).unbind(1)
                if need_gamma:
                    per = (torch.nn.functional.embedding(ids, T) * Gs[:, None, :]).sum(-1) * w   # [n, k]
                    dgamma = (act * Tc - Tm).index_add_(0, flat, per.reshape(-1))
                if need_beta:
                    dbeta = Tg
            if need_bias:
                db = cmg[2]
        return dT, dgamma, dbeta, db, None, None, None, None, None
