"""The projector family: shapes, no leak across a padded batch, gradients, frozen tables, save/rebuild."""
import subprocess
from pathlib import Path

import pytest
import torch
from test_model import D, ToyTokenizer, V
from transformers import LlamaConfig, LlamaForCausalLM

from tasu.config import ProjectorConfig, TrainConfig, load_config, save_config
from tasu.model import IGNORE, SpeechLLM
from tasu.projector import (
    PROJECTORS,
    build_projector,
    fit_projector,
    project_batch,
    projector_options,
)
from tasu.prompt import PromptTemplate

TOP = Path(__file__).resolve().parents[1]
VOCAB = 100
UNITS = [f"u{i}" for i in range(V - 2)] + ["<wb>", "<blank>"]
LENGTHS = [5, 1, 7, 3]
CPU = torch.device("cpu")


class VocabTokenizer(ToyTokenizer):
    """A tokenizer whose tokens include the first ten units (``u0``..``u9``: ids 40..49)."""

    def get_vocab(self):
        return {f"u{i}": 40 + i for i in range(10)}


# name -> (config of the projector, output rows for L input rows)
CASES = {
    "linear_silu": ({"kind": "linear_silu", "hidden": 16}, lambda n: n),
    "stack": ({"kind": "stack", "hidden": 16, "stride": 3}, lambda n: -(-n // 3)),
    "conv1d": ({"kind": "conv1d", "hidden": 16, "stride": 2}, lambda n: -(-n // 2)),
    "qformer_window": ({"kind": "qformer", "qformer_hidden": 16, "qformer_layers": 2, "heads": 2,
                        "qformer_queries": 2, "qformer_window": 3}, lambda n: -(-n // 3) * 2),
    "qformer_fixed": ({"kind": "qformer", "qformer_hidden": 16, "qformer_layers": 1, "heads": 2,
                       "qformer_queries": 3, "qformer_window": 0}, lambda n: 3),
    "cross_attention": ({"kind": "cross_attention", "heads": 4}, lambda n: n),
    "lego_lowrank": ({"kind": "lego", "lego_map": "lowrank", "lego_rank": 8}, lambda n: n),
    "lego_shared": ({"kind": "lego", "lego_map": "shared"}, lambda n: n),
}
FROZEN_TABLE = ["cross_attention", "lego_lowrank", "lego_shared"]


def embedding_table(seed: int = 0) -> torch.Tensor:
    return torch.randn(VOCAB, D, generator=torch.Generator().manual_seed(seed))


def make(case: str, embedding: torch.Tensor | None = None, seed: int = 0, out_dim: int = D):
    """The projector of ``case`` built as training builds it: config -> options -> build_projector."""
    torch.manual_seed(seed)
    cfg = ProjectorConfig(**CASES[case][0])
    emb = embedding_table() if embedding is None else embedding
    return build_projector(cfg.kind, V, out_dim, embedding=emb, **projector_options(cfg, UNITS, VocabTokenizer()))


def posteriors(lengths, seed: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(n, V, generator=g).softmax(-1) for n in lengths]


def test_every_kind_is_covered():
    assert {ProjectorConfig(**c).kind for c, _ in CASES.values()} == set(PROJECTORS)


@pytest.mark.parametrize("case", CASES)
def test_shapes_of_a_batch_of_different_lengths(case):
    proj = make(case).eval()
    out = project_batch(proj, posteriors(LENGTHS), CPU)
    assert [tuple(o.shape) for o in out] == [(CASES[case][1](n), D) for n in LENGTHS]
    assert all(torch.isfinite(o).all() for o in out)


@pytest.mark.parametrize("case", CASES)
def test_padding_does_not_leak_across_utterances(case):
    proj = make(case).eval()
    feats = posteriors(LENGTHS + [23])  # a long one: every other utterance is padded
    with torch.no_grad():
        batch = project_batch(proj, feats, CPU)
        for f, b in zip(feats, batch):
            torch.testing.assert_close(b, project_batch(proj, [f], CPU)[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("case", CASES)
def test_gradient_reaches_the_trainable_weights(case):
    proj = make(case)
    sum(o.pow(2).sum() for o in project_batch(proj, posteriors(LENGTHS), CPU)).backward()
    params = dict(proj.named_parameters())
    assert params and all(p.requires_grad for p in params.values())
    no_grad = [k for k, p in params.items() if p.grad is None or not p.grad.abs().sum() > 0]
    # the Q-Former's text-token feed-forward (intermediate/output, not *_query) is never used by queries
    assert [k for k in no_grad if not (".intermediate." in k or ".output." in k)] == []


@pytest.mark.parametrize("case", FROZEN_TABLE)
def test_the_llm_embedding_table_is_frozen_and_not_saved(case):
    emb = torch.nn.Parameter(embedding_table())  # as under finetune: full, where it is trainable
    proj = make(case, embedding=emb)
    sum(o.sum() for o in project_batch(proj, posteriors(LENGTHS), CPU)).backward()
    assert emb.grad is None
    state = proj.state_dict()
    assert set(state) == {k for k, _ in proj.named_parameters()}  # no buffer: the trainable weights are all
    assert not any(t.shape == emb.shape for t in state.values())
    assert any(b.shape[-1] == D for b in proj.buffers())  # the table (or its rows) is there, unsaved


def test_lego_shared_uses_the_embeddings_of_the_units_tokens():
    emb = embedding_table()
    proj = make("lego_shared", embedding=emb)
    out = proj(torch.eye(V))  # one-hot rows: unit u -> embedding of its token (u0..u9 -> 40..49), others 0 at first
    torch.testing.assert_close(out[:10], emb[40:50])
    assert (out[10:] == 0).all() and proj.extra.shape == (2, D)


@pytest.mark.parametrize("case", CASES)
def test_saved_weights_rebuild_from_the_config(case, tmp_path):
    cfg = TrainConfig(projector=ProjectorConfig(**CASES[case][0]))
    save_config(cfg, tmp_path / "config.yaml")
    proj = make(case, seed=0).eval()
    torch.save({k: v for k, v in proj.state_dict().items()}, tmp_path / "model.pt")
    back = load_config(tmp_path / "config.yaml").projector
    assert back == cfg.projector
    torch.manual_seed(5)  # another fresh initialisation, then the saved weights
    rebuilt = build_projector(back.kind, V, D, embedding=embedding_table(),
                              **projector_options(back, UNITS, VocabTokenizer())).eval()
    rebuilt.load_state_dict(torch.load(tmp_path / "model.pt"), strict=True)
    feats = posteriors(LENGTHS)
    with torch.no_grad():
        for a, b in zip(project_batch(proj, feats, CPU), project_batch(rebuilt, feats, CPU)):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("case", CASES)
def test_an_output_size_other_than_the_llms_is_an_error(case):
    with pytest.raises(ValueError, match=f"projector output size 48 does not match the LLM's embedding size {D}"):
        make(case, out_dim=48)


def test_bad_projector_settings_are_errors_naming_the_key():
    emb = embedding_table()
    with pytest.raises(ValueError, match="unknown projector 'mlp'; known: linear_silu, stack"):
        build_projector("mlp", V, D)
    with pytest.raises(ValueError, match="projector.stride must be at least 1"):
        build_projector("conv1d", V, D, stride=0)
    with pytest.raises(ValueError, match="needs the LLM's input embedding table"):
        build_projector("cross_attention", V, D)
    with pytest.raises(ValueError, match="projector.lego_map must be 'shared' or 'lowrank'"):
        build_projector("lego", V, D, embedding=emb, mapping="full")
    with pytest.raises(ValueError, match="none is; use projector.lego_map: lowrank"):
        build_projector("lego", V, D, embedding=emb, mapping="shared", token_ids=[-1] * V)
    with pytest.raises(ValueError, match="not a multiple of projector.heads=5"):
        build_projector("cross_attention", V, D, embedding=emb, heads=5)


@pytest.mark.parametrize("case", ["stack", "conv1d", "cross_attention", "lego_lowrank"])
def test_spelling_warm_start_fits_more_projectors(case):
    targets = embedding_table()[:V]
    has = torch.ones(V, dtype=torch.bool)
    has[-1] = False
    proj = make(case)
    first = fit_projector(proj, targets, has, steps=1, max_smooth=0.0)
    assert fit_projector(proj, targets, has, steps=150, max_smooth=0.0) < first


def test_spelling_warm_start_of_a_qformer_says_to_start_at_random():
    with pytest.raises(ValueError, match="projector 'qformer' has no output per unit.*projector.init: random"):
        fit_projector(make("qformer_window"), embedding_table()[:V], torch.ones(V, dtype=torch.bool), steps=1)


def tiny_speech_llm(case: str) -> tuple[SpeechLLM, PromptTemplate]:
    torch.manual_seed(0)
    llm = LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB, hidden_size=D, intermediate_size=64, num_hidden_layers=2,
                                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128))
    tpl = PromptTemplate.build(ToyTokenizer(), "Say:<speech>!", "sys")
    return SpeechLLM(llm, make(case, embedding=llm.get_input_embeddings().weight), tpl, pad_id=0), tpl


@pytest.mark.parametrize("case", ["conv1d", "qformer_window"])
@pytest.mark.parametrize("left_pad", [False, True])
def test_speech_llm_places_projected_rows_and_labels_the_answer_only(case, left_pad):
    m, tpl = tiny_speech_llm(case)
    m.eval()
    feats, answers = posteriors([5, 2, 8]), [[7, 8, 2], [9, 2], [5, 2]]
    speech = [CASES[case][1](len(f)) for f in feats]
    x, mask, y = m.assemble(feats, answers, left_pad=left_pad)
    P, S = len(tpl.prefix), len(tpl.suffix)
    lens = [P + n + S + len(a) for n, a in zip(speech, answers)]
    assert x.shape == (3, max(lens), D) and mask.sum(1).tolist() == lens
    projected = m.project(feats)
    for i, n in enumerate(speech):
        off = max(lens) - lens[i] if left_pad else 0
        torch.testing.assert_close(x[i, off + P:off + P + n], projected[i], atol=1e-5, rtol=1e-5)
        lab = y[i, off:off + lens[i]]
        assert (lab[:P + n + S] == IGNORE).all() and lab[P + n + S:].tolist() == answers[i]
        assert (torch.cat([y[i, :off], y[i, off + lens[i]:]]) == IGNORE).all()
    m.train()
    loss, ntok = m(feats, answers)
    assert ntok == sum(map(len, answers)) and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for n, p in m.projector.named_parameters() if "proj" in n or "out" in n)
    out = m.generate(feats, max_new_tokens=3)
    assert len(out) == 3 and all(len(h) <= 3 and tpl.eos_id not in h for h in out)


def test_train_cli_with_a_conv1d_projector_and_the_model_rebuilds(tiny_units, tmp_path):
    from conftest import train_cmd

    from tasu.modelio import load_model

    exp = tmp_path / "exp"
    r = subprocess.run(train_cmd(tiny_units, exp, [
        "projector.kind=conv1d", "projector.stride=2", "projector.hidden=32", "projector.init_steps=5",
        "optim.max_steps=2", "optim.batch_size=2", "optim.warmup_steps=1", "log_interval=1", "lora.r=2",
        "noise_warmup_steps=0"]), cwd=TOP, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "projector warm start" in r.stderr  # spelling, k units at a time
    state = torch.load(exp / "model.pt")
    assert "projector.conv.weight" in state and not any(k.endswith("table") for k in state)
    model, cfg, inv, _ = load_model(exp, CPU)
    assert cfg.projector.kind == "conv1d" and model.projector.stride == 2
    torch.testing.assert_close(model.projector.conv.weight.float(), state["projector.conv.weight"])
    out = model.project([torch.rand(5, inv.size).softmax(-1), torch.rand(2, inv.size).softmax(-1)])
    dim = model.base.get_input_embeddings().weight.shape[1]
    assert [tuple(o.shape) for o in out] == [(3, dim), (1, dim)]
