"""The fast training path (tasu.kernels, SpeechLLM.share_prefix) computes what the plain one does:
same loss and same gradients of every trainable weight, on a tiny LoRA model in float32."""
import pytest
import torch
from peft import LoraConfig, get_peft_model
from test_model import ToyTokenizer
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from tasu.kernels import attention_kind, compile_layers, decoder_layers, fuse_lora, set_attention
from tasu.llm import merge_adapters
from tasu.model import SpeechLLM
from tasu.projector import LinearSiLUProjector
from tasu.prompt import PromptTemplate

V, D = 12, 32


def lora_model(seed=0, arch="llama"):
    """A tiny random Llama (rotary positions, grouped keys/values) or GPT-2 (learned positions,
    Conv1D layers) with LoRA on three of its linear layers a block."""
    torch.manual_seed(seed)
    if arch == "gpt2":
        llm = GPT2LMHeadModel(GPT2Config(vocab_size=100, n_embd=D, n_layer=2, n_head=4, n_positions=128,
                                          resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0))  # no dropout draws
        targets, fan_in_fan_out = ["c_attn", "c_proj", "c_fc"], True
    else:
        llm = LlamaForCausalLM(LlamaConfig(vocab_size=100, hidden_size=D, intermediate_size=64, num_hidden_layers=2,
                                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128))
        targets, fan_in_fan_out = ["q_proj", "v_proj", "up_proj"], False
    llm = get_peft_model(llm, LoraConfig(r=4, lora_alpha=8, target_modules=targets, fan_in_fan_out=fan_in_fan_out))
    for m in llm.modules():  # peft starts B at zero: make the adapters do something
        if hasattr(m, "lora_B"):
            torch.nn.init.normal_(m.lora_B["default"].weight, std=0.2)
    tpl = PromptTemplate.build(ToyTokenizer(), "Say:<speech>!", "sys")
    return SpeechLLM(llm, LinearSiLUProjector(V, D, hidden=16), tpl, pad_id=0)


def loss_and_grads(m, feats, answers, templates=None):
    m.zero_grad()
    loss, n = m(feats, answers, templates=templates)
    loss.backward()
    return loss.detach(), n, {k: p.grad.clone() for k, p in m.named_parameters() if p.requires_grad}


def set_path(m, fast):
    set_attention(m.llm, "eager" if fast else "sdpa", torch.device("cpu"))
    assert fuse_lora(m.llm, fast) >= 6  # 3 targets x 2 layers (GPT-2: c_proj in attention and MLP)
    m.share_prefix = fast


def batch():
    torch.manual_seed(1)
    feats = [torch.rand(5, V), torch.rand(2, V), torch.rand(7, V)]
    return feats, [[7, 8, 2], [9, 2], [4, 5, 6, 7, 2]]


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_fast_path_gives_the_plain_loss_and_gradients(arch):
    """Rows of different lengths (right padding), LoRA in every layer, the prompt's prefix shared:
    loss and every LoRA/projector gradient equal peft's forward with sdpa and no sharing (float32,
    relative 1e-4), for rotary (Llama) and learned (GPT-2) positions."""
    m = lora_model(arch=arch)
    feats, answers = batch()
    set_path(m, False)
    ref_loss, ref_n, ref = loss_and_grads(m, feats, answers)
    set_path(m, True)
    loss, n, got = loss_and_grads(m, feats, answers)
    assert n == ref_n == 10
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-6)
    assert set(got) == set(ref) and any("lora_A" in k for k in got) and any("projector" in k for k in got)
    for k in ref:
        assert ref[k].abs().sum() > 0, k  # every trainable weight is reached
        torch.testing.assert_close(got[k], ref[k], rtol=1e-4, atol=1e-6, msg=k)


def test_prefix_sharing_is_per_batch_prompt_and_falls_back_for_mixed_prompts():
    """A batch with two different prompts (multi-task training) cannot share one prefix: it takes
    the plain pass, with the same loss as without sharing; one example alone also does."""
    m = lora_model()
    feats, answers = batch()
    other = PromptTemplate.build(ToyTokenizer(), "Other task:<speech>?", "sys")
    tpls = [m.template, other, m.template]
    m.share_prefix = False
    ref = loss_and_grads(m, feats, answers, tpls)
    m.share_prefix = True
    got = loss_and_grads(m, feats, answers, tpls)
    torch.testing.assert_close(got[0], ref[0])
    one = loss_and_grads(m, feats[:1], answers[:1])
    m.share_prefix = False
    torch.testing.assert_close(one[0], loss_and_grads(m, feats[:1], answers[:1])[0])


def test_fused_lora_under_bf16_autocast_stays_close_to_peft_and_merged_layers_use_peft():
    """Under bf16 autocast the fused layer computes in bf16 where peft casts the input to float32:
    the outputs agree to bf16 rounding. A merged layer (decoding) runs peft's forward: the
    base weights alone, with the adapter folded in."""
    m = lora_model()
    layer = m.base.model.layers[0].self_attn.q_proj
    x = torch.randn(3, 5, D)
    fuse_lora(m.llm, False)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        want = layer(x).float()
    fuse_lora(m.llm, True)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        got = layer(x).float()
    torch.testing.assert_close(got, want, rtol=0.05, atol=0.05)
    with torch.no_grad():
        plain = layer(x)
        merge_adapters(m.llm)
        torch.testing.assert_close(layer(x), plain, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(layer(x), layer.base_layer(x))


def test_attention_choice():
    assert attention_kind("auto", torch.device("cpu")) == "eager"
    assert attention_kind("auto", torch.device("cuda")) == "sdpa"
    assert attention_kind("sdpa", torch.device("cpu")) == "sdpa"
    with pytest.raises(ValueError, match="attention must be one of"):
        attention_kind("flash", torch.device("cpu"))
    m = lora_model()
    assert set_attention(m.llm, "auto", torch.device("cpu")) == "eager"
    assert m.base.config._attn_implementation == "eager"


def test_compiled_layers_give_the_same_loss():
    """Regional compilation: every decoder layer compiled (dynamic shapes), same loss and
    gradients as the uncompiled model (float32) on two batches of different lengths."""
    m = lora_model()
    feats, answers = batch()
    ref = [loss_and_grads(m, feats, answers), loss_and_grads(m, feats[:2], answers[:2])]
    assert len(decoder_layers(m.llm)) == 2
    assert compile_layers(m.llm) == 2
    got = [loss_and_grads(m, feats, answers), loss_and_grads(m, feats[:2], answers[:2])]
    for (gl, _, gg), (rl, _, rg) in zip(got, ref):
        torch.testing.assert_close(gl, rl, rtol=1e-5, atol=1e-6)
        for k in rg:
            torch.testing.assert_close(gg[k], rg[k], rtol=1e-4, atol=1e-6, msg=k)
