"""The one interface every CTC encoder backend implements."""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from tasu.units import UnitInventory


class CTCEncoder(ABC):
    """Audio -> frame log-posteriors ``[T, V]`` over :attr:`inventory`."""

    inventory: UnitInventory
    sample_rate: int = 16000

    @abstractmethod
    def log_posteriors(self, wave: np.ndarray, sample_rate: int) -> np.ndarray:
        """Float32 mono waveform in [-1, 1] -> ``[T, V]`` float32 log-probabilities."""

    def text_to_units(self, text: str) -> list[str]:
        """Units the encoder would ideally emit for ``text`` (for posterior simulation)."""
        raise NotImplementedError(f"{type(self).__name__} has no text -> units mapping")
