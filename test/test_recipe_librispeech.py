"""egs/librispeech end to end on ten real dev-clean utterances in the official layout
(test/fixtures/LibriSpeech) with a tiny random CTC encoder and a tiny random LLM in place of
SenseVoiceSmall and Qwen2.5-1.5B: stages 0-5 of its run.sh with the recipe's own configs,
only their sizes and lengths overridden."""
import json
import os
import subprocess
from pathlib import Path

import pytest
import torch
from tiny_hf import UPPER, recipe_copy, tiny_ctc_dir, tiny_smollm2_dir, tiny_train_args

TOP = Path(__file__).resolve().parents[1]
SRC = TOP / "egs" / "librispeech"
FIXTURE = TOP / "test" / "fixtures" / "LibriSpeech"


def parts(root: Path) -> tuple[Path, Path, Path]:
    """A recipe dir (copies of run.sh, db.sh, conf, local; tasu.sh and utils linked), a tiny
    Wav2Vec2ForCTC over LibriSpeech's upper-case letters, and a tiny Llama with SmolLM2's tokenizer."""
    return recipe_copy(TOP, "librispeech", root), tiny_ctc_dir(root / "ctc", "wav2vec2", UPPER), \
        tiny_smollm2_dir(root / "llm")


def run_recipe(recipe: Path, ctc: Path, llm: Path, ngpu: int = 0) -> subprocess.CompletedProcess:
    """Stages 0-5 on the fixture, the sharded-text variant (conf/tuning/train_lm_text.yaml: the
    paper's config + shard_size) in shards of 4 of the 10 transcripts, so that the recipe's stage 2
    reads its text shard by shard."""
    (recipe / "conf" / "decode_tiny.yaml").write_text("base: decode.yaml\nmax_new_tokens: 6\nnum_beams: 2\n")
    over = tiny_train_args(llm, dev_utts=4) + " --override shard_size=4"
    env = {**os.environ, "LIBRISPEECH": str(FIXTURE), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        ["./run.sh", "--stage", "0", "--stop_stage", "5", "--encoder", f"hf:{ctc}", "--ngpu", str(ngpu),
         "--train_set", "train_small", "--valid_set", "dev_clean_2", "--test_sets", "dev_clean_2",
         "--local_data_opts", "--train_sets dev-clean-2 --speech_sets dev-clean-2 --train_name train_small",
         "--decode_config", "conf/decode_tiny.yaml", "--train_config", "conf/tuning/train_lm_text.yaml",
         "--train_args", over],
        cwd=recipe, env=env, capture_output=True, text=True, timeout=1200)


def check_outputs(recipe: Path) -> Path:
    """What every run of the recipe must leave; returns the exp dir."""
    exp = next((recipe / "exp").glob("tasu_train_*"))
    cfg = (exp / "config.yaml").read_text()
    # the recipe's configuration reached the model: frozen LLM, the reference's prompt and schedule
    assert "finetune: none" in cfg and "请识别语音并转写为英文" in cfg and "lr: 5.0e-05" in cfg
    assert "step 2 loss" in (exp / "train.log").read_text() and "shard_size: 4" in cfg
    assert json.loads((exp / "shards" / "shards.json").read_text())["sizes"] == [4, 4, 2]
    score = json.loads((exp / "decode_dev_clean_2" / "score.json").read_text())
    assert score["n_utts"] == 10 and score["n_ref_words"] > 100  # all ten scored against the real transcripts
    assert "| dev_clean_2 | 10 |" in (recipe / "RESULTS.md").read_text()
    # stage 1 stored the posteriors as top-16 rows (the recipe's default for 25 055 units), decoded as such
    assert json.loads((recipe / "dump_hf_ctc" / "dev_clean_2" / "feats.info").read_text())["k"] == 16
    return exp


def test_librispeech_recipe_end_to_end(tmp_path):
    recipe, ctc, llm = parts(tmp_path)
    res = run_recipe(recipe, ctc, llm)
    assert res.returncode == 0, f"{res.stdout[-4000:]}\n{res.stderr[-6000:]}"
    check_outputs(recipe)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (egs/librispeech/local/gpu_check.sh)")
def test_librispeech_recipe_end_to_end_on_cuda(tmp_path):
    """The same run with --ngpu 1: stage 1's encoder, stage 2's training and
    stage 4's decoding on the GPU, every output as on the CPU."""
    recipe, ctc, llm = parts(tmp_path)
    res = run_recipe(recipe, ctc, llm, ngpu=1)
    assert res.returncode == 0, f"{res.stdout[-4000:]}\n{res.stderr[-6000:]}"
    exp = check_outputs(recipe)
    log = (exp / "train.log").read_text()
    assert "device cuda:0" in log and "amp: auto on cuda -> bf16 autocast" in log, log[-3000:]
