"""SenseVoiceSmall-style models through FunASR (``sensevoice:<model dir>``).

The model dir holds ``model.pt``, ``config.yaml``, ``am.mvn`` and the sentencepiece model
``chn_jpn_yue_eng_ko_spectok.bpe.model`` (25 055 pieces). The network is built by
``funasr.AutoModel.build_model`` (``pip install funasr``); the features are ours
(:mod:`tasu.encoders.frontend`: waveform x 32768, 80-bin hamming fbank, LFR 7/6, ``am.mvn``).

SenseVoice prepends four query embeddings to the features: language, event, emotion and
text normalisation (``[lid, 1, 2, textnorm]``, FunASR's ``SenseVoiceSmall.inference``). Their
four output frames carry the rich-transcription tags, not speech, and are dropped: the
log-posteriors start at the first speech frame. CTC blank is id 0 (the model's ``blank_id``),
which is also the tokenizer's ``<unk>``: unit 0 is named ``<blank>``, and the OOV policy
``map`` drops (an unknown character has no unit of its own). Text -> units: sentencepiece
pieces of the text (:mod:`tasu.encoders.spm`).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tasu.encoders.base import (
    BatchCTCEncoder,
    check_oov_policy,
    resample,
    resolve_device,
)
from tasu.encoders.frontend import SENSEVOICE_FBANK, WavFrontend, read_am_mvn
from tasu.encoders.spm import SentencePieceUnits
from tasu.units import UnitInventory

log = logging.getLogger(__name__)

INSTALL_HINT = "the sensevoice encoder needs FunASR to build the network: pip install funasr"
BPE_MODEL = "chn_jpn_yue_eng_ko_spectok.bpe.model"
NUM_QUERIES = 4  # language, event, emotion, text-norm
LANGUAGES = {"auto": 0, "zh": 3, "en": 4, "yue": 7, "ja": 11, "ko": 12, "nospeech": 13}
TEXT_NORMS = {"withitn": 14, "woitn": 15}


def import_funasr() -> Any:
    try:
        import funasr
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    return funasr


def load_funasr_model(model_dir: Path, device: str = "cpu") -> Any:
    """The ``SenseVoiceSmall`` torch module of ``model_dir`` (FunASR builds it, loads ``model.pt``)."""
    funasr = import_funasr()
    model, _ = funasr.AutoModel.build_model(model=str(model_dir), device=device)
    return model


class SenseVoiceEncoder(BatchCTCEncoder):
    """SenseVoiceSmall's CTC head as frame log-posteriors over its 25 055 BPE units.

    ``module`` replaces the FunASR-built network (any module with ``embed``, ``encoder(x, lens)``
    and ``ctc.log_softmax``, as ``SenseVoiceSmall`` has); ``language`` and ``text_norm`` pick the
    query embeddings.
    """

    def __init__(self, model_dir: str | os.PathLike[str], device: str = "cpu", oov: str = "fail",
                 language: str = "auto", text_norm: str = "woitn", module: Any = None) -> None:
        self.model_dir = Path(model_dir)
        if not self.model_dir.is_dir():
            raise FileNotFoundError(f"SenseVoice model dir not found: {self.model_dir}")
        needed = ["am.mvn", BPE_MODEL] + ([] if module is not None else ["config.yaml", "model.pt"])
        for name in needed:
            if not (self.model_dir / name).is_file():
                raise FileNotFoundError(f"{self.model_dir / name}: missing from the SenseVoice model dir "
                                        f"(expected {', '.join(needed)})")
        if language not in LANGUAGES:
            raise ValueError(f"unknown SenseVoice language {language!r}; known: {', '.join(LANGUAGES)}")
        if text_norm not in TEXT_NORMS:
            raise ValueError(f"unknown SenseVoice text_norm {text_norm!r}; known: {', '.join(TEXT_NORMS)}")
        check_oov_policy(oov)
        self.frontend = WavFrontend(SENSEVOICE_FBANK, 7, 6, read_am_mvn(self.model_dir / "am.mvn"))
        if self.frontend.cmvn is not None and self.frontend.cmvn.shift.shape[0] != self.frontend.dim:
            raise ValueError(f"{self.model_dir / 'am.mvn'}: {self.frontend.cmvn.shift.shape[0]} values, "
                             f"the LFR features have {self.frontend.dim}")
        self.device = resolve_device(device)
        self.model = module if module is not None else load_funasr_model(self.model_dir, str(self.device))
        self.model.eval()
        self.sample_rate = SENSEVOICE_FBANK.sample_rate
        self.query_ids = (LANGUAGES[language], 1, 2, TEXT_NORMS[text_norm])
        blank_id = int(getattr(self.model, "blank_id", 0))
        spm = SentencePieceUnits(self.model_dir / BPE_MODEL, oov, None)
        pieces = spm.pieces
        n_out = self._ctc_outputs()
        if n_out is not None and n_out != len(pieces):
            raise ValueError(f"{self.model_dir}: the CTC layer has {n_out} outputs, "
                             f"{BPE_MODEL} has {len(pieces)} pieces")
        if blank_id != spm.sp.unk_id():
            spm.unk_unit = pieces[spm.sp.unk_id()]  # ``<unk>`` is a unit of its own: map to it
        pieces[blank_id] = "<blank>"
        self.tokenizer = spm
        self.inventory = UnitInventory(tuple(pieces), "<blank>", None)

    def _ctc_outputs(self) -> int | None:
        lo = getattr(getattr(self.model, "ctc", None), "ctc_lo", None)
        return getattr(lo, "out_features", None)

    @property
    def oov_counts(self) -> dict[str, int]:
        return self.tokenizer.oov_counts

    def features(self, wave: np.ndarray) -> np.ndarray:
        """Waveform in [-1, 1] at 16 kHz -> ``[T, 560]`` LFR + CMVN features."""
        return self.frontend(wave)

    def log_posteriors_batch(self, waves: Sequence[np.ndarray], sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
        """Mono waveforms in [-1, 1] -> ``([B, T, V]`` log-probabilities, ``[B]`` frame counts).

        The four query frames are dropped: frame 0 is the first speech frame.
        """
        import torch


        feats = []
        for i, w in enumerate(waves):
            w = np.asarray(w, dtype=np.float32)
            if w.ndim != 1:
                raise ValueError(f"waveform {i}: expected mono audio, got shape {w.shape}")
            feats.append(self.features(resample(w, sample_rate, self.sample_rate)))
        n = np.array([len(f) for f in feats], dtype=np.int64)
        x = np.zeros((len(feats), int(n.max(initial=0)), self.frontend.dim), dtype=np.float32)
        for i, f in enumerate(feats):
            x[i, :len(f)] = f
        with torch.inference_mode():
            speech = torch.from_numpy(x).to(self.device)
            queries = self.model.embed(torch.tensor([self.query_ids], device=self.device)).expand(len(feats), -1, -1)
            # padded frames stay after each utterance's speech: queries first, as FunASR does
            enc, lens = self.model.encoder(torch.cat([queries.to(speech.dtype), speech], dim=1),
                                           torch.from_numpy(n + NUM_QUERIES).to(self.device))
            if isinstance(enc, tuple):
                enc = enc[0]
            lp = self.model.ctc.log_softmax(enc)[:, NUM_QUERIES:].float().cpu().numpy()
        lens = np.maximum(lens.cpu().numpy().astype(np.int64) - NUM_QUERIES, 0)
        for b, t in enumerate(lens):
            lp[b, t:] = 0.0  # padding frames are zeros (CTCEncoder.log_posteriors_batch)
        return lp, lens


    def text_to_units(self, text: str) -> list[str]:
        return self.tokenizer(text)
