"""A training run killed with SIGKILL and started again ends with the same weights, bit for bit."""
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip("hama")
TOP = Path(__file__).resolve().parents[1]
SENTS = ["the cat sat on the mat", "a dog ran in the park", "she reads a book at night",
         "we walk to school", "the sun is hot today", "he plays the piano well",
         "they sing a song", "my friend likes green tea", "open the window please", "it rained all day"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("resume")
    (d / "data").mkdir()
    (d / "data" / "text").write_text("".join(f"s{i:02d} {s}\n" for i, s in enumerate(SENTS)))
    r = subprocess.run([sys.executable, "-m", "tasu.bin.make_units", "--data", str(d / "data"), "--out",
                        str(d / "dump"), "--lexicon", str(d / "lexicon.txt")], cwd=TOP, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return d


def train_cmd(d, expdir):
    over = ["optim.max_steps=12", "optim.batch_size=2", "optim.warmup_steps=2", "save_interval=1",
            "keep_checkpoints=3", "log_interval=1", "projector.init_steps=10", "noise_warmup_steps=3",
            "shuffle_words=0.5"]
    return [sys.executable, "-m", "tasu.bin.train", "--config", str(TOP / "egs/mini_en/conf/train.yaml"),
            "--train_data", str(d / "data"), "--train_units", str(d / "dump" / "units"),
            "--lexicon", str(d / "lexicon.txt"), "--expdir", str(expdir)] + [
        x for o in over for x in ("--override", o)]


def test_kill_minus_nine_then_rerun_gives_the_uninterrupted_weights(setup):
    d = setup
    ref = subprocess.run(train_cmd(d, d / "ref"), cwd=TOP, capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr[-3000:]

    exp = d / "killed"
    p = subprocess.Popen(train_cmd(d, exp), cwd=TOP, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not (exp / "checkpoints" / "step0000003.pt").exists():  # kill it mid-run
        assert p.poll() is None and time.time() - t0 < 300, "the run ended before it could be killed"
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    assert p.wait() == -signal.SIGKILL
    assert not (exp / "model.pt").exists()
    for ck in (exp / "checkpoints").glob("step*.pt"):  # a kill may leave a temp file, never a torn checkpoint
        assert torch.load(ck, weights_only=False)["step"] == int(ck.stem[4:])
    res = subprocess.run(train_cmd(d, exp), cwd=TOP, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "resumed from" in res.stderr
    a = torch.load(d / "ref" / "model.pt")
    b = torch.load(exp / "model.pt")
    assert a.keys() == b.keys() and len(a) > 10
    for k in a:
        assert torch.equal(a[k], b[k]), k
    shutil.rmtree(exp / "checkpoints")
