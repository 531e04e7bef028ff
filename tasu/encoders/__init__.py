"""Frozen CTC encoders: audio -> frame log-posteriors over the encoder's own units.

An encoder is named by a spec string ``<kind>[:<arg>]``:

- ``hama``: the offline default, English IPA phonemes (PyPI ``hama``; :mod:`tasu.encoders.hama`)
- ``hf:<dir or hub id>``: a HuggingFace transformers ``*ForCTC`` model (:mod:`tasu.encoders.hf`)
- ``espnet:<zip or dir>``: an ESPnet2 ASR model with a CTC branch (:mod:`tasu.encoders.espnet`)
- ``sensevoice:<dir>``: a SenseVoiceSmall model dir, via FunASR (:mod:`tasu.encoders.sensevoice`)

Adding a backend: a :class:`CTCEncoder` subclass in ``tasu/encoders/<kind>.py`` and one
factory in :data:`FACTORIES` that imports it lazily (so a missing optional package only
matters when that backend is asked for). Factories take the spec's argument and the
keyword options of :func:`build_encoder`, and ignore the options they have no use for.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from tasu.encoders.base import CTCEncoder

log = logging.getLogger(__name__)


def _hama(arg: str, *, lexicon: Path | None = None, device: str = "cpu", **_) -> CTCEncoder:
    if arg:
        raise ValueError(f"encoder 'hama' takes no argument, got 'hama:{arg}'")
    if device != "cpu":
        log.warning("the hama encoder runs on the CPU (onnxruntime); device %s is not used", device)
    from tasu.encoders.hama import HamaEncoder

    return HamaEncoder(lexicon=lexicon)


def _hf(arg: str, *, device: str = "cpu", oov: str = "fail", **_) -> CTCEncoder:
    if not arg:
        raise ValueError("encoder 'hf' needs a model dir or hub id: hf:<dir or hub id>")
    from tasu.encoders.hf import HFCTCEncoder

    return HFCTCEncoder(arg, device=device, oov=oov)


def _espnet(arg: str, *, device: str = "cpu", oov: str = "fail", **_) -> CTCEncoder:
    if not arg:
        raise ValueError("encoder 'espnet' needs a packed model zip or dir: espnet:<zip or dir>")
    from tasu.encoders.espnet import ESPnetEncoder

    return ESPnetEncoder(arg, device=device, oov=oov)


def _sensevoice(arg: str, *, device: str = "cpu", oov: str = "fail", **_) -> CTCEncoder:
    if not arg:
        raise ValueError("encoder 'sensevoice' needs a model dir: sensevoice:<model dir>")
    from tasu.encoders.sensevoice import SenseVoiceEncoder

    return SenseVoiceEncoder(arg, device=device, oov=oov)


# kind -> factory(arg, **options); one line per backend
FACTORIES: dict[str, Callable[..., CTCEncoder]] = {
    "hama": _hama,
    "hf": _hf,
    "espnet": _espnet,
    "sensevoice": _sensevoice,
}


def parse_spec(spec: str) -> tuple[str, str]:
    """``"hf:/models/w2v"`` -> ``("hf", "/models/w2v")``; ``"hama"`` -> ``("hama", "")``."""
    kind, _, arg = spec.partition(":")
    if kind not in FACTORIES:
        raise ValueError(f"unknown encoder {spec!r}; known: {', '.join(f'{k}[:<arg>]' for k in FACTORIES)}")
    return kind, arg


def build_encoder(spec: str = "hama", **options) -> CTCEncoder:
    """Encoder from a spec string (``hama``, ``hf:<dir or hub id>``).

    Options: ``lexicon`` (hama's G2P cache file), ``device`` (``cpu``/``cuda``; backends that
    run on torch), ``oov`` (``fail``/``drop``/``map``: text -> units policy for characters the
    encoder cannot write; see :mod:`tasu.encoders.hf`).
    """
    kind, arg = parse_spec(spec)
    return FACTORIES[kind](arg, **options)


__all__ = ["CTCEncoder", "FACTORIES", "build_encoder", "parse_spec"]
