"""Frozen CTC encoders: audio -> frame log-posteriors over the encoder's own units."""
from __future__ import annotations

from tasu.encoders.base import CTCEncoder


def build_encoder(name: str, **kwargs) -> CTCEncoder:
    """Encoder by name (``hama`` is the offline default)."""
    if name == "hama":
        from tasu.encoders.hama import HamaEncoder

        return HamaEncoder(**kwargs)
    raise ValueError(f"unknown encoder {name!r}; known: hama")


__all__ = ["CTCEncoder", "build_encoder"]
