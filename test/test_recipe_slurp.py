"""egs/slurp end to end on a tiny SLURP in its release layout (test/fixtures/slurp) with a tiny
random CTC encoder and a tiny random LLM in place of SenseVoiceSmall and Qwen2.5-1.5B: stages 0-5
of its run.sh (multi-task text-only training, every task decoded and scored), then the cascade
rows (stages 4-5 reading the model's own transcripts), with the recipe's own configs, only their
sizes and lengths overridden."""
import json
import os
import subprocess
from pathlib import Path

import pytest
from tiny_hf import LOWER, recipe_copy, tiny_ctc_dir, tiny_smollm2_dir, tiny_train_args

TOP = Path(__file__).resolve().parents[1]
FIXTURE = TOP / "test" / "fixtures" / "slurp"


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """egs/slurp as a checkout has it, beside the librispeech conf it extends, a tiny
    Wav2Vec2ForCTC over lower-case letters, and a tiny Llama with SmolLM2's tokenizer."""
    root = tmp_path_factory.mktemp("slurp")
    return recipe_copy(TOP, "slurp", root, bases=("librispeech",)), tiny_ctc_dir(root / "ctc", "wav2vec2", LOWER), \
        tiny_smollm2_dir(root / "llm")


def run(recipe, ctc, *args):
    env = {**os.environ, "SLURP": str(FIXTURE), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    res = subprocess.run(["./run.sh", "--encoder", f"hf:{ctc}", "--decode_config", "conf/decode_tiny.yaml", *args],
                         cwd=recipe, env=env, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, f"{res.stdout[-4000:]}\n{res.stderr[-6000:]}"
    return res


def test_slurp_recipe_end_to_end(parts):
    recipe, ctc, llm = parts
    (recipe / "conf" / "decode_tiny.yaml").write_text("base: decode.yaml\nmax_new_tokens: 4\nnum_beams: 1\n")
    over = tiny_train_args(llm, dev_utts=4)
    run(recipe, ctc, "--stage", "0", "--stop_stage", "5", "--train_args", over)
    exp = next((recipe / "exp").glob("tasu_train_*"))
    log = (exp / "train.log").read_text()
    n_train = len((recipe / "data" / "train" / "text").read_text().splitlines())
    for task in ("asr", "scenario", "action", "intent"):  # one example per sentence and task
        assert f"task {task}: {n_train} examples" in log
    assert "finetune: none" in (exp / "config.yaml").read_text()  # the paper's configuration, extended
    for d in ("devel", "test"):
        n = len((recipe / "data" / d / "text").read_text().splitlines())
        assert json.loads((exp / f"decode_{d}" / "score.json").read_text())["n_utts"] == n
        for task in ("scenario", "action", "intent"):
            score = json.loads((exp / f"decode_{d}_{task}" / "score.json").read_text())
            assert score["n_utts"] == n and 0.0 <= score["value"] <= 1.0, score
    results = (recipe / "RESULTS.md").read_text()
    assert "| test (intent) |" in results and "| devel |" in results
    # cascade rows: the SLU tasks read a model's transcripts (here its own) instead of the speech
    run(recipe, ctc, "--stage", "4", "--stop_stage", "5", "--cascade_from", str(exp), "--inference_tag", "cascade",
        "--slu_tasks", "intent")
    score = json.loads((exp / "decode_test_intent_cascade" / "score.json").read_text())
    assert score["n_utts"] == len((recipe / "data" / "test" / "text").read_text().splitlines())
    assert not (exp / "decode_test_cascade").exists()  # no transcription in a cascade
