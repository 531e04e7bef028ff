"""Build a SpeechLLM and load its trained weights: from a config, an exp dir, a packed model.

The one loading path of the toolkit: training (:func:`build_model`, :func:`load_init`),
decoding and inference (:func:`load_model`, which takes anything :func:`tasu.zoo.unpack`
takes) all come through here.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from tasu.config import DecodeConfig, TrainConfig, load_config
from tasu.kernels import set_compute_path
from tasu.llm import load_llm
from tasu.model import SpeechLLM
from tasu.projector import build_projector, projector_options
from tasu.prompt import PromptTemplate, set_template_mode
from tasu.runtime import llm_dtypes
from tasu.sparse import upgrade_state_dict
from tasu.units import UnitInventory
from tasu.zoo import Unpacked, ZooError, check_model_files, check_references, read_weights, unpack

log = logging.getLogger(__name__)


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.named_parameters() if v.requires_grad}


# config fields of LLMs whose forward changes the LM head's logits (SpeechLLM.forward, which
# computes logits at the answer positions only, would train on other logits than they decode with)
LOGIT_TRANSFORMS = {"final_logit_softcapping": None, "logit_scale": 1.0, "logits_scaling": 1.0}


def check_plain_logits(config, name: str) -> None:
    """An error for LLMs that soft-cap or scale their logits (Gemma-2/3, Cohere, Granite)."""
    for key, neutral in LOGIT_TRANSFORMS.items():
        value = getattr(config, key, neutral)
        if value is not None and value != neutral:
            raise ValueError(f"LLM {name!r}: its config sets {key}={value}, a change of the logits that "
                             "tasu's training loss does not apply; this model family is not supported")


def build_model(cfg: TrainConfig, inventory: UnitInventory, device: torch.device) -> SpeechLLM:
    """LLM (+ LoRA) and a freshly initialised projector, assembled into a SpeechLLM."""
    if cfg.finetune not in ("lora", "full", "none"):
        raise ValueError(f"finetune must be lora, full or none, got {cfg.finetune!r}")
    amp, weights = llm_dtypes(cfg, device)
    llm, tok = load_llm(cfg.llm, cfg.lora if cfg.finetune == "lora" else None, weights, full=cfg.finetune == "full")
    check_plain_logits(llm.config, cfg.llm)
    set_template_mode(tok, cfg.template, cfg.llm)  # plain: task prompts are plain too
    emb = llm.get_input_embeddings().weight  # the projector writes vectors of its size; some kinds read it
    proj = build_projector(cfg.projector.kind, inventory.size, emb.shape[1], embedding=emb,
                           **projector_options(cfg.projector, inventory.units, tok))
    template = PromptTemplate.build(tok, cfg.task_prompt, cfg.system_prompt, mode=cfg.template)
    pad = tok.pad_token_id if tok.pad_token_id is not None else template.eos_id  # GPT-2 style: no pad token
    model = SpeechLLM(llm, proj, template, pad, amp).to(device)
    model.tokenizer = tok
    set_compute_path(model, cfg.attention, cfg.fused_lora, cfg.share_prefix)
    return model


def load_trained_files(config: Path, units: Path, weights: Path, device: torch.device,
                       base: Path | None = None) -> tuple[SpeechLLM, TrainConfig, UnitInventory]:
    """Rebuild a trained SpeechLLM from its config, unit inventory and trainable weights.

    A relative ``llm`` path in the config that exists under ``base`` (an unpacked model
    dir holding its LLM) is taken from there.
    """
    for path in (config, units, weights):
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: missing")
    cfg = load_config(config)
    if base is not None and not Path(cfg.llm).is_absolute() and (Path(base) / cfg.llm).exists():
        cfg.llm = str(Path(base) / cfg.llm)
    inventory = UnitInventory.from_file(units)
    if cfg.amp == "bf16":
        # precision at inference is the machine's choice, not the model's (its trainable weights
        # are float32): bf16 where the device is fast at it, float32 elsewhere (llm_dtypes)
        cfg.amp = "auto"
    model = build_model(cfg, inventory, device)
    state = torch.load(weights, map_location=device)
    state = upgrade_state_dict(state.get("model", state), model)
    check_weights_fit(model, state, str(weights), cfg.llm)
    missing = set(trainable_state(model)) - set(state)
    if missing:
        raise RuntimeError(f"{weights}: lacks {len(missing)} trainable tensors, e.g. {sorted(missing)[0]}")
    model.load_state_dict(state, strict=False)  # copies (and casts 16-bit packed weights)
    model.eval()
    return model, cfg, inventory


def check_weights_fit(model: SpeechLLM, state: dict[str, torch.Tensor], where: str, llm: str) -> None:
    """Trained weights whose projector output size is not the LLM's embedding size (weights of a
    model built on another LLM) are an error saying so, before ``load_state_dict`` fails obscurely."""
    dim = model.base.get_input_embeddings().weight.shape[1]
    for k, p in sorted(model.named_parameters(), key=lambda kv: not kv[0].startswith("projector.")):
        theirs = state.get(k)
        if not p.requires_grad or not isinstance(theirs, torch.Tensor) or theirs.shape == p.shape:
            continue
        if theirs.dim() == p.dim():
            sizes = {int(b) for a, b in zip(p.shape, theirs.shape) if a == dim and b != dim}
            if sizes:
                kind = "projector output" if k.startswith("projector.") else "LoRA adapter"
                raise ValueError(f"{where}: {kind} size {sizes.pop()} does not match the embedding size {dim} "
                                 f"of the LLM {llm!r} ({k}: {tuple(theirs.shape)}, this model {tuple(p.shape)}); "
                                 "the weights were trained with another LLM: set llm: to that one")


def average_weights(files: list[str | os.PathLike[str]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of the trainable weights of ``files`` (``model.pt`` files or training
    checkpoints of one model), as icefall's and ESPnet's checkpoint averaging do.

    Every file must hold the same tensor names and shapes as the first (an error names the file
    and the tensor); the mean is taken in float64 and stored in the first file's dtypes. Tensors
    that are not floating point (none in tasu today) must be equal in every file.
    """
    if not files:
        raise ValueError("no weights files to average")
    first = read_weights(files[0])
    sums = {k: v.to(torch.float64) if v.is_floating_point() else v for k, v in first.items()
            if isinstance(v, torch.Tensor)}
    for f in files[1:]:
        state = read_weights(f)
        names = {k for k, v in state.items() if isinstance(v, torch.Tensor)}
        if names != set(sums):
            diff = sorted(names ^ set(sums))
            raise ValueError(f"{f}: holds other tensors than {files[0]} ({len(diff)} differ, e.g. {diff[0]}); "
                             "average checkpoints of one model only")
        for k, acc in sums.items():
            v = state[k]
            if v.shape != acc.shape:
                raise ValueError(f"{f}: {k} has shape {tuple(v.shape)}, {files[0]} {tuple(acc.shape)}")
            if acc.is_floating_point():
                acc += v.to(torch.float64)
            elif not torch.equal(v, acc):
                raise ValueError(f"{f}: {k} (dtype {v.dtype}) differs from {files[0]}'s and cannot be averaged")
    n = len(files)
    return {k: (acc / n).to(first[k].dtype) if acc.is_floating_point() else acc for k, acc in sums.items()}


def load_init(model: SpeechLLM, source: str, inventory: UnitInventory, llm: str = "",
              seed: int | None = None) -> None:
    """Start from another model's trainable weights (an exp dir, a packed zip or dir).

    Its unit inventory must be this one, and it must hold every trainable tensor of
    ``model`` with the same shape (same projector and LoRA settings). A ``seed`` equal to the
    one the init model was trained with is warned about: on the same text the run would draw the
    same batches again, in the same order (a stint that continues another must change the seed).
    """
    try:
        src = unpack(source)
        state = upgrade_state_dict(read_weights(src.model_file), model)
        their_seed = load_config(src.train_config).seed if seed is not None else None
    except (ZooError, OSError) as e:
        raise ValueError(f"init {source}: {e}") from None
    if seed is not None and their_seed == seed:
        log.warning("init %s was trained with seed %d, the seed of this run: on the same training text it would see "
                    "the same sentences in the same order again; continue a model with another seed "
                    "(--override seed=N)", source, seed)
    theirs = UnitInventory.from_file(src.units_file)
    if theirs.units != inventory.units:
        raise ValueError(f"init {source}: its unit inventory ({src.units_file}, {theirs.size} units) "
                         f"differs from this encoder's ({inventory.size} units)")
    check_weights_fit(model, state, f"init {src.model_file}", llm)
    mine = trainable_state(model)
    missing = sorted(set(mine) - set(state))
    if missing:
        raise ValueError(f"init {src.model_file}: lacks {len(missing)} trainable tensors, e.g. {missing[0]} "
                         "(another projector or LoRA setting?)")
    for k, v in mine.items():
        if state[k].shape != v.shape:
            raise ValueError(f"init {src.model_file}: {k} has shape {tuple(state[k].shape)}, this model "
                             f"{tuple(v.shape)} (another projector or LoRA setting?)")
    model.load_state_dict({k: state[k] for k in mine}, strict=False)
    log.info("initialised %d trainable tensors from %s", len(mine), src.model_file)


def load_model(source: str | os.PathLike[str] | Unpacked | None, device: torch.device | None = None,
               checkpoint: str | None = None) -> tuple[SpeechLLM, TrainConfig, UnitInventory, DecodeConfig]:
    """``(SpeechLLM, TrainConfig, UnitInventory, packed DecodeConfig)`` from anything
    :func:`tasu.zoo.unpack` takes, or what it returned (``checkpoint``: another weights file of
    an exp dir).
    Errors (ZooError, ValueError, OSError, RuntimeError) name the file; the model files are
    checked before the LLM is loaded. Use it through :class:`tasu.inference.Speech2Text`."""
    u = source if isinstance(source, Unpacked) else unpack(source, checkpoint=checkpoint)
    check_model_files(u.train_config, u.units_file, u.model_file)  # fail before the LLM is loaded
    dcfg = load_config(u.decode_config, DecodeConfig) if u.decode_config else DecodeConfig()
    model, cfg, inv = load_trained_files(u.train_config, u.units_file, u.model_file,
                                         device or torch.device("cpu"), base=u.root)
    for w in check_references(u.meta, cfg.llm):
        log.warning("%s", w)
    return model, cfg, inv, dcfg
