"""A training run killed with SIGKILL and started again ends with the same weights, bit for bit."""
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from conftest import train_cmd

pytest.importorskip("hama")
TOP = Path(__file__).resolve().parents[1]
OVERRIDES = ["optim.max_steps=12", "optim.batch_size=2", "optim.warmup_steps=2", "save_interval=1",
             "keep_checkpoints=3", "log_interval=1", "projector.init_steps=10", "noise_warmup_steps=3",
             "shuffle_words=0.5"]


def test_kill_minus_nine_then_rerun_gives_the_uninterrupted_weights(tiny_units):
    d = tiny_units
    ref = subprocess.run(train_cmd(d, d / "ref", OVERRIDES), cwd=TOP, capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr[-3000:]

    exp = d / "killed"
    p = subprocess.Popen(train_cmd(d, exp, OVERRIDES), cwd=TOP, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not (exp / "checkpoints" / "step0000003.pt").exists():  # kill it mid-run
        assert p.poll() is None and time.time() - t0 < 300, "the run ended before it could be killed"
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    assert p.wait() == -signal.SIGKILL
    assert not (exp / "model.pt").exists()
    for ck in (exp / "checkpoints").glob("step*.pt"):  # a kill may leave a temp file, never a torn checkpoint
        assert torch.load(ck, weights_only=False)["step"] == int(ck.stem[4:])
    res = subprocess.run(train_cmd(d, exp, OVERRIDES), cwd=TOP, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "resumed from" in res.stderr
    a = torch.load(d / "ref" / "model.pt")
    b = torch.load(exp / "model.pt")
    assert a.keys() == b.keys() and len(a) > 10
    for k in a:
        assert torch.equal(a[k], b[k]), k
    shutil.rmtree(exp / "checkpoints")
