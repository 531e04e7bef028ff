"""Prompts: the token ids around the speech in the LLM's input, and what ends an answer.

A :class:`PromptTemplate` is built once per task prompt from the LLM's tokenizer (its chat
template, or a plain ``system / prompt / Answer:`` layout for base models). Only the tokenizer
is needed: reading a task registry or a config imports no torch.
"""
from __future__ import annotations

from dataclasses import dataclass

SPEECH_PLACEHOLDER = "<speech>"


TEMPLATES = ("auto", "chat", "plain")


def set_template_mode(tokenizer, mode: str, llm: str = "") -> str:
    """Apply ``template`` (auto, chat, plain) to ``tokenizer``: plain drops its chat template, so
    every prompt built from it (task prompts too) is plain; chat needs one. Returns chat or plain."""
    if mode not in TEMPLATES:
        raise ValueError(f"template must be one of {', '.join(TEMPLATES)}, got {mode!r}")
    has_chat = bool(getattr(tokenizer, "chat_template", None))
    if mode == "chat" and not has_chat:
        raise ValueError(f"template: chat, but the tokenizer of the LLM {llm!r} has no chat template "
                         "(a base model?); use template: plain or auto")
    if mode == "plain" and has_chat:
        tokenizer.chat_template = None
    return "chat" if has_chat and mode != "plain" else "plain"


@dataclass(frozen=True)
class PromptTemplate:
    """Token ids around the speech placeholder, and what ends an answer."""

    prefix: tuple[int, ...]
    suffix: tuple[int, ...]
    eos_id: int

    @classmethod
    def build(cls, tokenizer, task_prompt: str, system_prompt: str | None = None,
              mode: str = "auto") -> PromptTemplate:
        """The prompt around ``<speech>`` (which ``task_prompt`` must hold), and the end token.

        ``mode`` chat renders the tokenizer's chat template; the answer ends with the token the
        template closes an assistant turn with (``<|im_end|>``, ``<|eot_id|>``, ``</s>``...).
        plain (base models) is ``[BOS] system\\n task_prompt \\nAnswer:``, ended by the EOS token.
        auto: chat when the tokenizer has a chat template, else plain.
        """
        if SPEECH_PLACEHOLDER not in task_prompt:
            raise ValueError(f"task prompt {task_prompt!r} lacks the {SPEECH_PLACEHOLDER} placeholder")
        if mode not in TEMPLATES:
            raise ValueError(f"template must be one of {', '.join(TEMPLATES)}, got {mode!r}")
        has_chat = bool(getattr(tokenizer, "chat_template", None))
        if mode == "chat" and not has_chat:
            raise ValueError("template: chat, but the tokenizer has no chat template; use plain or auto")
        enc = lambda s: tuple(tokenizer(s, add_special_tokens=False)["input_ids"])  # noqa: E731
        msgs = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
            {"role": "user", "content": task_prompt}]
        bos: tuple[int, ...] = ()
        if has_chat and mode != "plain":
            text = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
            eos = _turn_end_id(tokenizer, msgs, enc)
        else:  # plain template for base models
            text = (system_prompt + "\n" if system_prompt else "") + task_prompt + "\nAnswer:"
            eos = tokenizer.eos_token_id
            if eos is None:
                raise ValueError(f"the tokenizer ({type(tokenizer).__name__}) has no EOS token to end an answer "
                                 "with; set eos_token in its tokenizer_config.json")
            b = getattr(tokenizer, "bos_token_id", None)
            if b is not None and tokenizer("a")["input_ids"][:1] == [b]:  # it starts texts with BOS
                bos = (int(b),)
        before, after = text.split(SPEECH_PLACEHOLDER, 1)
        return cls(bos + enc(before), enc(after), int(eos))


def _turn_end_id(tokenizer, msgs: list[dict], enc) -> int:
    """The first special token the chat template writes after an assistant answer (the end of
    its turn); the tokenizer's EOS when it writes none."""
    mark = "ANSWER_MARK_7f3a"
    eos = tokenizer.eos_token_id
    try:
        full = tokenizer.apply_chat_template(msgs + [{"role": "assistant", "content": mark}], tokenize=False)
    except Exception:  # noqa: BLE001 - a template may refuse this conversation; keep the EOS
        full = ""
    special = set(getattr(tokenizer, "all_special_ids", None) or [])
    special |= {i for i, t in (getattr(tokenizer, "added_tokens_decoder", None) or {}).items()
                if getattr(t, "special", False)}
    if mark in full:
        end = next((i for i in enc(full.split(mark, 1)[1]) if i in special), None)
        if end is not None:
            return int(end)
    if eos is None:
        raise ValueError(f"the tokenizer ({type(tokenizer).__name__}) has neither an EOS token nor a chat "
                         "template that ends an answer with a special token")
    return int(eos)
