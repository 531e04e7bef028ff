"""Trainer: non-finite steps are skipped and counted, and too many in a row stop the run."""
import numpy as np
import pytest
import torch
from test_model import ToyTokenizer, V, tiny_model

from tasu.config import OptimConfig, SimulationConfig, TrainConfig
from tasu.examples import TextExample
from tasu.modelio import trainable_state
from tasu.simulate import PosteriorSimulator
from tasu.train import Trainer


def trainer(tmp_path, bad_calls, max_steps, max_bad_steps=5, sim_format="auto"):
    m, tpl = tiny_model()
    m.tokenizer = ToyTokenizer()  # as build_model gives every model (word shuffling re-tokenises answers)
    orig = m.forward
    calls = {"n": 0}

    def forward(feats, answers, templates=None):  # poison the loss of the chosen calls
        calls["n"] += 1
        loss, n = orig(feats, answers, templates=templates)
        return (loss * float("nan") if calls["n"] in bad_calls else loss), n

    m.forward = forward
    units = [f"u{i}" for i in range(V - 2)] + ["<wb>", "<blank>"]
    sim = PosteriorSimulator(V, range(V - 2), units, V - 2, SimulationConfig())
    rng = np.random.default_rng(0)
    ex = [TextExample(f"u{i}", rng.integers(0, V - 2, size=5), (7, 8, tpl.eos_id)) for i in range(8)]
    cfg = TrainConfig(optim=OptimConfig(max_steps=max_steps, batch_size=2, warmup_steps=1),
                      max_bad_steps=max_bad_steps, log_interval=1, sim_format=sim_format)
    return Trainer(cfg, m, sim, ex, [], tmp_path)


def test_a_non_finite_step_makes_no_update_and_is_counted(tmp_path):
    t = trainer(tmp_path / "a", bad_calls={1}, max_steps=1)
    before = trainable_state(t.model)
    t.run()
    after = trainable_state(t.model)
    assert t.step == 1 and t.bad_steps == 1
    assert all(torch.equal(before[k], after[k]) for k in before)       # nothing moved
    t2 = trainer(tmp_path / "b", bad_calls={2}, max_steps=4)
    t2.run()
    assert t2.step == 4 and t2.bad_steps == 1
    assert all(torch.isfinite(v).all() for v in trainable_state(t2.model).values())
    assert any(not torch.equal(before[k], v) for k, v in trainable_state(t2.model).items())


def test_too_many_non_finite_steps_in_a_row_stop_the_run(tmp_path):
    t = trainer(tmp_path, bad_calls={2, 3, 4}, max_steps=10, max_bad_steps=3)
    with pytest.raises(FloatingPointError, match=r"3 non-finite losses/gradients in a row up to step 4"):
        t.run()


def test_sparse_simulated_rows_train_like_dense_ones(tmp_path):
    with pytest.raises(ValueError, match="sim_format must be"):
        trainer(tmp_path / "x", bad_calls=set(), max_steps=1, sim_format="csr")
    runs = {}
    for fmt in ("dense", "sparse"):
        t = trainer(tmp_path / fmt, bad_calls=set(), max_steps=3, sim_format=fmt)
        assert t.sparse_inputs == (fmt == "sparse")
        t.run()
        runs[fmt] = trainable_state(t.model)
    for k, v in runs["dense"].items():  # same rows, same updates (up to float rounding)
        torch.testing.assert_close(runs["sparse"][k], v, atol=1e-4, rtol=1e-3)


def paired_trainer(tmp_path, ratio, n_paired=8, batch_size=4):
    t = trainer(tmp_path, bad_calls=set(), max_steps=3)
    rng = np.random.default_rng(1)
    paired = [TextExample(f"p{i}", np.zeros(0, dtype=np.int64), (9, 10, t.model.template.eos_id), "",
                          rng.dirichlet(np.ones(V), size=4 + i).astype(np.float32)) for i in range(n_paired)]
    cfg = TrainConfig(optim=OptimConfig(max_steps=3, batch_size=batch_size, warmup_steps=1), log_interval=1,
                      paired_ratio=ratio, shuffle_words=0.5)
    return Trainer(cfg, t.model, t.sim, t.train_set, [], tmp_path, paired=paired)


def test_batches_mix_paired_and_text_examples_at_the_ratio(tmp_path):
    text_only = paired_trainer(tmp_path / "t", 0.0).batches()
    mixed = paired_trainer(tmp_path / "m", 0.5).batches()
    only_paired = paired_trainer(tmp_path / "p", 1.0).batches()
    for _ in range(5):
        a, b, c = next(text_only), next(mixed), next(only_paired)
        assert all(e.feats is None for e in a) and len(a) == 4
        assert [e.feats is None for e in b] == [True, True, False, False]
        assert all(e.feats is not None for e in c) and len(c) == 4
    t = paired_trainer(tmp_path / "run", 0.5)
    t.run()  # real posteriors go in as they are, the text part is simulated (and word-shuffled)
    assert t.step == 3 and all(np.isfinite(h["loss"]) for h in t.history if "loss" in h)


def test_paired_settings_that_cannot_work_are_refused(tmp_path):
    with pytest.raises(ValueError, match="paired_ratio=0.5 but no paired examples"):
        paired_trainer(tmp_path / "a", 0.5, n_paired=0)
    with pytest.raises(ValueError, match=r"paired_ratio must lie in \[0, 1\]"):
        paired_trainer(tmp_path / "b", 1.5)


def test_make_paired_examples_checks_the_posteriors(tmp_path):
    from tasu.examples import make_paired_examples

    class Tok:
        def __call__(self, texts, add_special_tokens=False):  # a list, as examples.answer_ids gives
            return {"input_ids": [[len(w) for w in text.split()] for text in texts]}

    feats = {"a": np.full((3, V), 1.0 / V, dtype=np.float32)}
    ex, unpaired = make_paired_examples(feats, {"a": "hi there", "b": "no audio"}, V, Tok(), 0, "x.scp")
    assert [e.uid for e in ex] == ["a"] and ex[0].answer_ids == (2, 5, 0) and unpaired == ["b"]
    with pytest.raises(ValueError,
                       match=r"x.scp: utterance a: posteriors of shape \(3, 7\), expected \[frames > 0, 9\]"):
        make_paired_examples({"a": np.ones((3, 7), np.float32)}, {"a": "hi"}, 9, Tok(), 0, "x.scp")
    with pytest.raises(ValueError, match="x.scp: utterance a has posteriors but no transcript"):
        make_paired_examples(feats, {}, V, Tok(), 0, "x.scp")


def test_multi_task_batches_give_each_example_its_own_prompt_and_answer(tmp_path):
    from test_model import ToyTokenizer

    from tasu.examples import make_task_examples, shuffle_words
    from tasu.prompt import PromptTemplate
    from tasu.units import UnitInventory

    t = trainer(tmp_path, bad_calls=set(), max_steps=2)
    tok = ToyTokenizer()
    inv = UnitInventory([f"u{i}" for i in range(V - 2)] + ["<wb>", "<blank>"])
    units = {"a": "u1 u2 <wb> u3", "b": "u4 <wb> u5", "c": "u6 u7"}
    asr = make_task_examples(units, {"a": "hi yo", "b": "ok go", "c": "no"}, inv, tok, 2,
                             [t.model.template], "text")
    tpl_i = (PromptTemplate.build(tok, "Intent?<speech>", "sys"), PromptTemplate.build(tok, "<speech>Label?", "sys"))
    intent = make_task_examples(units, {"a": "greet", "c": "deny"}, inv, tok, 2, tpl_i, "intent")
    assert [(e.uid, e.template, e.answer_ids) for e in intent] == [
        ("a", tpl_i[0], tuple(tok("greet")["input_ids"]) + (2,)),
        ("c", tpl_i[1], tuple(tok("deny")["input_ids"]) + (2,))]
    assert np.array_equal(intent[0].unit_ids, asr[0].unit_ids)
    # prompt fields: each utterance its own prompts ({uid: templates})
    own = {u: (PromptTemplate.build(tok, f"Q{u} <speech>", None),) for u in ("a", "c")}
    per = make_task_examples(units, {"a": "greet", "c": "deny"}, inv, tok, 2, own, "intent")
    assert [(e.uid, e.template) for e in per] == [("a", own["a"][0]), ("c", own["c"][0])]
    # word shuffling rewrites transcripts only, never a label
    rng = np.random.default_rng(0)
    assert shuffle_words(intent[0], V - 2, tok, 2, rng) is intent[0]
    assert shuffle_words(asr[0], V - 2, tok, 2, rng).template is asr[0].template

    seen = []
    orig = t.model.forward

    def forward(feats, answers, templates=None):
        seen.append((list(answers), templates))
        return orig(feats, answers, templates=templates)

    t.model.forward = forward
    cfg = TrainConfig(optim=OptimConfig(max_steps=3, batch_size=5, warmup_steps=1), log_interval=1,
                      shuffle_words=0.0)  # answers as written, to match them below
    tr = Trainer(cfg, t.model, t.sim, asr + intent, [], tmp_path / "mt")
    tr.run()
    assert len(seen) == 3
    for answers, templates in seen:  # every example is asked with its own task's prompt
        by_answer = {e.answer_ids: e.template for e in asr + intent}
        assert templates is not None and [by_answer[tuple(a)] for a in answers] == templates


def lexicon_file(tmp_path):
    p = tmp_path / "lexicon.txt"
    # u0..u5 are units of the toy inventory; "zz" has a unit it lacks and "sil" none: both left out
    p.write_text("cat\tu1 u2\tc at\ndog\tu3\td og\nfish\tu4 u5 u0\tf i sh\nsil\t\t\nzz\tq9\tz z\n")
    return p


def test_word_lists_draw_lexicon_words_with_their_units(tmp_path):
    from test_model import ToyTokenizer

    from tasu.examples import WordLists
    from tasu.units import UnitInventory

    inv = UnitInventory([f"u{i}" for i in range(V - 2)] + ["<wb>", "<blank>"])
    tok = ToyTokenizer()
    wl = WordLists.from_lexicon(lexicon_file(tmp_path), inv, tok, 2, min_words=2, max_words=4)
    assert wl.words == ["cat", "dog", "fish"] and wl.units() == {0, 1, 2, 3, 4, 5, V - 2}
    import random

    a, b = wl.draw(random.Random(7), 20), wl.draw(random.Random(7), 20)
    assert [e.text for e in a] == [e.text for e in b]  # one seed, one stream (resume replays it)
    pron = {"cat": [1, 2], "dog": [3], "fish": [4, 5, 0]}
    for e in a:
        words = e.text.split()
        assert 2 <= len(words) <= 4
        want = [u for i, w in enumerate(words) for u in ([V - 2] if i else []) + pron[w]]
        assert e.unit_ids.tolist() == want and e.answer_ids == tuple(tok(e.text)["input_ids"]) + (2,)
    assert len({e.uid for e in a + b}) == 40
    with pytest.raises(ValueError, match="min_words <= max_words"):
        WordLists.from_lexicon(lexicon_file(tmp_path), inv, tok, 2, min_words=5, max_words=4)


def test_batches_hold_the_configured_share_of_word_lists(tmp_path):
    from test_model import ToyTokenizer

    from tasu.config import WordListConfig
    from tasu.examples import WordLists
    from tasu.units import UnitInventory

    t = trainer(tmp_path / "t", bad_calls=set(), max_steps=2)
    inv = UnitInventory([f"u{i}" for i in range(V - 2)] + ["<wb>", "<blank>"])
    wl = WordLists.from_lexicon(lexicon_file(tmp_path), inv, ToyTokenizer(), t.model.template.eos_id, 2, 3)
    cfg = TrainConfig(optim=OptimConfig(max_steps=3, batch_size=8, warmup_steps=1), log_interval=1,
                      word_lists=WordListConfig(share=0.25, min_words=2, max_words=3))
    with pytest.raises(ValueError, match="no lexicon was given"):
        Trainer(cfg, t.model, t.sim, t.train_set, [], tmp_path / "no")
    tr = Trainer(cfg, t.model, t.sim, t.train_set * 3, [], tmp_path / "wl", word_lists=wl)  # 4 batches of 6
    batches = tr.batches()
    for _ in range(3):
        b = next(batches)
        assert len(b) == 8 and sum(e.uid.startswith("wordlist-") for e in b) == 2
    tr.run()  # trains on the mix
    assert tr.step == 3


def test_batches_bounded_by_positions_hold_every_example_once_an_epoch(tmp_path):
    import random

    from tasu.examples import epoch_batches, positions

    rng = np.random.default_rng(1)
    exs = [TextExample(f"e{i:03d}", np.zeros(int(rng.integers(1, 40)), dtype=np.int64),
                       tuple(range(int(rng.integers(1, 10))))) for i in range(200)]
    exs.append(TextExample("long", np.zeros(300, dtype=np.int64), (1, 2)))
    bs = epoch_batches(exs, 16, random.Random(0), bucket=4, max_positions=120)
    assert sorted(e.uid for b in bs for e in b) == sorted(e.uid for e in exs)
    for b in bs:
        assert len(b) <= 16 and (len(b) * max(positions(e) for e in b) <= 120 or len(b) == 1)
    assert [len(b) for b in bs if b[0].uid == "long"] == [1]  # longer than the bound: a batch by itself
    sizes = [len(b) for b in bs]
    assert max(sizes) >= 8 and min(sizes) <= 3  # short sentences batch larger than long ones
    assert sorted(len(b) for b in epoch_batches(exs, 16, random.Random(0), bucket=4)) == [9] + [16] * 12
    t = trainer(tmp_path / "t", bad_calls=set(), max_steps=2)
    from tasu.config import WordListConfig

    cfg = TrainConfig(optim=OptimConfig(max_steps=2, batch_size=4, max_batch_positions=40),
                      word_lists=WordListConfig(share=0.5))
    with pytest.raises(ValueError, match="max_batch_positions bounds batches of text-only sentences"):
        Trainer(cfg, t.model, t.sim, t.train_set, [], tmp_path / "wl", word_lists=object())
    cfg = TrainConfig(optim=OptimConfig(max_steps=2, batch_size=8, warmup_steps=1, max_batch_positions=20),
                      log_interval=1)
    tr = Trainer(cfg, t.model, t.sim, t.train_set, [], tmp_path / "pos")  # 8 examples of 5 units + 3 tokens
    assert [len(next(tr.batches())) for _ in range(1)] == [2]
    tr.run()
    assert tr.step == 2
