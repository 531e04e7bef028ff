"""The ``hama`` English IPA phoneme CTC model (PyPI ``hama``, CPU, offline).

191 outputs including ``<wb>`` (word boundary) and ``<blank>``; one frame per 320 input
samples at 16 kHz. Text -> units goes through ``hama.G2PModel`` (see :mod:`tasu.g2p`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tasu.encoders.base import CTCEncoder
from tasu.encoders.base import resample as _resample
from tasu.g2p import HamaG2P
from tasu.units import UnitInventory


def _import_hama():
    try:
        import hama
    except ImportError as e:  # pragma: no cover - exercised only without the package
        raise ImportError("the hama encoder needs the `hama` package: pip install hama") from e
    return hama


class HamaEncoder(CTCEncoder):
    """``hama.ASRModel`` exposed as raw frame log-posteriors."""

    def __init__(self, lexicon: Path | None = None) -> None:
        hama = _import_hama()
        self._asr = hama.ASRModel()
        self.sample_rate = self._asr.model_sample_rate
        self.inventory = UnitInventory(tuple(self._asr.decoder_tokens), "<blank>", "<wb>")
        self._g2p: HamaG2P | None = None
        self._lexicon = lexicon

    @property
    def g2p(self) -> HamaG2P:
        if self._g2p is None:
            self._g2p = HamaG2P(self.inventory, self._lexicon)
        return self._g2p

    def log_posteriors(self, wave: np.ndarray, sample_rate: int) -> np.ndarray:
        wave = np.asarray(wave, dtype=np.float32)
        if wave.ndim != 1:
            raise ValueError(f"expected mono audio, got shape {wave.shape}")
        wave = _resample(wave, sample_rate, self.sample_rate)
        sess = self._asr.session
        log_probs, lengths = sess.run(
            [self._asr._log_probs_output_name, self._asr._out_lengths_output_name],
            {self._asr._waveform_input_name: wave[None, :],
             self._asr._waveform_lengths_input_name: np.array([wave.shape[0]], dtype=np.int64)},
        )
        n = int(np.asarray(lengths).reshape(-1)[0])
        return np.asarray(log_probs[0, :n], dtype=np.float32)

    def text_to_units(self, text: str) -> list[str]:
        return self.g2p.sentence_units(text)

    def spellings(self, lexicon: Path | None = None) -> dict[str, dict[str, int]]:
        """Unit spellings counted over a lexicon file with letters (``make_units``' lexicon)."""
        return HamaG2P(self.inventory, lexicon).spellings() if lexicon else {}
