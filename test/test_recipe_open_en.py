"""End to end: the open_en recipe with tiny settings (real text, real speech, real models, pocketsphinx)."""
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[1]
SRC = TOP / "egs" / "open_en"


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    pytest.importorskip("pocketsphinx")
    if not Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz").is_file():
        pytest.fail("asterisk-core-sounds-en not installed: run tools/install.sh")
    d = tmp_path_factory.mktemp("egs") / "open_en"
    d.mkdir()
    for name in ("run.sh", "conf", "local"):
        src = SRC / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, d / name)
    for name, target in (("tasu.sh", TOP / "egs" / "TEMPLATE" / "tasu.sh"), ("utils", TOP / "utils"),
                         ("db", SRC / "db")):
        os.symlink(target, d / name)
    return d


def test_open_en_end_to_end(recipe):
    tiny = ["--local_data_opts", "--n_train 64 --n_test 3",
            "--train_args", f"--override init={TOP / 'tasu/pretrained/mini_en.zip'} --override optim.max_steps=2 "
                            "--override optim.batch_size=4 --override dev_utts=4 --override dev_interval=2 "
                            "--override save_interval=2 --override log_interval=1"]
    res = subprocess.run(["./run.sh", "--stage", "0", "--stop_stage", "5", *tiny], cwd=recipe,
                         capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, f"{res.stdout[-3000:]}\n{res.stderr[-6000:]}"
    exp = recipe / "exp" / "tasu_train_hama"
    assert "initialised" in (exp / "train.log").read_text() and (exp / "model.pt").is_file()
    # mini_en's model was trained with seed 1 too: said, since on the same text it would replay its batches
    assert "was trained with seed 1, the seed of this run" in (exp / "train.log").read_text()
    # the shipped lexicon seeded stage 1: no training word needed G2P
    assert ", 0 new to the lexicon" in (exp / "logs" / "units_train.log").read_text()
    table = (recipe / "RESULTS.md").read_text()
    for s in ("arctic_dev", "arctic_test", "asterisk"):
        for e in (exp, recipe / "exp" / "pocketsphinx"):
            score = json.loads((e / f"decode_{s}" / "score.json").read_text())
            assert score["n_utts"] == 3 and score["wer"] >= 0
        # the model and the peer, side by side
        row = rf"\| {s} \| 3 \| \d+ \| " + r"[\d.]+ \| " * 7  # Snt, Wrd, sclite's six rates, CER
        assert re.search(row + r"[\d.]+ \| tasu_train_hama \|", table)
        assert re.search(row + r"- \| pocketsphinx \|", table)
    # the 8 kHz telephone prompts were read at their own rate and resampled by the encoder
    assert "8000" not in (recipe / "data" / "asterisk" / "wav.scp").read_text()
    assert (recipe / "data" / "asterisk" / "skipped").read_text().count("no speech") == 17
