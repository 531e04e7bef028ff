"""How the LLM computes, not what: its attention kernel, LoRA layers without dtype round trips,
and compiled decoder layers. Each choice gives the same function (within bf16 rounding); they
are chosen for speed (measured by ``python -m tasu.bin.benchmark --compare``).
"""
from __future__ import annotations

import logging
import types

import torch
from torch import nn
from torch.nn import functional as F

log = logging.getLogger(__name__)

ATTENTION_CHOICES = ("auto", "eager", "sdpa")


def attention_kind(name: str, device: torch.device) -> str:
    """``auto`` -> ``eager`` on the CPU, ``sdpa`` elsewhere. On a 2-core CPU, torch's fused
    attention kernel (sdpa) is slow to differentiate at the lengths tasu trains on (about 100
    positions): a training step of the open_en model took 1.27x as long with it as with plain
    matmul attention (egs/open_en/RESULTS.md). On a GPU the fused kernel is the fast one."""
    if name not in ATTENTION_CHOICES:
        raise ValueError(f"attention must be one of {', '.join(ATTENTION_CHOICES)}, got {name!r}")
    if name == "auto":
        return "eager" if torch.device(device).type == "cpu" else "sdpa"
    return name


def set_attention(llm: nn.Module, name: str, device: torch.device) -> str:
    """Switch ``llm``'s attention implementation (a transformers model, peft-wrapped or not);
    returns the one in use. Models that cannot switch keep theirs (logged)."""
    kind = attention_kind(name, device)
    base = llm.get_base_model() if hasattr(llm, "get_base_model") else llm
    try:
        base.set_attn_implementation(kind)
    except (AttributeError, ValueError, ImportError) as e:
        log.warning("attention: %s not available for %s (%s); keeping %s", kind, type(base).__name__, e,
                    getattr(base.config, "_attn_implementation", "?"))
        return getattr(base.config, "_attn_implementation", "?")
    return kind


def _lora_forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    """A peft LoRA ``Linear`` with one plain adapter: ``base(x) + B (s A x)``, computed in the
    input's dtype under autocast. peft's own forward casts ``x`` to the adapter's float32 and
    scales the wide output (``out_features`` a row) by ``s``; here the scale goes on the rank-r
    middle and ``x`` is cast only where no autocast does it (inside one, to its dtype anyway)."""
    if self.disable_adapters or self.merged or args or kwargs or len(self.active_adapters) != 1:
        return type(self).forward(self, x, *args, **kwargs)
    name = self.active_adapters[0]
    if name not in self.lora_A or name in getattr(self, "lora_variant", {}):
        return type(self).forward(self, x, *args, **kwargs)
    result = self.base_layer(x)
    a, b = self.lora_A[name].weight, self.lora_B[name].weight
    if not torch.is_autocast_enabled(x.device.type):
        x = x.to(a.dtype)
    return result + F.linear(F.linear(self.lora_dropout[name](x), a) * self.scaling[name], b).to(result.dtype)


def fuse_lora(llm: nn.Module, on: bool = True) -> int:
    """Run ``llm``'s peft LoRA linear layers through :func:`_lora_forward` (``on``) or peft's
    own forward again; returns the number of layers switched. Layers that fall outside the plain
    case (several adapters, DoRA and other variants, merged) use peft's forward in either case."""
    try:
        from peft.tuners.lora import Linear as LoraLinear
    except ImportError:
        return 0
    n = 0
    for m in llm.modules():
        if type(m) is LoraLinear:  # not peft's quantised or variant subclasses
            if on:
                m.forward = types.MethodType(_lora_forward, m)
            else:
                m.__dict__.pop("forward", None)
            n += 1
    return n


def set_compute_path(model: nn.Module, attention: str, fused_lora: bool, share_prefix: bool) -> None:
    """Choose how a :class:`tasu.model.SpeechLLM` computes (the config keys of the same names):
    its LLM's attention kernel, the fused LoRA forward, and prompt-prefix sharing in training."""
    set_attention(model.llm, attention, model.device)
    fuse_lora(model.llm, fused_lora)
    model.share_prefix = share_prefix


def decoder_layers(llm: nn.Module) -> list[nn.Module]:
    """The repeated decoder blocks of a transformers causal LM (Llama-style ``model.layers``,
    GPT-2 ``transformer.h``); empty when there is no such list."""
    base = llm.get_base_model() if hasattr(llm, "get_base_model") else llm
    body = base.base_model
    for name in ("layers", "h", "blocks"):
        layers = getattr(body, name, None)
        if isinstance(layers, nn.ModuleList):
            return list(layers)
    return []


def compile_layers(llm: nn.Module) -> int:
    """``torch.compile`` each decoder layer (regional compilation, dynamic shapes): the layers
    share one compiled graph, so compiling costs about one layer's worth of time (45 s on 2
    cores for SmolLM2's 30 layers, against 8.5 min for the whole model), and elementwise work
    (norms, rotary embeddings, SiLU, casts) runs fused. Returns the number of layers compiled."""
    layers = decoder_layers(llm)
    for layer in layers:
        layer.compile(dynamic=True)
    return len(layers)
