"""The one interface every CTC encoder backend implements."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tasu.units import UnitInventory


class EncoderError(ValueError):
    """An encoder that cannot be loaded or used as asked; the message names the file or input."""


def resample(wave: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Band-limited resampling when scipy is present, linear interpolation otherwise."""
    if src == dst or wave.size == 0:
        return wave
    try:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(src, dst)
        return resample_poly(wave, dst // g, src // g).astype(np.float32)
    except ImportError:
        t_dst = np.arange(int(round(len(wave) * dst / src))) * (src / dst)
        return np.interp(t_dst, np.arange(len(wave)), wave).astype(np.float32)


def resolve_device(device: str):
    """``device`` as a torch device; asking for CUDA without one is an :class:`EncoderError`."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise EncoderError(f"device {device!r} asked for (--ngpu) but torch {torch.__version__} sees no CUDA "
                           "device; use the CPU (--ngpu 0)")
    if dev.type not in ("cpu", "cuda"):
        raise EncoderError(f"device {device!r}: expected cpu or cuda[:N]")
    return dev


#: what text -> units does with a character the encoder cannot write (see each backend)
OOV_POLICIES = ("fail", "drop", "map")


def check_oov_policy(oov: str) -> str:
    """``oov`` if it is one of :data:`OOV_POLICIES`, else an :class:`EncoderError`."""
    if oov not in OOV_POLICIES:
        raise EncoderError(f"unknown OOV policy {oov!r}: the oov policy must be one of {', '.join(OOV_POLICIES)}")
    return oov


class CTCEncoder(ABC):
    """Audio -> frame log-posteriors ``[T, V]`` over :attr:`inventory`.

    A backend gives its unit inventory (blank and word boundary included), per-utterance
    and batched posteriors, and text -> units for posterior simulation.
    """

    inventory: UnitInventory
    sample_rate: int = 16000

    @abstractmethod
    def log_posteriors(self, wave: np.ndarray, sample_rate: int) -> np.ndarray:
        """Float32 mono waveform in [-1, 1] -> ``[T, V]`` float32 log-probabilities."""

    def log_posteriors_batch(self, waves: Sequence[np.ndarray], sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
        """Waveforms -> ``(log_probs [B, T, V] float32, lengths [B] int64)``.

        Row ``b`` is valid for its first ``lengths[b]`` frames; later frames are padding
        (zeros). This default runs :meth:`log_posteriors` on each wave; backends that batch
        for real override it.
        """
        outs = [self.log_posteriors(w, sample_rate) for w in waves]
        lengths = np.array([o.shape[0] for o in outs], dtype=np.int64)
        out = np.zeros((len(outs), int(lengths.max(initial=0)), self.inventory.size), dtype=np.float32)
        for b, o in enumerate(outs):
            out[b, : o.shape[0]] = o
        return out, lengths

    def text_to_units(self, text: str) -> list[str]:
        """Units the encoder would ideally emit for ``text`` (for posterior simulation).

        Text it cannot write raises a ``ValueError`` saying what and where in ``text``; the
        caller adds the file and line.
        """
        raise NotImplementedError(f"{type(self).__name__} has no text -> units mapping")

    def spellings(self, lexicon: Path | None = None) -> dict[str, dict[str, int]]:
        """Letters that spell each unit, with counts (``projector.init: spelling``); empty: none known."""
        return {}


class BatchCTCEncoder(CTCEncoder):
    """A backend whose native call is batched (a torch model): it implements
    :meth:`log_posteriors_batch`, and one utterance is a batch of one."""

    @abstractmethod
    def log_posteriors_batch(self, waves: Sequence[np.ndarray], sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
        """See :meth:`CTCEncoder.log_posteriors_batch`."""

    def log_posteriors(self, wave: np.ndarray, sample_rate: int) -> np.ndarray:
        lp, lengths = self.log_posteriors_batch([wave], sample_rate)
        return lp[0, : int(lengths[0])]
