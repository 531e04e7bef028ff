"""HuggingFace transformers CTC models (``Wav2Vec2ForCTC``, ``HubertForCTC``, ...) as encoders.

``hf:<dir or hub id>`` loads ``AutoModelForCTC`` with the dir's feature extractor and
tokenizer (a ``save_pretrained`` dir: ``config.json``, weights, ``preprocessor_config.json``,
``vocab.json`` + ``tokenizer_config.json``). A hub id goes through ``from_pretrained`` (and
its cache); offline, download the model elsewhere and point at the dir.

Units are the tokenizer's tokens in id order, one per column of the CTC head, with two
renamed so that a ``units.txt`` carries their roles: the pad token (the CTC blank, wav2vec2
convention ``config.pad_token_id``) is ``<blank>`` and the word delimiter (``|``), when the
vocabulary has one, is ``<wb>``.

Text -> units writes the text character by character with the tokenizer's vocabulary, as
``Wav2Vec2CTCTokenizer`` does (spaces -> word delimiter), after folding to the vocabulary's
case (upper-case vocabularies get upper-case text). A character the vocabulary lacks follows
the ``oov`` policy:

- ``fail``: :class:`OOVError` naming the character, its position and the utterance/line;
- ``drop``: left out and counted in :attr:`HFCTCEncoder.oov_counts`;
- ``map``: its accent-stripped form when the vocabulary has that (``é`` -> ``e``), else the
  tokenizer's unk token; counted too (fails when there is neither).
"""
from __future__ import annotations

import logging
import unicodedata
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from tasu.encoders.base import (
    BatchCTCEncoder,
    CTCEncoder,
    EncoderError,
    check_oov_policy,
    resample,
    resolve_device,
)
from tasu.units import UnitInventory

log = logging.getLogger(__name__)

BLANK, WB = "<blank>", "<wb>"


class OOVError(EncoderError):
    """A character of a transcript that the encoder's vocabulary cannot write (``oov: fail``)."""


def _import_transformers():
    try:
        import torch  # noqa: F401
        import transformers
    except ImportError as e:  # pragma: no cover - exercised only without the package
        raise ImportError("the hf encoder needs HuggingFace transformers: pip install transformers") from e
    return transformers


def _looks_like_path(name: str) -> bool:
    """A local path rather than a hub id (``owner/name`` or ``name``)."""
    return name.startswith(("/", ".", "~")) or name.strip("/").count("/") > 1 or "\\" in name


@contextmanager
def _quiet(transformers) -> Iterator[None]:
    """Silence transformers' load reports and progress bars while loading."""
    tl = transformers.utils.logging
    level = tl.get_verbosity()
    bars = tl.is_progress_bar_enabled()
    tl.set_verbosity_error()
    tl.disable_progress_bar()
    try:
        yield
    finally:
        tl.set_verbosity(level)
        if bars:
            tl.enable_progress_bar()


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


class HFCTCEncoder(BatchCTCEncoder):
    """A transformers ``*ForCTC`` model, its feature extractor and its (character) tokenizer."""

    def __init__(self, name: str, device: str = "cpu", oov: str = "fail") -> None:
        transformers = _import_transformers()
        self.name, self.oov = name, check_oov_policy(oov)
        self.oov_counts: Counter[str] = Counter()
        self.device = resolve_device(device)
        src = self._source(name)
        with _quiet(transformers):
            self.model = self._load_model(transformers, src)
            self.tokenizer = self._load_part(transformers.AutoTokenizer, src, "tokenizer",
                                             "vocab.json, tokenizer_config.json")
            self.feature_extractor = self._load_part(transformers.AutoFeatureExtractor, src, "feature extractor",
                                                     "preprocessor_config.json")
        self.model.to(self.device).eval()
        self.sample_rate = int(getattr(self.feature_extractor, "sampling_rate", 16000))
        self._use_mask = bool(getattr(self.feature_extractor, "return_attention_mask", False))
        self._build_inventory()

    # -- loading ---------------------------------------------------------------------------
    def _source(self, name: str) -> str:
        """The local dir (checked) or the hub id to load from."""
        p = Path(name).expanduser()
        if p.exists():
            if not p.is_dir():
                raise EncoderError(f"{p}: not a model directory (expected a transformers save_pretrained dir)")
            if not (p / "config.json").is_file():
                raise EncoderError(f"{p / 'config.json'}: missing; is {p} a transformers model dir (save_pretrained)?")
            return str(p)
        if _looks_like_path(name):
            raise EncoderError(f"{name}: encoder model directory does not exist")
        return name

    def _hub_hint(self, src: str) -> str:
        if Path(src).is_dir():
            return ""
        return (f" ({src} is no local dir, so it was looked up as a hub id and could not be found or "
                f"downloaded; offline, download it where there is internet, e.g. `huggingface-cli download {src} "
                f"--local-dir DIR`, and use --encoder hf:DIR)")

    def _load_model(self, transformers, src: str):
        try:
            config = transformers.AutoConfig.from_pretrained(src)
        except (OSError, ValueError, KeyError) as e:
            raise EncoderError(f"{src}: cannot load the model config: {_first_line(e)}{self._hub_hint(src)}") from e
        archs = list(getattr(config, "architectures", None) or [])
        if archs and not any(a.endswith("ForCTC") for a in archs):
            raise EncoderError(f"{src}: the model ({', '.join(archs)}) has no CTC head; the hf encoder needs a "
                               "CTC fine-tuned model (architectures *ForCTC, e.g. Wav2Vec2ForCTC)")
        try:
            model, info = transformers.AutoModelForCTC.from_pretrained(src, output_loading_info=True)
        except ValueError as e:
            if "Unrecognized configuration class" in str(e):
                raise EncoderError(f"{src}: model type {config.model_type!r} has no CTC head class in transformers "
                                   f"{transformers.__version__} (AutoModelForCTC)") from e
            raise EncoderError(f"{src}: cannot load the CTC model: {_first_line(e)}") from e
        except OSError as e:
            raise EncoderError(f"{src}: cannot load the CTC model weights: {_first_line(e)}"
                               f"{self._hub_hint(src)}") from e
        missing = sorted(info.get("missing_keys") or [])
        head = [k for k in missing if k.startswith("lm_head")]
        if head:
            raise EncoderError(f"{src}: the checkpoint has no CTC head weights ({', '.join(head)} missing): "
                               "not a CTC fine-tuned model")
        if missing:
            log.warning("%s: %d weights missing from the checkpoint, randomly initialised: %s", src, len(missing),
                        ", ".join(missing[:5]))
        return model

    def _load_part(self, auto, src: str, what: str, files: str):
        try:
            return auto.from_pretrained(src)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise EncoderError(f"{src}: cannot load the {what} (needs {files}): {_first_line(e)}"
                               f"{self._hub_hint(src)}") from e

    def _build_inventory(self) -> None:
        tok, cfg = self.tokenizer, self.model.config
        n_out = int(self.model.lm_head.out_features) if hasattr(self.model, "lm_head") else int(cfg.vocab_size)
        if len(tok) > n_out:
            raise EncoderError(f"{self.name}: the tokenizer has {len(tok)} tokens but the CTC head only "
                               f"{n_out} outputs")
        tokens = list(tok.convert_ids_to_tokens(list(range(len(tok)))))
        if len(tokens) < n_out:
            log.warning("%s: the CTC head has %d outputs, the tokenizer %d tokens; the rest are named <unused:i>",
                        self.name, n_out, len(tokens))
            tokens += [f"<unused:{i}>" for i in range(len(tokens), n_out)]
        blank_id = cfg.pad_token_id if cfg.pad_token_id is not None else tok.pad_token_id
        if blank_id is None or not 0 <= blank_id < n_out:
            raise EncoderError(f"{self.name}: no pad token id (config.pad_token_id) to serve as the CTC blank")
        if tok.pad_token_id is not None and tok.pad_token_id != blank_id:
            log.warning("%s: config.pad_token_id %d (the blank) differs from the tokenizer's pad token id %d",
                        self.name, blank_id, tok.pad_token_id)
        delim = getattr(tok, "word_delimiter_token", None)
        wb_id = tok.convert_tokens_to_ids(delim) if delim is not None and delim in tok.get_vocab() else None
        self.tokens = tuple(tokens)  # the tokenizer's own names
        units = list(tokens)
        for i, name in enumerate(units):
            if name in (BLANK, WB) and i not in (blank_id, wb_id):
                raise EncoderError(f"{self.name}: vocabulary token {name!r} (id {i}) clashes with the name of "
                                   f"the {'blank' if name == BLANK else 'word boundary'} unit")
        units[blank_id] = BLANK
        if wb_id is not None:
            units[wb_id] = WB
        self.inventory = UnitInventory(tuple(units), BLANK, WB if wb_id is not None else None)
        special = set(tok.all_special_tokens)
        self._chars = {t: i for i, t in enumerate(tokens) if len(t) == 1 and i not in (blank_id, wb_id)
                       and t not in special and not t.isspace()}
        letters = [c for c in self._chars if c.isalpha() and c.lower() != c.upper()]
        self._case = ("upper" if letters and all(c.isupper() for c in letters) else
                      "lower" if letters and all(c.islower() for c in letters) else None)
        unk = tok.unk_token
        self._unk_id = tok.convert_tokens_to_ids(unk) if unk is not None and unk in tok.get_vocab() else None
        if self.oov == "map" and self._unk_id is None:
            log.warning("%s: oov=map but the tokenizer has no unk token: only accent-stripped characters "
                        "can be mapped, others fail", self.name)

    # -- audio -----------------------------------------------------------------------------
    def _features(self, wave: np.ndarray, sample_rate: int) -> np.ndarray:
        wave = np.asarray(wave, dtype=np.float32)
        if wave.ndim != 1:
            raise ValueError(f"expected mono audio, got shape {wave.shape}")
        wave = resample(wave, sample_rate, self.sample_rate)
        feats = self.feature_extractor(wave, sampling_rate=self.sample_rate, return_tensors="np")
        return np.asarray(feats["input_values"][0], dtype=np.float32)


    def log_posteriors_batch(self, waves: Sequence[np.ndarray], sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
        """One forward pass over the zero-padded batch.

        Each wave is normalised by the feature extractor on its own (as unbatched); the
        attention mask is passed when the feature extractor asks for one (layer-norm feature
        encoders: batched == one by one). Models without it (group-norm wav2vec2-base) would
        see the zero padding in their normalisation statistics, so an utterance's posteriors
        would depend on its batch neighbours: those run one utterance at a time.
        """
        import torch

        if not self._use_mask and len(waves) > 1:
            return CTCEncoder.log_posteriors_batch(self, waves, sample_rate)  # one by one, then zero-padded
        feats = [self._features(w, sample_rate) for w in waves]
        if not feats:
            return np.zeros((0, 0, self.inventory.size), np.float32), np.zeros(0, np.int64)
        n_samples = torch.tensor([len(f) for f in feats], dtype=torch.long)
        lengths = self.model._get_feat_extract_output_lengths(n_samples).long().clamp(min=0)
        # at least one frame's worth of samples, so that the convolutions run on short input
        min_len = 1
        while int(self.model._get_feat_extract_output_lengths(torch.tensor([min_len]))[0]) < 1:
            min_len *= 2
        S = max(int(n_samples.max()), min_len)
        x = torch.zeros(len(feats), S)
        mask = torch.zeros(len(feats), S, dtype=torch.long)
        for b, f in enumerate(feats):
            x[b, : len(f)] = torch.from_numpy(f)
            mask[b, : len(f)] = 1
        with torch.inference_mode():
            am = mask.to(self.device) if self._use_mask else None
            logits = self.model(x.to(self.device), attention_mask=am).logits
            lp = torch.log_softmax(logits.float(), dim=-1).cpu().numpy()
        lengths = lengths.clamp(max=lp.shape[1]).numpy().astype(np.int64)
        lp[np.arange(lp.shape[1])[None, :] >= lengths[:, None]] = 0.0
        return lp, lengths

    # -- text ------------------------------------------------------------------------------
    def _fold(self, c: str) -> str:
        return c.upper() if self._case == "upper" else c.lower() if self._case == "lower" else c

    def _oov(self, c: str, pos: int, text: str) -> list[int]:
        """Token ids for a character the vocabulary lacks, by the ``oov`` policy."""
        if self.oov == "drop":
            self.oov_counts[c] += 1
            return []
        if self.oov == "map":
            base = self._fold("".join(x for x in unicodedata.normalize("NFKD", c) if not unicodedata.combining(x)))
            if base and base != c and all(y in self._chars for y in base):
                self.oov_counts[c] += 1
                return [self._chars[y] for y in base]
            if self._unk_id is not None:
                self.oov_counts[c] += 1
                return [self._unk_id]
        raise OOVError(f"character {c!r} (U+{ord(c):04X}) at position {pos} of {text!r} is not in the "
                       f"vocabulary of encoder hf:{self.name} (oov policy {self.oov!r}; 'drop' leaves such "
                       "characters out with a count, 'map' maps them to the unk token)")

    def text_to_ids(self, text: str) -> list[int]:
        """Token ids of ``text`` (positions in errors are 1-based characters of ``text``)."""
        ids: list[int] = []
        gap = False
        for pos, ch in enumerate(text, 1):
            if ch.isspace():
                gap = bool(ids)
                continue
            folded = self._fold(ch)
            if folded and all(c in self._chars for c in folded):
                new = [self._chars[c] for c in folded]
            else:
                new = self._oov(ch, pos, text)
            if new:
                if gap and self.inventory.wb_id is not None:
                    ids.append(self.inventory.wb_id)
                gap = False
                ids += new
        return ids

    def text_to_units(self, text: str) -> list[str]:
        units = self.inventory.units
        return [units[i] for i in self.text_to_ids(text)]

    def normalize(self, text: str) -> str:
        """``text`` as the vocabulary writes it (case folded, spaces collapsed; OOV characters not handled)."""
        return " ".join(self._fold(w) for w in text.split())

    def spellings(self, lexicon: Path | None = None) -> dict[str, dict[str, int]]:
        """A character unit is spelled by itself (lower-cased); other units have no spelling."""
        return {self.inventory.units[i]: {c.lower(): 1} for c, i in self._chars.items() if c.isprintable()}
