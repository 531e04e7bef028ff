"""Trainer: non-finite steps are skipped and counted, and too many in a row stop the run."""
import numpy as np
import pytest
import torch

from tasu.config import OptimConfig, TrainConfig
from tasu.simulate import PosteriorSimulator, SimulationConfig
from tasu.train import TextExample, Trainer, trainable_state
from test_model import V, tiny_model


def trainer(tmp_path, bad_calls, max_steps, max_bad_steps=5, sim_format="auto"):
    m, tpl = tiny_model()
    orig = m.forward
    calls = {"n": 0}

    def forward(feats, answers):  # poison the loss of the chosen calls
        calls["n"] += 1
        loss, n = orig(feats, answers)
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
