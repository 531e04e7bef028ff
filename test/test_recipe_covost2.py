"""egs/covost2 end to end on a tiny CoVoST 2 (test/fixtures/covost2) with a tiny random CTC encoder
and a tiny random LLM in place of SenseVoiceSmall and Qwen2.5-1.5B: stages 0-5 of its run.sh
(text-only transcription + translation training; WER and BLEU with sacrebleu's zh tokenizer),
with the recipe's own configs, only their sizes and lengths overridden. Stage 1 runs as two Slurm
array tasks (a stand-in sbatch: see test_jobs.py) and a merge."""
import json
import os
import subprocess
from pathlib import Path

import pytest
from test_jobs import FAKE_SBATCH
from tiny_hf import LOWER, recipe_copy, tiny_ctc_dir, tiny_smollm2_dir, tiny_train_args

TOP = Path(__file__).resolve().parents[1]
FIXTURE = TOP / "test" / "fixtures" / "covost2"


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    root = tmp_path_factory.mktemp("covost2")
    return recipe_copy(TOP, "covost2", root, bases=("librispeech",)), tiny_ctc_dir(root / "ctc", "wav2vec2", LOWER), \
        tiny_smollm2_dir(root / "llm")


def test_covost2_recipe_end_to_end(parts):
    recipe, ctc, llm = parts
    (recipe / "conf" / "decode_tiny.yaml").write_text("base: decode.yaml\nmax_new_tokens: 4\nnum_beams: 1\n")
    over = tiny_train_args(llm, dev_utts=2)
    bin_dir = recipe.parent / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(FAKE_SBATCH)
    (bin_dir / "sbatch").chmod(0o755)
    env = {**os.environ, "COVOST": str(FIXTURE / "covost"), "COMMONVOICE": str(FIXTURE / "cv"),
           "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    res = subprocess.run(["./run.sh", "--encoder", f"hf:{ctc}", "--decode_config", "conf/decode_tiny.yaml",
                          "--stage", "0", "--stop_stage", "5", "--train_args", over,
                          "--cmd_backend", "slurm", "--slurm_opts", "--time 0:10:00", "--nj", "2"],
                         cwd=recipe, env=env, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, f"{res.stdout[-4000:]}\n{res.stderr[-6000:]}"
    exp = next((recipe / "exp").glob("tasu_train_*"))
    log = (exp / "train.log").read_text()
    n_train = len((recipe / "data" / "train_en_zh" / "text").read_text().splitlines())
    assert f"task asr: {n_train} examples" in log and f"task st_zh: {n_train} examples" in log
    n_test = len((recipe / "data" / "test_en_zh" / "text").read_text().splitlines())
    assert json.loads((exp / "decode_test_en_zh" / "score.json").read_text())["n_utts"] == n_test
    bleu = json.loads((exp / "decode_test_en_zh_st_zh" / "score.json").read_text())
    assert bleu["metric"] == "bleu" and bleu["n_utts"] == n_test
    assert "tok:zh" in (exp / "decode_test_en_zh_st_zh" / "result.txt").read_text()  # Chinese tokenisation
    assert "| test_en_zh (st_zh) | st_zh |" in (recipe / "RESULTS.md").read_text()
    # stage 1 ran as a Slurm array of two tasks per set, then merged
    submitted = (bin_dir / "sbatch.args").read_text()
    assert "--array=1-2" in submitted and "--time 0:10:00" in submitted
    assert (exp / "logs" / "posteriors_test_en_zh.2.log").read_text().splitlines()[-1] == "# exit 0"
