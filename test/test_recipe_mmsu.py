"""egs/mmsu end to end on a tiny MMSU (test/fixtures/mmsu) with the shipped CPU model
(tasu/pretrained/open_en.zip: hama + SmolLM2-135M-Instruct): stages 0, 1, 4 and 5 of its run.sh,
each item asked its own question and options through the prompt fields, scored overall and by
category. The accuracy itself is not asserted (the model was trained for transcription only)."""
import json
import os
import subprocess
from pathlib import Path

import pytest
from tiny_hf import recipe_copy

TOP = Path(__file__).resolve().parents[1]
FIXTURE = TOP / "test" / "fixtures" / "mmsu"
MODEL = TOP / "tasu" / "pretrained" / "open_en.zip"


def test_mmsu_recipe_end_to_end(tmp_path):
    pytest.importorskip("hama")
    recipe = recipe_copy(TOP, "mmsu", tmp_path)
    (recipe / "conf" / "decode_cpu.yaml").write_text("base: decode.yaml\npsd_threshold: 0.5\nmax_new_tokens: 6\n")
    env = {**os.environ, "MMSU_ITEMS": str(FIXTURE / "mmsu.jsonl"), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "TASU_CACHE": str(tmp_path / "cache")}
    res = subprocess.run(["./run.sh", "--model", str(MODEL), "--decode_config", "conf/decode_cpu.yaml", "--nj", "1"],
                         cwd=recipe, env=env, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, f"{res.stdout[-4000:]}\n{res.stderr[-6000:]}"
    out = recipe / "exp" / "open_en" / "decode_mmsu_mmsu"
    hyps = (out / "text").read_text().splitlines()
    assert len(hyps) == 6
    score = json.loads((out / "score.json").read_text())
    assert score["metric"] == "mc_accuracy" and score["n_utts"] == 6
    log = (recipe / "exp" / "open_en" / "logs" / "decode_mmsu_mmsu.log").read_text()
    assert "task mmsu" in log
    results = (recipe / "RESULTS.md").read_text()
    assert "| mmsu (mmsu) | mmsu | 6 | mc_accuracy |" in results
    assert "accuracy by category and task" in results and "| phonology | 2 |" in results
