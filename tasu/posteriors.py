"""How stage 1 stores PSD posterior rows: dense, or each row's top k units (for large inventories).

A dense row over SenseVoice's 25 055 BPE units is 100 kB of float32, almost all of it near zero
after PSD; a top-k row keeps the ``k`` largest probabilities and their unit ids (``2k`` floats,
ids exact up to 2^24) and spreads the rest of the row's mass evenly over the other units.

A dump dir says how it is stored in ``feats.info`` beside ``feats.scp`` (JSON,
``{"format": "topk", "k": 16, "vocab_size": 25055}``); without it the matrices are dense.
:class:`TopKRows` looks like a ``[T', V]`` array to the code that reads it (``shape``, ``ndim``,
``np.asarray``), so decoding, rescoring and paired training read either format, and dense rows
are only ever made for the batch at hand.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["INFO_FILE", "TopKRows", "pack_topk", "read_info", "info_text"]

#: The format sidecar of a dump dir's ``feats.scp``.
INFO_FILE = "feats.info"


def pack_topk(mat: np.ndarray, k: int) -> np.ndarray:
    """``[T', V]`` probabilities -> ``[T', 2k]`` float32: each row's ``k`` largest probabilities
    (largest first), then their unit ids."""
    mat = np.asarray(mat, dtype=np.float32)
    if mat.ndim != 2 or not 0 < k <= mat.shape[1]:
        raise ValueError(f"pack_topk: rows of shape {mat.shape} and k={k}: need 0 < k <= {mat.shape[-1]}")
    ids = np.argpartition(-mat, k - 1, axis=1)[:, :k]
    probs = np.take_along_axis(mat, ids, axis=1)
    order = np.argsort(-probs, axis=1, kind="stable")
    ids, probs = np.take_along_axis(ids, order, axis=1), np.take_along_axis(probs, order, axis=1)
    return np.concatenate([probs, ids.astype(np.float32)], axis=1)


class TopKRows:
    """``[T', V]`` rows stored as their top ``k`` units (:func:`pack_topk`); dense on demand."""

    def __init__(self, packed: np.ndarray, vocab_size: int, where: str = "top-k rows") -> None:
        packed = np.asarray(packed, dtype=np.float32)
        if packed.ndim != 2 or packed.shape[1] % 2 or packed.shape[1] == 0:
            raise ValueError(f"{where}: packed top-k rows must be [T', 2k], got {packed.shape}")
        k = packed.shape[1] // 2
        ids = packed[:, k:]
        if k > vocab_size or ids.size and (ids.min() < 0 or ids.max() >= vocab_size or (ids != np.round(ids)).any()):
            raise ValueError(f"{where}: unit ids outside 0..{vocab_size - 1} (or k = {k} > {vocab_size})")
        self.packed, self.k, self.vocab_size = packed, k, int(vocab_size)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.packed.shape[0], self.vocab_size)

    ndim = 2

    def __len__(self) -> int:
        return self.packed.shape[0]

    def dense(self, dtype=np.float32) -> np.ndarray:
        """The ``[T', V]`` rows: the kept probabilities at their ids, the rest spread evenly."""
        T, k, V = self.packed.shape[0], self.k, self.vocab_size
        probs, ids = self.packed[:, :k], self.packed[:, k:].astype(np.int64)
        rest = np.clip(1.0 - probs.sum(axis=1, keepdims=True), 0.0, None) / max(V - k, 1)
        out = np.broadcast_to(rest, (T, V)).astype(dtype, copy=True)
        np.put_along_axis(out, ids, probs.astype(dtype), axis=1)
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self.dense(dtype or np.float32)


def info_text(k: int, vocab_size: int) -> str:
    """The ``feats.info`` of a top-k dump."""
    return json.dumps({"format": "topk", "k": int(k), "vocab_size": int(vocab_size)}) + "\n"


def read_info(scp: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The storage format beside ``scp`` (``None``: dense). A malformed file is a ValueError naming it."""
    path = Path(scp).parent / INFO_FILE
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a JSON posterior format ({e})") from None
    if (not isinstance(info, dict) or info.get("format") != "topk" or not isinstance(info.get("k"), int)
            or not isinstance(info.get("vocab_size"), int) or not 0 < info["k"] <= info["vocab_size"]):
        raise ValueError(f"{path}: expected {{\"format\": \"topk\", \"k\": K, \"vocab_size\": V}} with 0 < K <= V, "
                         f"got {info!r}")
    return info
