"""Data-parallel training: 2 gloo ranks, and gradient accumulation, equal one process on the same global batch."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import train_cmd

pytest.importorskip("hama")
TOP = Path(__file__).resolve().parents[1]
# fp32 (amp none) so that the only differences are summation orders; word shuffling and
# simulation noise on, so the test also checks that every rank draws the same batch.
OVERRIDES = ["optim.max_steps=4", "optim.batch_size=4", "optim.warmup_steps=1", "amp=none", "log_interval=1",
             "projector.init_steps=10", "noise_warmup_steps=0", "shuffle_words=0.5", "save_interval=2",
             "lora.r=4", "projector.hidden=256"]


def run(cmd, **env):
    r = subprocess.run(cmd, cwd=TOP, capture_output=True, text=True, timeout=900,
                       env={**os.environ, "OMP_NUM_THREADS": "1", **env})
    assert r.returncode == 0, r.stderr[-4000:]
    return r


def assert_same_training(a: Path, b: Path) -> None:
    """Same trainable weights and loss curve within fp32 tolerance.

    Ranks sum gradients in another order than one process does; Adam divides by the
    gradient's magnitude, so elements with near-zero gradients (LoRA A right after B leaves
    zero) show the largest relative differences, ~4e-4 of the tensor norm after 4 steps.
    """
    x, y = torch.load(a / "model.pt"), torch.load(b / "model.pt")
    assert x.keys() == y.keys() and len(x) > 10
    for k in x:
        assert float((x[k] - y[k]).norm()) <= 2e-3 * float(x[k].norm()) + 1e-6, k
    for key in ("loss", "grad_norm"):  # the gradient norm (before clipping) catches a mis-scaled sum
        la = [h[key] for h in json.loads((a / "history.json").read_text()) if key in h]
        lb = [h[key] for h in json.loads((b / "history.json").read_text()) if key in h]
        assert len(la) == len(lb) == 4 and la == pytest.approx(lb, rel=1e-4), key


@pytest.fixture(scope="module")
def single(tiny_units):
    run(train_cmd(tiny_units, tiny_units / "dist_ref", OVERRIDES))
    return tiny_units / "dist_ref"


def test_two_gloo_ranks_equal_one_process(tiny_units, single):
    exp = tiny_units / "dist_2ranks"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m"]
    r = run(train_cmd(tiny_units, exp, OVERRIDES, launcher=torchrun))
    assert "2 rank(s)" in (exp / "train.log").read_text()
    assert "[rank 1]" not in (exp / "train.log").read_text()  # rank 0 alone writes the log
    assert_same_training(single, exp)
    assert sorted(p.name for p in (exp / "checkpoints").glob("step*.pt")) == ["step0000002.pt", "step0000004.pt"]
    assert r.returncode == 0


def test_gradient_accumulation_equals_the_whole_batch(tiny_units, single):
    exp = tiny_units / "dist_accum"
    run(train_cmd(tiny_units, exp, OVERRIDES + ["optim.grad_accum=2"]))
    assert_same_training(single, exp)


def test_a_batch_that_does_not_split_evenly_is_refused(tiny_units):
    exp = tiny_units / "dist_bad"
    r = subprocess.run(train_cmd(tiny_units, exp, OVERRIDES + ["optim.grad_accum=3"]), cwd=TOP,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 1
    assert "optim.batch_size=4 must be a multiple of ranks x optim.grad_accum = 1 x 3" in r.stderr
    assert "Traceback" not in r.stderr


def test_sharded_text_trains_alike_on_one_process_and_two_ranks(tiny_units):
    """shard_size: rank 0 converts the text into shards, every rank draws the same batches from them."""
    one, two = tiny_units / "shards_1", tiny_units / "shards_2"
    r = run(train_cmd(tiny_units, one, OVERRIDES + ["shard_size=4"]))
    man = json.loads((one / "shards" / "shards.json").read_text())
    assert man["n_examples"] == 10 and man["sizes"] == [4, 4, 2]
    assert "10 examples of" in r.stderr and "in 3 shards of up to 4" in r.stderr
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m"]
    run(train_cmd(tiny_units, two, OVERRIDES + ["shard_size=4"], launcher=torchrun))
    assert_same_training(one, two)
    r = subprocess.run(train_cmd(tiny_units, tiny_units / "shards_mt", OVERRIDES + ["shard_size=4", "tasks=[asr]"]),
                       cwd=TOP, capture_output=True, text=True, timeout=600)
    assert r.returncode == 1 and "multi-task training" in r.stderr and "Traceback" not in r.stderr


def test_a_negative_shard_size_is_refused_before_loading_anything(tiny_units):
    r = subprocess.run(train_cmd(tiny_units, tiny_units / "shards_neg", OVERRIDES + ["shard_size=-1"]), cwd=TOP,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 1 and "shard_size must be 0" in r.stderr and "Traceback" not in r.stderr
    assert not (tiny_units / "shards_neg" / "config.yaml").exists()
