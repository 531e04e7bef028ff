"""Speech -> answers with a trained model: the toolkit's one inference API.

::

    from tasu.inference import Speech2Text
    s2t = Speech2Text.from_pretrained()            # the shipped model; or a zip, model dir, exp dir, hub id
    print(s2t(["a.wav", "b.flac"]))                 # -> ["answer of a", "answer of b"]

:class:`Speech2Text` holds the pipeline written out once: audio (any sample rate, mono or
not) -> CTC encoder -> PSD -> projector + LLM with the task's prompt -> (acoustic n-best
rescoring when the decoding config asks for it) -> answers. It also takes PSD posteriors
directly (:meth:`Speech2Text.decode_posteriors`, what stage 4 reads from ``dump/``).
``tasu-infer`` and ``tasu.bin.decode`` are loops over it.
"""
from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch

from tasu.config import DecodeConfig, TrainConfig, check_rescoring, load_config
from tasu.decode import decode_posteriors, decode_texts, timed
from tasu.model import SpeechLLM
from tasu.modelio import load_model
from tasu.prompt import PromptTemplate
from tasu.psd import psd_compress
from tasu.rescore import make_rescorer, units_function
from tasu.units import UnitInventory
from tasu.zoo import unpack

log = logging.getLogger(__name__)

#: a waveform (with a sample rate) or an audio file
Audio = np.ndarray | str | os.PathLike
#: hotwords: a list file (tasu.hotwords), words/phrases at the default score, or {phrase: score}
HotwordSource = str | os.PathLike | Sequence[str] | Mapping[str, float] | None
#: per-utterance hotwords: a ``<utt-id> w1 w2 ...`` file or {utt-id: words or {word: score}}
UttHotwordSource = str | os.PathLike | Mapping[str, Sequence[str] | Mapping[str, float]] | None


@dataclass
class Answer:
    """One input's answer; ``nbest``: the beam's answers with their LLM log-probabilities, best
    first by that score (filled when the answer was re-ranked by acoustic fit, else empty)."""

    text: str
    nbest: list[tuple[str, float]] = field(default_factory=list)
    n_rows: int = 0  # PSD rows the LLM read (0: no speech after PSD, the answer is empty)


class Speech2Text:
    """A trained TASU model ready to answer: ``Speech2Text.from_pretrained(source)(waves)``.

    ``model``, ``train_config``, ``inventory``: what :func:`tasu.modelio.load_model` returns;
    ``decode_config``: beam, batch, PSD threshold, guards, rescoring (:class:`DecodeConfig`);
    ``encoder``: a :class:`tasu.encoders.CTCEncoder` or a spec (built on first use: decoding
    dumped posteriors without rescoring never loads it); ``task``: a task registry entry
    (:mod:`tasu.tasks`) whose prompt replaces the model's own; ``vocabulary``: words the answers
    are restricted to; ``lexicon``: pronunciations the rescorer starts from (a copy it may add
    words to: the file is written); ``training_lexicon``: the training text's lexicon, read only,
    whose words n-best expansion proposes (default: ``lexicon`` as it is when first needed); the
    rescorer starts from a private copy of it when no ``lexicon`` is given. A model packed with
    its lexicon (stage 6) gives it by default (:meth:`from_pretrained`). ``hotwords``,
    ``hotwords_per_utt``: words and phrases to favour (:mod:`tasu.hotwords`: a file or a list, and
    lists per input key), no training needed; they need a decoding config with ``acoustic_weight`` > 0.
    """

    def __init__(self, model: SpeechLLM, train_config: TrainConfig, inventory: UnitInventory,
                 decode_config: DecodeConfig | None = None, *, encoder=None, task=None,
                 vocabulary: Sequence[str] | None = None, lexicon: str | os.PathLike[str] | None = None,
                 training_lexicon: str | os.PathLike[str] | None = None,
                 encoder_device: str | None = None, where: object = "the decoding config",
                 hotwords: HotwordSource = None, hotwords_per_utt: UttHotwordSource = None) -> None:
        self.model, self.train_config, self.inventory = model, train_config, inventory
        self.decode_config = decode_config or DecodeConfig()
        check_rescoring(self.decode_config, self.decode_config.num_beams, where)  # ValueError naming `where`
        self._encoder = encoder if encoder is not None else train_config.encoder
        self._encoder_device = encoder_device or str(model.device)
        self._lexicon = Path(lexicon) if lexicon is not None else None
        self._training_lexicon = Path(training_lexicon) if training_lexicon is not None else None
        self._scratch: tempfile.TemporaryDirectory | None = None  # the private copy of training_lexicon
        self._rescorer: Callable | None = None
        self._units_of: Callable | None = None
        self._expander: Callable | None = None
        #: seconds spent so far by stage (``encoder``, and decoding's: :func:`tasu.decode.decode_posteriors`)
        self.timings: dict[str, float] = {}
        self._merged = False  # LoRA folded into the LLM's weights (decode_config.merge_lora), on first use
        self.task = task
        # a task with prompt fields ({question}...) gets its prompt per input (the fields= arguments)
        self.template: PromptTemplate | None = (task.template(model.tokenizer)
                                                if task is not None and not task.fields else None)
        self._biasing = None
        self._hotwords, self._hotwords_per_utt = self._read_hotwords(hotwords, hotwords_per_utt)
        if (self._hotwords or self._hotwords_per_utt) and self.decode_config.acoustic_weight <= 0:
            raise ValueError(f"{where}: hotwords act through the rescorer (proposals and a bonus among the "
                             "answers it chooses from): use a decoding config with acoustic_weight > 0, such as "
                             "the shipped model's")
        self.constraint = None
        if vocabulary:
            from tasu.constrain import VocabularyConstraint

            self.constraint = VocabularyConstraint(model.tokenizer, list(vocabulary), model.template.eos_id)

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike[str] | None = None, *, device: str | torch.device = "cpu",
                        decode_config: DecodeConfig | str | os.PathLike[str] | None = None,
                        checkpoint: str | None = None, options: dict | None = None, **kwargs) -> Speech2Text:
        """Load from a packed zip, an unpacked model dir, an exp dir or a hub id (None: the shipped model).

        ``decode_config``: a :class:`DecodeConfig` or a YAML file; default: the one packed with
        the model (an exp dir has none: :class:`DecodeConfig`'s defaults). ``options``: decoding
        settings that override it (``{"num_beams": 4}``; None values are ignored).
        ``checkpoint``: in an exp dir, the weights file to use instead of ``model.pt``. Other
        keywords go to the constructor (``encoder``, ``task``, ``vocabulary``, ``lexicon``,
        ``training_lexicon``, ``where``: how errors about the decoding config name it). A model
        packed with its training lexicon is its ``training_lexicon`` unless one is given.
        Errors name the file: ValueError (a config), ZooError/OSError/RuntimeError (the model).
        """
        where = kwargs.pop("where", None)
        unknown = sorted(set(options or {}) - {f.name for f in fields(DecodeConfig)})
        if unknown:  # before the model is loaded
            raise ValueError(f"options: unknown decoding key(s) {', '.join(unknown)} "
                             f"(known: {', '.join(f.name for f in fields(DecodeConfig))})")
        if isinstance(decode_config, (str, os.PathLike)):
            where = where or decode_config
            decode_config = load_config(Path(decode_config), DecodeConfig)
        files = unpack(source, checkpoint=checkpoint)
        model, cfg, inv, packed = load_model(files, torch.device(device))
        if files.lexicon_file is not None and kwargs.get("training_lexicon") is None:
            kwargs["training_lexicon"] = files.lexicon_file
        if decode_config is None:
            decode_config = packed
            where = where or f"{source or 'the shipped model'}: its decode config"
        if options:
            decode_config = replace(decode_config, **{k: v for k, v in options.items() if v is not None})
        return cls(model, cfg, inv, decode_config, where=where or "the decoding config", **kwargs)

    # -- parts built on first use ------------------------------------------------------------
    @property
    def encoder(self):
        """The CTC encoder (built from its spec on first use; text it cannot write is dropped)."""
        if isinstance(self._encoder, str):
            from tasu.encoders import build_encoder

            if self._lexicon is None and self._training_lexicon is not None:  # its G2P cache is written
                import shutil

                self._scratch = tempfile.TemporaryDirectory(prefix="tasu-lexicon-")  # removed with this object
                self._lexicon = Path(shutil.copyfile(self._training_lexicon, Path(self._scratch.name) / "lexicon.txt"))

            enc = build_encoder(self._encoder, device=self._encoder_device, lexicon=self._lexicon, oov="drop")
            if enc.inventory.units != self.inventory.units:
                raise ValueError(f"encoder {self._encoder!r} has another unit inventory ({enc.inventory.size} units) "
                                 f"than the model was trained on ({self.inventory.size} units)")
            self._encoder = enc
        return self._encoder

    @property
    def rescorer(self) -> Callable[[np.ndarray, list[tuple[str, float]]], int] | None:
        """Re-ranking of the beam's answers by acoustic fit (None when ``acoustic_weight`` is 0)."""
        d = self.decode_config
        if d.acoustic_weight > 0 and self._rescorer is None:
            self._rescorer = make_rescorer(self.units_of, d.acoustic_weight, d.align_insert_cost, d.align_delete_cost,
                                           self.inventory.wb_id, d.align_wb_cost)
        return self._rescorer

    @property
    def training_lexicon(self) -> Path | None:
        """The lexicon whose words n-best expansion proposes (None: none given or packed)."""
        return self._training_lexicon or self._lexicon

    @property
    def units_of(self) -> Callable[[str], list[int]]:
        """``text -> unit ids`` of the model's inventory (the encoder's G2P, cached)."""
        if self._units_of is None:
            self._units_of = units_function(self.encoder, self.inventory.index())
        return self._units_of

    @property
    def expander(self) -> Callable[[np.ndarray, str], list[str]] | None:
        """New answers by lexicon neighbours (:mod:`tasu.expand`; None when ``expand_per_span`` is 0).
        The words come from ``lexicon`` as it is when first asked for: the training lexicon."""
        d = self.decode_config
        if d.expand_per_span > 0 and self._expander is None:
            from tasu.expand import LexiconNeighbours, propose

            words = self.training_lexicon
            if words is None:
                raise ValueError(f"expand_per_span {d.expand_per_span}: n-best expansion proposes words of the "
                                 "training lexicon: give it (training_lexicon=, --lexicon), or use a model "
                                 "packed with its lexicon")
            nb = LexiconNeighbours.from_lexicon(words, self.inventory.index())
            units_of, wb = self.units_of, self.inventory.wb_id

            def expander(rows: np.ndarray, text: str) -> list[str]:
                return propose(text.split(), rows, units_of, nb, d.align_insert_cost, d.align_delete_cost,
                               d.expand_margin, per_span=d.expand_per_span, max_answers=d.expand_max,
                               wb=wb, wb_cost=d.align_wb_cost)
            self._expander = expander
        return self._expander

    def _read_hotwords(self, hotwords: HotwordSource, per_utt: UttHotwordSource
                       ) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
        from tasu.hotwords import read_hotwords, read_utt_hotwords

        score = self.decode_config.hotword_score
        if isinstance(hotwords, (str, os.PathLike)):
            hotwords = read_hotwords(hotwords, score)
        elif isinstance(hotwords, Mapping):
            hotwords = {" ".join(str(k).split()): float(v) for k, v in hotwords.items()}
        elif hotwords is not None:
            hotwords = {" ".join(str(k).split()): score for k in hotwords}
        if isinstance(per_utt, (str, os.PathLike)):
            per_utt = read_utt_hotwords(per_utt, score)
        elif per_utt is not None:
            per_utt = {u: dict(ws) if isinstance(ws, Mapping) else {w: score for w in ws} for u, ws in per_utt.items()}
        return {k: v for k, v in (hotwords or {}).items() if k}, per_utt or {}

    @property
    def biasing(self):
        """The hotword lists as decoding uses them (:class:`tasu.hotwords.Biasing`; None: no list)."""
        if self._biasing is None and (self._hotwords or self._hotwords_per_utt):
            from tasu.hotwords import Biasing

            d = self.decode_config
            self._biasing = Biasing(self.units_of, self._hotwords, self._hotwords_per_utt, self.inventory.wb_id,
                                    d.align_insert_cost, d.align_delete_cost, d.align_wb_cost, d.hotword_margin,
                                    d.hotword_max_edits, max_answers=d.hotword_max)
        return self._biasing

    def _adapted(self) -> None:
        """Before answering with the adapters: fold them into the LLM once (``merge_lora``)."""
        if self.decode_config.merge_lora and not self._merged:
            from tasu.llm import merge_adapters

            n = merge_adapters(self.model.llm)
            self._merged = True
            if n:
                log.info("merged the LoRA adapters of %d layers into the LLM's weights (merge_lora)", n)

    # -- the pipeline ---------------------------------------------------------------------------
    def posteriors(self, wave: np.ndarray, sample_rate: int) -> np.ndarray:
        """``[samples]`` or ``[samples, channels]`` (as soundfile reads audio) at any rate ->
        ``[T', V]`` PSD rows (T' may be 0)."""
        wave = np.asarray(wave, dtype=np.float32)
        if wave.ndim == 2 and wave.shape[1] <= 8 < wave.shape[0]:  # channels last: downmix
            wave = wave.mean(axis=1)
        elif wave.ndim != 1:
            raise ValueError(f"expected a waveform of shape [samples] or [samples, channels], got {wave.shape}")
        enc = self.encoder
        with timed(self.timings, "encoder"):
            return psd_compress(enc.log_posteriors(wave, sample_rate), self.inventory.blank_id,
                                self.decode_config.psd_threshold)

    def _templates(self, keys: Iterable[str], fields: Mapping[str, Mapping[str, str]] | None):
        """The prompt of each key: the task's (or the model's) one, or per key for a task with fields."""
        if self.task is None or not self.task.fields:
            return self.template
        if fields is None:
            raise ValueError(f"task {self.task.name!r} asks {', '.join('{' + f + '}' for f in self.task.fields)} "
                             "in its prompt: give fields={key: {field: text}}")
        missing = [k for k in keys if k not in fields]
        if missing:
            raise ValueError(f"task {self.task.name!r}: no prompt fields for input {missing[0]!r}")
        return self.task.utterance_templates(self.model.tokenizer, {k: fields[k] for k in keys})

    def decode_posteriors(self, items: Iterable[tuple[str, np.ndarray]], progress=None,
                          fields: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, Answer]:
        """``(key, [T', V] PSD rows)`` pairs -> ``{key: Answer}``; an input with no rows gets ``""``.
        ``fields``: ``{key: {field: text}}``, the prompt fields of a task that has them. An input
        longer than ``segment_rows`` is read in pieces (:mod:`tasu.segment`); its answer joins
        theirs, and its ``nbest`` is empty."""
        d = self.decode_config
        items = list(items)
        speech = [(k, m) for k, m in items if m.shape[0] > 0]
        template = self._templates([k for k, _ in speech], fields)
        pieces, owner = self._pieces(speech)
        biasing = self.biasing
        if owner:  # piece keys -> their input's prompt, hotword list
            if isinstance(template, Mapping):
                template = {p: template[owner.get(p, p)] for p, _ in pieces}
            if biasing is not None:
                biasing = _PieceBiasing(biasing, owner)
        bar = progress if not owner or progress is None else _PieceProgress(progress, len(speech) / len(pieces))
        nbest: dict[str, list[tuple[str, float]]] | None = {} if self.rescorer is not None else None
        self._adapted()
        with torch.inference_mode():
            hyps = decode_posteriors(self.model, pieces, d.batch_size, d.max_new_tokens, d.num_beams, bar,
                                     self.constraint, template, self.rescorer, nbest, d.guard(), self.expander,
                                     d.expand_rounds, d.prior_weight, biasing, self.timings)
        if progress is not None and len(speech) < len(items):
            progress.update(len(items) - len(speech))
        parts: dict[str, list[str]] = {}
        for p, k in owner.items():  # in piece order
            parts.setdefault(k, []).append(hyps.pop(p))
            if nbest is not None:
                nbest.pop(p, None)
        hyps.update((k, " ".join(t for t in texts if t)) for k, texts in parts.items())
        return {k: Answer(hyps.get(k, ""), (nbest or {}).get(k, []), int(m.shape[0])) for k, m in items}

    def _pieces(self, speech: list[tuple[str, np.ndarray]]
                ) -> tuple[list[tuple[str, np.ndarray]], dict[str, str]]:
        """The inputs as the LLM reads them: whole, or in pieces of at most ``segment_rows`` rows
        (keys ``<key>\x00<n>``); and ``{piece key: input key}`` of the pieces."""
        from tasu.segment import segment_bounds, splits_answers

        d = self.decode_config
        if d.segment_rows <= 0 or not splits_answers(self.task):
            return speech, {}
        out, owner = [], {}
        for k, m in speech:
            bounds = segment_bounds(m, self.inventory.wb_id, d.segment_rows)
            if len(bounds) == 1:
                out.append((k, m))
                continue
            for j, (a, b) in enumerate(bounds):
                owner[f"{k}\x00{j}"] = k
                out.append((f"{k}\x00{j}", m[a:b]))
        return out, owner

    def answers(self, inputs: Sequence[Audio], sample_rate: int | None = None,
                fields: Sequence[Mapping[str, str]] | None = None) -> list[Answer]:
        """Waveforms (with ``sample_rate``) or audio file paths -> one :class:`Answer` each, in order
        (``fields``: one ``{field: text}`` per input, for a task with prompt fields)."""
        items = []
        for i, x in enumerate(inputs):
            if isinstance(x, (str, os.PathLike)):
                from tasu.audio import read_audio

                wave, sr = read_audio(str(x))
            else:
                if sample_rate is None:
                    raise ValueError("waveform inputs need sample_rate=")
                wave, sr = x, sample_rate
            items.append((str(i), self.posteriors(wave, sr)))
        per_key = None if fields is None else {str(i): f for i, f in enumerate(fields)}
        out = self.decode_posteriors(items, fields=per_key)
        return [out[str(i)] for i in range(len(items))]

    def __call__(self, inputs: Sequence[Audio], sample_rate: int | None = None) -> list[str]:
        """Waveforms or audio files -> answer texts, in order."""
        return [a.text for a in self.answers(inputs, sample_rate)]

    def decode_texts(self, texts: dict[str, str], adapters: bool = True, progress=None,
                     fields: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, str]:
        """The cascade baseline: ``{key: text}`` read by the LLM in place of the speech
        (``adapters=False``: the bare LLM, LoRA off, as a plain text cascade)."""
        from contextlib import nullcontext

        d = self.decode_config
        llm = self.model.llm
        if adapters:
            self._adapted()
        off = llm.disable_adapter() if not adapters and hasattr(llm, "disable_adapter") else nullcontext()
        with off, torch.inference_mode():
            return decode_texts(self.model, texts, d.batch_size, d.max_new_tokens, d.num_beams, progress,
                                self._templates(texts, fields))


class _PieceBiasing:
    """A hotword list seen from the pieces of long inputs: each piece gets its input's list."""

    def __init__(self, inner, owner: Mapping[str, str]) -> None:
        self.inner, self.owner = inner, owner

    def propose(self, uid: str, rows: np.ndarray, text: str) -> list[str]:
        return self.inner.propose(self.owner.get(uid, uid), rows, text)

    def bonus(self, uid: str, text: str) -> float:
        return self.inner.bonus(self.owner.get(uid, uid), text)


class _PieceProgress:
    """A progress bar counting inputs while decoding counts pieces (``ratio``: inputs a piece)."""

    def __init__(self, bar, ratio: float) -> None:
        self.bar, self.ratio, self.done = bar, ratio, 0.0

    def update(self, n: float) -> None:
        before = round(self.done)
        self.done += n * self.ratio
        if round(self.done) > before:
            self.bar.update(round(self.done) - before)
