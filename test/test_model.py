"""Projector + LLM input assembly: placeholder replaced by speech, labels on the answer only."""
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from tasu.model import IGNORE, SpeechLLM
from tasu.projector import LinearSiLUProjector, fit_projector, spelling_targets
from tasu.prompt import PromptTemplate

V, D = 12, 32


class ToyTokenizer:
    """Characters as tokens, enough to render a prompt template; a list of texts is encoded
    text by text, as an HF tokenizer does."""
    chat_template = None
    eos_token_id = 2

    def __call__(self, s, add_special_tokens=False):
        if isinstance(s, list):
            return {"input_ids": [self(x)["input_ids"] for x in s]}
        return {"input_ids": [3 + (ord(c) % 90) for c in s]}


def tiny_model():
    torch.manual_seed(0)
    llm = LlamaForCausalLM(LlamaConfig(vocab_size=100, hidden_size=D, intermediate_size=64, num_hidden_layers=2,
                                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128))
    tpl = PromptTemplate.build(ToyTokenizer(), "Say:<speech>!", "sys")
    return SpeechLLM(llm, LinearSiLUProjector(V, D, hidden=16), tpl, pad_id=0), tpl


def test_template_splits_at_placeholder():
    tpl = PromptTemplate.build(ToyTokenizer(), "Say:<speech>!", "sys")
    tok = ToyTokenizer()
    assert list(tpl.prefix) == tok("sys\nSay:")["input_ids"]
    assert list(tpl.suffix) == tok("!\nAnswer:")["input_ids"]
    with pytest.raises(ValueError, match="placeholder"):
        PromptTemplate.build(tok, "no placeholder here")


@pytest.mark.parametrize("left_pad", [False, True])
def test_assemble_places_speech_and_masks_labels(left_pad):
    m, tpl = tiny_model()
    feats = [torch.rand(5, V), torch.rand(2, V)]
    answers = [[7, 8, 2], [9, 2]]
    x, mask, y = m.assemble(feats, answers, left_pad=left_pad)
    P, S = len(tpl.prefix), len(tpl.suffix)
    lens = [P + 5 + S + 3, P + 2 + S + 2]
    assert x.shape == (2, max(lens), D) and mask.sum(1).tolist() == lens
    emb = m.base.get_input_embeddings()
    for i, f in enumerate(feats):
        off = max(lens) - lens[i] if left_pad else 0
        row = x[i, off:off + lens[i]]
        torch.testing.assert_close(row[:P], emb(torch.tensor(tpl.prefix)))
        torch.testing.assert_close(row[P:P + len(f)], m.projector(f))          # placeholder -> speech
        torch.testing.assert_close(row[P + len(f):P + len(f) + S], emb(torch.tensor(tpl.suffix)))
        lab = y[i, off:off + lens[i]]
        assert (lab[:P + len(f) + S] == IGNORE).all()
        assert lab[P + len(f) + S:].tolist() == answers[i]
        pad = torch.cat([y[i, :off], y[i, off + lens[i]:]])
        assert (pad == IGNORE).all() and mask[i].sum() == lens[i]


def test_loss_covers_answer_tokens_only_and_trains():
    m, _ = tiny_model()
    feats = [torch.rand(5, V), torch.rand(2, V)]
    answers = [[7, 8, 2], [9, 2]]
    loss, n = m(feats, answers)
    assert n == 5
    # the same loss computed from full logits on the answer positions
    x, mask, y = m.assemble(feats, answers)
    logits = m.base(inputs_embeds=x, attention_mask=mask).logits
    ref = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 100), y[:, 1:].reshape(-1), ignore_index=IGNORE)
    torch.testing.assert_close(loss, ref, atol=1e-5, rtol=1e-5)
    # gradients reach the projector through the LLM
    loss.backward()
    assert m.projector.net[1].table.grad.abs().sum() > 0


def test_generate_returns_answer_ids():
    m, tpl = tiny_model()
    out = m.generate([torch.rand(4, V), torch.rand(1, V)], max_new_tokens=3)
    assert len(out) == 2 and all(len(h) <= 3 for h in out)
    assert all(tpl.eos_id not in h for h in out)


def test_generate_nbest_gives_n_answers_with_their_log_probabilities_best_first():
    m, tpl = tiny_model()
    feats = [torch.rand(4, V), torch.rand(2, V)]
    out = m.generate_nbest(feats, n=3, max_new_tokens=4)
    assert [len(c) for c in out] == [3, 3]
    for b, cands in enumerate(out):
        scores = [s for _, s in cands]
        assert scores == sorted(scores, reverse=True) and all(s <= 0 for s in scores)
        assert len({tuple(ids) for ids, _ in cands}) == 3          # distinct beams
        # a score is the sum of its tokens' log-probabilities (length_penalty 0), up to the end token
        ids, score = cands[0]
        x, mask, _ = m.assemble([feats[b]], left_pad=True)
        seq = torch.tensor(ids + ([tpl.eos_id] if len(ids) < 4 else []))
        emb = torch.cat([x[0], m.llm.get_input_embeddings()(seq[:-1])])[None]
        with torch.no_grad():
            logp = m.llm(inputs_embeds=emb).logits[0, x.shape[1] - 1:].log_softmax(-1)
        assert score == pytest.approx(float(logp[torch.arange(len(seq)), seq].sum()), abs=1e-4)
    assert out[0][0][0] == m.generate(feats[:1], max_new_tokens=4, num_beams=3)[0]  # best = the beam's answer


def test_score_prior_is_the_answer_log_prob_with_the_speech_left_out():
    """score_prior: each answer's summed token log-probs (its end token included) after the prompt
    alone, the speech left out, whatever the other answers' lengths (batched and left-padded)."""
    m, tpl = tiny_model()
    other = PromptTemplate.build(ToyTokenizer(), "Q:<speech>?", "sys")
    answers = [[[7, 8, 9], [5]], [], [[11, 12]]]
    got = m.score_prior(answers, [tpl, tpl, other])
    assert [len(g) for g in got] == [2, 0, 1]
    for a, t, g in zip(answers, [tpl, tpl, other], got):
        for ids, score in zip(a, g):
            seq = torch.tensor(list(t.prefix) + list(t.suffix) + ids + [t.eos_id])
            with torch.no_grad():
                logp = m.llm(input_ids=seq[None]).logits[0].log_softmax(-1)
            start = len(t.prefix) + len(t.suffix)
            want = float(logp[torch.arange(start - 1, len(seq) - 1), seq[start:]].sum())
            assert score == pytest.approx(want, abs=1e-4)
    # the speech changes score_answers, not the prior
    feats = [torch.rand(4, V)]
    assert m.score_answers(feats, [[[7, 8, 9]]])[0][0] != pytest.approx(got[0][0], abs=1e-3)
    assert m.score_prior([[]]) == [[]]


def test_score_answers_equals_a_full_teacher_forced_pass_per_answer():
    """score_answers keeps the speech prefix's keys and values and passes each answer alone: every
    score equals the plain forward over prompt + speech + answer of that example by itself (no
    padding), for speech of different lengths (left-padded prefixes), answers of different lengths
    (one token, padded ones) and more answers than one chunk; in float32, to 1e-4."""
    m, tpl = tiny_model()
    m.eval()
    torch.manual_seed(1)
    feats = [torch.rand(6, V), torch.rand(1, V), torch.rand(3, V)]
    answers = [[[7, 8, 9], [5], [4, 4, 4, 4, 4, 4]], [], [[11, 12]] + [[3 + k, 20 + k] for k in range(20)]]
    got = m.score_answers(feats, answers)
    assert [len(g) for g in got] == [3, 0, 21]
    emb = m.base.get_input_embeddings()
    for f, a, g in zip(feats, answers, got):
        x, _, _ = m.assemble([f])
        for ids, score in zip(a, g):
            seq = torch.tensor(ids + [tpl.eos_id])
            with torch.no_grad():
                logp = m.llm(inputs_embeds=torch.cat([x[0], emb(seq[:-1])])[None]).logits[0].log_softmax(-1)
            want = float(logp[torch.arange(x.shape[1] - 1, x.shape[1] - 1 + len(seq)), seq].sum())
            assert score == pytest.approx(want, abs=1e-4)
    assert m.score_answers(feats, [[], [], []]) == [[], [], []]


def test_spelling_warm_start_maps_units_to_letter_embeddings():
    emb = torch.randn(100, D)
    units = [f"u{i}" for i in range(V - 2)] + ["<wb>", "<blank>"]
    spell = {f"u{i}": {chr(97 + i): 3, "zz": 1} for i in range(V - 2)}
    targets, has = spelling_targets(units, spell, ToyTokenizer(), emb)
    assert has[:V - 1].all() and not has[V - 1]
    torch.testing.assert_close(targets[0], emb[3 + ord("a") % 90])
    proj = LinearSiLUProjector(V, D, hidden=64)
    rel = fit_projector(proj, targets, has, steps=300, max_smooth=0.0)
    assert rel < 0.1
    out = proj(torch.eye(V)[:V - 1])
    sims = torch.nn.functional.cosine_similarity(out[:, None], targets[None, :V - 1], dim=-1)
    assert (sims.argmax(1) == torch.arange(V - 1)).all()


def test_the_text_cascade_reads_the_prompt_with_the_text_in_place_of_the_speech():
    m, tpl = tiny_model()
    m.eval()
    other = PromptTemplate.build(ToyTokenizer(), "Label:<speech>?", "sys")
    texts, tpls = [[5, 6, 7], [8, 9, 10, 11, 12]], [tpl, other]
    got = m.generate_from_text(texts, max_new_tokens=6, templates=tpls)
    assert m.generate_from_text(texts[:1], max_new_tokens=6) == got[:1]  # None: the model's own prompt
    for ids, t, hyp in zip(texts, tpls, got):  # one at a time, from token ids, without padding
        full = torch.tensor([list(t.prefix) + ids + list(t.suffix)])
        out = m.llm.generate(input_ids=full, attention_mask=torch.ones_like(full), max_new_tokens=6, do_sample=False,
                             eos_token_id=t.eos_id, pad_token_id=0)[0, full.shape[1]:].tolist()
        if t.eos_id in out:
            out = out[:out.index(t.eos_id)]
        assert hyp == [x for x in out if x != 0]
