"""Projectors: encoder posterior rows -> LLM input embeddings.

The family (:data:`PROJECTORS`, ``projector.kind`` in the config): per-row projectors map each
row alone (``linear_silu``, ``cross_attention``, ``lego``); sequence projectors read an
utterance's rows in order and change their number (``stack``, ``conv1d``, ``qformer``).
:func:`project_batch` is the one batch interface; :func:`fit_projector` the spelling warm start.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from tasu.sparse import SparseRows, UnitLinear, sparse_layernorm_linear

if TYPE_CHECKING:
    from tasu.config import ProjectorConfig


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


# -- the projector family ---------------------------------------------------------------
# Per-row projectors map ``[N, V] -> [N, D]`` (any rows, one call over a whole batch).
# Sequence projectors (``per_row = False``) read each utterance's rows in order and change
# their number: ``forward(x [B, L, V], lengths [B]) -> [B, L', D]``, valid rows given by
# ``output_lengths(lengths)``. :func:`project_batch` calls either kind.


def is_per_row(projector: nn.Module) -> bool:
    """Whether ``projector`` maps each posterior row on its own (``[N, V] -> [N, D]``)."""
    return getattr(projector, "per_row", True)


def _zero_padding(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``x [B, L, V]`` with the frames past each utterance's length set to zero."""
    keep = torch.arange(x.shape[1], device=x.device)[None, :] < lengths.to(x.device)[:, None]
    return x * keep[..., None].to(x.dtype)


def _pad_frames(x: torch.Tensor, k: int) -> torch.Tensor:
    """``x [B, L, V]`` zero-padded at the end to a multiple of ``k`` frames."""
    return nn.functional.pad(x, (0, 0, 0, -x.shape[1] % k))


def _check_positive(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"projector.{name} must be at least 1, got {value}")


class SequenceProjector(nn.Module):
    """Base of the projectors that see an utterance's rows in order and change their number."""

    per_row = False
    accepts_sparse = False

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Output rows per utterance for ``lengths`` input rows."""
        raise NotImplementedError


class StackProjector(SequenceProjector):
    """``stride`` consecutive rows concatenated -> Linear -> SiLU -> Linear (SLAM-LLM's linear projector).

    The last group of an utterance is padded with zero rows: ``ceil(L / stride)`` outputs.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 1024, stride: int = 2) -> None:
        super().__init__()
        _check_positive("stride", stride)
        self.in_dim, self.out_dim, self.stride = in_dim, out_dim, stride
        self.net = nn.Sequential(nn.Linear(stride * in_dim, hidden), nn.SiLU(), nn.Linear(hidden, out_dim))

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return (lengths + self.stride - 1) // self.stride

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = _pad_frames(_zero_padding(x, lengths), self.stride)
        B, L, V = x.shape
        return self.net(x.reshape(B, L // self.stride, self.stride * V))


class Conv1dProjector(SequenceProjector):
    """Conv1d(V, hidden, kernel = stride = k) -> SiLU -> Linear.

    The last window of an utterance is padded with zero rows: ``ceil(L / k)`` outputs.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 1024, stride: int = 2) -> None:
        super().__init__()
        _check_positive("stride", stride)
        self.in_dim, self.out_dim, self.stride = in_dim, out_dim, stride
        self.conv = nn.Conv1d(in_dim, hidden, kernel_size=stride, stride=stride)
        self.out = nn.Linear(hidden, out_dim)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return (lengths + self.stride - 1) // self.stride

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = _pad_frames(_zero_padding(x, lengths), self.stride)
        if x.shape[1] == 0:  # a batch of empty utterances
            return x.new_zeros(x.shape[0], 0, self.out_dim)
        h = self.conv(x.transpose(1, 2)).transpose(1, 2)
        return self.out(nn.functional.silu(h))


class QFormerProjector(SequenceProjector):
    """Learned queries cross-attend to the rows (transformers' ``Blip2QFormerModel``) -> Linear -> LayerNorm.

    ``window = 0``: ``queries`` outputs per utterance whatever its length (BLIP-2; an empty
    utterance is read as one zero row). ``window = w``: ``queries`` outputs per chunk of ``w``
    rows (SALMONN's window-level Q-Former), ``ceil(L / w) * queries``. Rows pass a Linear to
    ``hidden`` first; padded rows are masked, chunks made only of padding are not computed.
    No dropout.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 256, layers: int = 2, heads: int = 4,
                 queries: int = 2, window: int = 4) -> None:
        super().__init__()
        from transformers import Blip2QFormerConfig, Blip2QFormerModel

        for name, v in (("qformer_hidden", hidden), ("qformer_layers", layers), ("heads", heads),
                        ("qformer_queries", queries)):
            _check_positive(name, v)
        if window < 0:
            raise ValueError(f"projector.qformer_window must be 0 (whole utterance) or positive, got {window}")
        if hidden % heads:
            raise ValueError(f"projector.qformer_hidden={hidden} is not a multiple of projector.heads={heads}")
        self.in_dim, self.out_dim, self.queries, self.window = in_dim, out_dim, queries, window
        cfg = Blip2QFormerConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                                 intermediate_size=4 * hidden, hidden_dropout_prob=0.0,
                                 attention_probs_dropout_prob=0.0, cross_attention_frequency=1,
                                 encoder_hidden_size=hidden)
        self.inp = nn.Linear(in_dim, hidden)
        self.query = nn.Parameter(torch.randn(1, queries, hidden) * cfg.initializer_range)
        self.qformer = Blip2QFormerModel(cfg)
        self.proj = nn.Linear(hidden, out_dim)
        self.norm = nn.LayerNorm(out_dim)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        if self.window == 0:
            return torch.full_like(lengths, self.queries)
        return (lengths + self.window - 1) // self.window * self.queries

    def _chunks(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(rows [C, w, V], mask [C, w])``: what each set of queries reads (C = B, or the valid windows)."""
        lengths = lengths.to(x.device)
        if self.window == 0:
            mask = torch.arange(x.shape[1], device=x.device)[None, :] < lengths.clamp(min=1)[:, None]
            if x.shape[1] == 0:
                x, mask = x.new_zeros(x.shape[0], 1, x.shape[2]), mask.new_ones(x.shape[0], 1)
            return x, mask
        w = self.window
        x = _pad_frames(x, w)
        B, L, V = x.shape
        mask = (torch.arange(L, device=x.device)[None, :] < lengths[:, None]).reshape(B, L // w, w)
        valid = mask.any(2)                                   # [B, L / w]: windows holding a row
        return x.reshape(B, L // w, w, V)[valid], mask[valid]

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        rows, mask = self._chunks(x, lengths)
        n_out = self.output_lengths(lengths).tolist()
        if rows.shape[0] == 0:
            return x.new_zeros(x.shape[0], max(n_out, default=0), self.out_dim)
        h = self.qformer(query_embeds=self.query.expand(rows.shape[0], -1, -1), encoder_hidden_states=self.inp(rows),
                         encoder_attention_mask=mask.long()).last_hidden_state
        out = self.norm(self.proj(h))                         # [C, queries, D]
        if self.window == 0:
            return out
        per_utt = out.reshape(-1, self.out_dim).split(n_out)
        return pad_sequence(list(per_utt), batch_first=True)


class EmbeddingAttentionProjector(nn.Module):
    """Each row attends over the frozen LLM input embedding table; the output is a mix of token embeddings.

    The query ``Linear(LayerNorm(x))`` ``[D]`` is cut into ``heads`` heads; head ``h`` scores every
    LLM token by the query against the ``h``-th slice of its embedding (the keys are the table
    itself, no learned key projection) and returns the softmax-weighted mean of the full
    embeddings; the output is the mean over heads: a convex combination of LLM token
    embeddings, so it lies in the LLM's embedding space. Cost ``O(rows x vocab x D)`` per call.
    The table is a non-persistent buffer copied from the LLM at build time: never saved, never trained.
    Takes :class:`~tasu.sparse.SparseRows` too (the query layer is then computed from the listed units).
    """

    accepts_sparse = True

    def __init__(self, in_dim: int, out_dim: int, embedding: torch.Tensor, heads: int = 4) -> None:
        super().__init__()
        _check_positive("heads", heads)
        if out_dim % heads:
            raise ValueError(f"the LLM's embedding size {out_dim} is not a multiple of projector.heads={heads}")
        self.in_dim, self.out_dim, self.heads = in_dim, out_dim, heads
        self.query = nn.Sequential(nn.LayerNorm(in_dim), UnitLinear(in_dim, out_dim))
        self.register_buffer("table", embedding.detach().float().clone(), persistent=False)

    def forward(self, x: torch.Tensor | SparseRows) -> torch.Tensor:
        q = sparse_layernorm_linear(x, *self.query) if isinstance(x, SparseRows) else self.query(x)
        h, d = self.heads, self.out_dim // self.heads
        table = self.table.to(q.dtype)
        keys = table.view(table.shape[0], h, d)                                # [vocab, H, D / H]
        scores = torch.einsum("nhd,vhd->nhv", q.view(q.shape[0], h, d), keys) * d ** -0.5
        return scores.softmax(-1).mean(1) @ table


class LegoProjector(nn.Module):
    """LegoSLM vocabulary transfer: ``output = gain * (p @ E)``, ``E [V_enc, D]`` a row per encoder unit.

    ``mapping="shared"`` (the encoder's units are the LLM's tokens): ``E[u]`` is the LLM's frozen
    embedding of unit ``u``'s token (``token_ids[u]``; ``-1``, e.g. the CTC blank: a trainable row,
    zero at first; ``token_ids=None``: unit ``i`` is token ``i``).

    ``mapping="lowrank"`` (other vocabularies): a learned map from units to distributions over the
    whole LLM vocabulary. A full ``V_enc x V_llm`` matrix (25k x 49k) is too big, so it goes
    through ``rank`` latent token distributions: ``E = softmax(A) @ softmax(B) @ emb`` with
    ``A [V_enc, rank]``, ``B [rank, V_llm]`` (``(V_enc + V_llm) x rank`` weights); every row of
    ``E`` stays a convex combination of LLM token embeddings. The spelling warm start
    (``projector.init: spelling``) fits it towards the embeddings of each unit's letters.

    ``gain [D]`` (trainable, ones at first) rescales the mixtures. The LLM's table is a
    non-persistent buffer: never saved, never trained. :class:`~tasu.sparse.SparseRows` are
    multiplied exactly from their listed units and floor, without dense rows.
    """

    accepts_sparse = True

    def __init__(self, in_dim: int, out_dim: int, embedding: torch.Tensor, mapping: str = "lowrank",
                 token_ids: Sequence[int] | None = None, rank: int = 256) -> None:
        super().__init__()
        self.in_dim, self.out_dim, self.mapping = in_dim, out_dim, mapping
        self.gain = nn.Parameter(torch.ones(out_dim))
        table = embedding.detach().float()
        if mapping == "shared":
            ids = self._token_ids(token_ids, in_dim, table.shape[0])
            self.register_buffer("rows", table[ids.clamp(min=0)] * (ids >= 0)[:, None], persistent=False)
            self.register_buffer("unmapped", torch.nonzero(ids < 0).squeeze(1), persistent=False)
            self.extra = nn.Parameter(torch.zeros(len(self.unmapped), out_dim))
        elif mapping == "lowrank":
            _check_positive("lego_rank", rank)
            self.register_buffer("table", table.clone(), persistent=False)
            self.unit_map = nn.Parameter(torch.randn(in_dim, rank))
            self.token_map = nn.Parameter(torch.randn(rank, table.shape[0]))
        else:
            raise ValueError(f"projector.lego_map must be 'shared' or 'lowrank', got {mapping!r}")

    @staticmethod
    def _token_ids(token_ids: Sequence[int] | None, n_units: int, vocab: int) -> torch.Tensor:
        """Checked LLM token id per unit (``-1``: none)."""
        if token_ids is None:
            if n_units != vocab:
                raise ValueError(f"projector.lego_map: shared without a unit -> token list needs as many units as LLM "
                                 f"tokens, got {n_units} units and {vocab} tokens")
            return torch.arange(vocab)
        ids = torch.as_tensor(list(token_ids), dtype=torch.long)
        if len(ids) != n_units:
            raise ValueError(f"projector.lego_map: shared: {len(ids)} token ids for {n_units} units")
        if (ids >= vocab).any() or (ids < -1).any():
            raise ValueError(f"projector.lego_map: shared: token ids must lie in [-1, {vocab}), "
                             f"got {int(ids.min())}..{int(ids.max())}")
        if (ids < 0).all():
            raise ValueError("projector.lego_map: shared needs encoder units that are LLM tokens, but none is; "
                             "use projector.lego_map: lowrank")
        return ids

    def unit_embeddings(self) -> torch.Tensor:
        """``E [V_enc, D]``: what each encoder unit stands for in the LLM's embedding space."""
        if self.mapping == "shared":
            return self.rows.index_put((self.unmapped,), self.extra.to(self.rows.dtype))
        return self.unit_map.softmax(1) @ (self.token_map.softmax(1) @ self.table)

    def forward(self, x: torch.Tensor | SparseRows) -> torch.Tensor:
        E = self.unit_embeddings()
        if isinstance(x, SparseRows):  # p @ E = floor * (sum of the active units' rows) + sum_j w_j E[id_j]
            w = torch.where(x.ids >= 0, x.weights, 0.0).to(E.dtype)
            y = torch.addr(torch.nn.functional.embedding_bag(x.ids.clamp(min=0), E, mode="sum", per_sample_weights=w),
                           x.floor.to(E.dtype), x.active.to(E.dtype) @ E)
            return y * self.gain.to(y.dtype)
        return (x @ E.to(x.dtype)) * self.gain.to(x.dtype)


PROJECTORS: dict[str, type[nn.Module]] = {
    "linear_silu": LinearSiLUProjector, "stack": StackProjector, "conv1d": Conv1dProjector,
    "qformer": QFormerProjector, "cross_attention": EmbeddingAttentionProjector, "lego": LegoProjector}
NEEDS_EMBEDDING = ("cross_attention", "lego")


def check_output_size(out_dim: int, embedding_dim: int, where: str = "") -> None:
    """The projector's output size must be the LLM's embedding size."""
    if out_dim != embedding_dim:
        raise ValueError(f"{where}{': ' if where else ''}projector output size {out_dim} does not match "
                         f"the LLM's embedding size {embedding_dim}")


def build_projector(kind: str, in_dim: int, out_dim: int, embedding: torch.Tensor | None = None,
                    **kwargs) -> nn.Module:
    """A fresh projector ``kind`` from ``in_dim`` units to ``out_dim``.

    ``embedding``: the LLM's input embedding weight ``[vocab, D]``; needed by ``cross_attention``
    and ``lego``; when given, ``out_dim`` must be its ``D``. ``kwargs``: see :func:`projector_options`.
    """
    if kind not in PROJECTORS:
        raise ValueError(f"unknown projector {kind!r}; known: {', '.join(PROJECTORS)}")
    if embedding is not None:
        check_output_size(out_dim, embedding.shape[1])
    if kind in NEEDS_EMBEDDING:
        if embedding is None:
            raise ValueError(f"projector {kind!r} needs the LLM's input embedding table (embedding=...)")
        return PROJECTORS[kind](in_dim, out_dim, embedding, **kwargs)
    return PROJECTORS[kind](in_dim, out_dim, **kwargs)


def unit_token_ids(units: Sequence[str], tokenizer) -> list[int]:
    """The LLM token id of each unit spelled as one of the tokenizer's tokens, ``-1`` otherwise."""
    vocab = tokenizer.get_vocab()
    return [vocab.get(u, -1) for u in units]


def projector_options(cfg: ProjectorConfig, units: Sequence[str] | None = None, tokenizer=None) -> dict:
    """:func:`build_projector` keyword arguments of ``cfg.kind`` from a :class:`tasu.config.ProjectorConfig`.

    ``units`` and ``tokenizer`` (the encoder's inventory, the LLM's tokenizer) map units to
    tokens for ``lego_map: shared``.
    """
    if cfg.kind == "linear_silu":
        return {"hidden": cfg.hidden}
    if cfg.kind in ("stack", "conv1d"):
        return {"hidden": cfg.hidden, "stride": cfg.stride}
    if cfg.kind == "qformer":
        return {"hidden": cfg.qformer_hidden, "layers": cfg.qformer_layers, "heads": cfg.heads,
                "queries": cfg.qformer_queries, "window": cfg.qformer_window}
    if cfg.kind == "cross_attention":
        return {"heads": cfg.heads}
    if cfg.kind == "lego":
        opts = {"mapping": cfg.lego_map, "rank": cfg.lego_rank}
        if cfg.lego_map == "shared" and units is not None and tokenizer is not None:
            opts["token_ids"] = unit_token_ids(units, tokenizer)
        return opts
    return {}  # build_projector names the unknown kind


def _dense(f: torch.Tensor | SparseRows) -> torch.Tensor:
    return f.dense() if isinstance(f, SparseRows) else f


def project_batch(projector: nn.Module, feats: Sequence[torch.Tensor | SparseRows],
                  device: torch.device) -> list[torch.Tensor]:
    """Projected rows ``[L'_b, D]`` per utterance, from one projector call over the whole batch.

    Per-row projectors get the concatenated rows (sparse when every utterance is
    :class:`SparseRows` and the projector takes them); sequence projectors get the
    zero-padded ``[B, L, V]`` batch and the lengths.
    """
    if not feats:
        return []
    if not is_per_row(projector):
        rows = [_dense(f) for f in feats]
        lengths = torch.tensor([r.shape[0] for r in rows], device=device)
        out = projector(pad_sequence(rows, batch_first=True).to(device), lengths)
        return [o[:n] for o, n in zip(out, projector.output_lengths(lengths).tolist())]
    if all(isinstance(f, SparseRows) for f in feats) and getattr(projector, "accepts_sparse", False):
        x = SparseRows.cat(list(feats)).to(device)
    else:
        x = torch.cat([_dense(f) for f in feats]).to(device)
    return list(projector(x).split([f.shape[0] for f in feats]))


def spelling_targets(units: Sequence[str], spellings: Mapping[str, Mapping[str, int]],
                     tokenizer, embedding: torch.Tensor,
                     word_boundary: str | None = "<wb>") -> tuple[torch.Tensor, torch.Tensor]:
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
    Projectors with a ``stride`` k (stack, conv1d) read k units at a time, fit towards the
    mean of their k targets; the others that change the length (qformer) are an error.
    """
    if not is_per_row(projector) and not hasattr(projector, "stride"):
        kind = next((k for k, c in PROJECTORS.items() if type(projector) is c), type(projector).__name__)
        raise ValueError(f"projector {kind!r} has no output per unit, so it cannot be warm-started from "
                         "unit spellings; set projector.init: random")
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
        loss = (_fit_output(projector, x) - _fit_target(projector, targets[u])).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        rel = float(loss.detach() / scale)
    return rel


def _fit_output(projector: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Warm start: the projector's output for rows ``x [n, V]`` (sequence projectors: ``stride`` rows at a time)."""
    if is_per_row(projector):
        return projector(x)
    k = projector.stride
    groups = x[:len(x) // k * k].reshape(-1, k, x.shape[1])
    return projector(groups, torch.full((len(groups),), k)).reshape(len(groups), -1)


def _fit_target(projector: nn.Module, targets: torch.Tensor) -> torch.Tensor:
    """Warm start: the targets of :func:`_fit_output` (the mean of each group's ``stride`` targets)."""
    if is_per_row(projector):
        return targets
    k = projector.stride
    return targets[:len(targets) // k * k].reshape(-1, k, targets.shape[1]).mean(1)
