"""End to end: the mini_en recipe with tiny settings through every stage (real models, real data)."""
import json
import lzma
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

TOP = Path(__file__).resolve().parents[1]
NEEDS = ["espeak-ng", "sox", "bible"]


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    missing = [c for c in NEEDS if shutil.which(c) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: run tools/install.sh")
    d = tmp_path_factory.mktemp("egs") / "mini_en"
    d.mkdir()
    for name in ("run.sh", "conf", "local"):
        src = TOP / "egs" / "mini_en" / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, d / name)
    os.symlink(TOP / "egs" / "TEMPLATE" / "tasu.sh", d / "tasu.sh")
    os.symlink(TOP / "utils", d / "utils")
    return d


def run(recipe, *args, timeout=900):
    res = subprocess.run(["./run.sh", *args], cwd=recipe, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"run.sh {' '.join(args)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-6000:]}"
    return res.stdout + res.stderr


TINY = ["--local_data_opts", "--n_train 48 --n_dev 8 --n_test 6 --n_paired 6",
        "--train_args", "--override optim.max_steps=4 --override optim.batch_size=4 --override dev_utts=4 "
                        "--override dev_interval=2 --override save_interval=2 --override log_interval=1 "
                        "--override projector.init_steps=20",
        "--nj", "2"]


def test_recipe_end_to_end(recipe):
    out = run(recipe, "--stage", "0", "--stop_stage", "5", *TINY)
    assert "Stage 3: no --paired_set: no paired fine-tuning" in out
    exp = next((recipe / "exp").glob("tasu_*"))
    for f in ("model.pt", "config.yaml", "units.txt", "loss.png", "train.log", "history.json"):
        assert (exp / f).is_file(), f
    assert "dev_loss" in (exp / "train.log").read_text()
    for s in ("test_in", "test_ood"):
        assert len((recipe / "data" / s / "wav.scp").read_text().splitlines()) == 6
        dec = exp / f"decode_{s}"
        hyp = (dec / "text").read_text().splitlines()
        assert len(hyp) + len((recipe / "dump" / s / "skipped").read_text().splitlines()) == 6
        summary = json.loads((dec / "score.json").read_text())
        assert 0 <= summary["wer"] and summary["n_utts"] == 6
        assert "%WER" in (dec / "result.txt").read_text()
    table = (recipe / "RESULTS.md").read_text()
    # WER, CER and the encoder's own unit error rate against the G2P units of the references
    # sclite's columns (Snt, Wrd, Corr, Sub, Del, Ins, Err, S.Err), then CER and the encoder's UER
    assert re.search(r"\| test_in \| 6 \| \d+ \| " + r"[\d.]+ \| " * 8, table)
    assert re.search(r"\| test_ood \| 6 \| \d+ \| " + r"[\d.]+ \| " * 8, table)
    uer = json.loads((exp / "decode_test_in" / "encoder_score.json").read_text())
    assert uer["metric"] == "UER" and 0 < uer["wer"] < 60  # hama hears espeak-ng speech, imperfectly
    # test words stay out of the training lexicon
    train_words = {ln.split()[0] for ln in (recipe / "dump" / "lexicon.txt").read_text().splitlines() if ln.strip()}
    text_words = {w for part in ("train", "dev") for ln in (recipe / "data" / part / "text").read_text().splitlines()
                  for w in ln.split()[1:]}
    assert train_words <= text_words
    # errors by the reference words' count in the training text, both sets, every word in a bin
    bins = (exp / "errors_by_count.md").read_text()
    for s in ("test_in", "test_ood"):
        n_words = json.loads((exp / f"decode_{s}" / "score.json").read_text())["n_ref_words"]
        table = bins.split(f"decode_{s}/text against")[1].split("###")[0]
        assert sum(int(row.split("|")[2]) for row in table.splitlines() if re.match(r"\| \d", row)) == n_words

    # Another decoding setting goes to its own dirs and its own RESULTS.md rows
    out = run(recipe, "--stage", "4", "--stop_stage", "5", "--inference_tag", "vocab",
              "--decode_args", "--vocabulary data/vocab.txt", *TINY)
    assert "closed vocabulary" in (exp / "logs" / "decode_test_in_vocab.log").read_text()
    vocab = set((recipe / "data" / "vocab.txt").read_text().split())
    for line in (exp / "decode_test_in_vocab" / "text").read_text().splitlines():
        assert set(line.split()[1:-1]) <= vocab  # only the last word may be cut by max_new_tokens
    table = (recipe / "RESULTS.md").read_text()
    assert "| test_in |" in table and "| test_in (vocab) |" in table

    # Stage 6 packs the experiment in the model-zoo layout, with its results
    run(recipe, "--stage", "6", *TINY)
    import zipfile

    with zipfile.ZipFile(exp / "packed" / f"{exp.name}.zip") as z:
        names = set(z.namelist())
    assert {"meta.yaml", f"exp/{exp.name}/model.pt", f"exp/{exp.name}/config.yaml",
            f"exp/{exp.name}/decode.yaml", f"exp/{exp.name}/RESULTS.md", f"exp/{exp.name}/lexicon.txt"} <= names
    with zipfile.ZipFile(exp / "packed" / f"{exp.name}.zip") as z:  # the training lexicon, as stage 1 wrote it
        assert z.read(f"exp/{exp.name}/lexicon.txt") == (recipe / "dump" / "lexicon.txt").read_bytes()
        # and a replay sample of the training text for tasu-adapt (all 48 sentences of the tiny set)
        replay = lzma.decompress(z.read(f"exp/{exp.name}/replay.txt.xz")).decode().splitlines()
        train = {ln.split(" ", 1)[1] for ln in (recipe / "data" / "train" / "text").read_text().splitlines()}
        assert len(replay) == 48 and set(replay) == train

    # A new data dir is decoded and scored with the trained model; nothing is retrained.
    model_mtime = (exp / "model.pt").stat().st_mtime
    new = recipe / "data" / "mine"
    new.mkdir()
    src = recipe / "data" / "test_in"
    lines = lambda f: (src / f).read_text().splitlines()[:3]  # noqa: E731
    (new / "wav.scp").write_text("\n".join(lines("wav.scp")) + "\n")
    (new / "text").write_text("\n".join(lines("text")) + "\n")
    out = run(recipe, "--stage", "1", "--stop_stage", "5", "--test_sets", "mine", *TINY)
    assert (exp / "model.pt").stat().st_mtime == model_mtime
    assert "model.pt exists, skipping" in out
    assert (recipe / "dump" / "mine" / "feats.scp").is_file()
    assert json.loads((exp / "decode_mine" / "score.json").read_text())["n_utts"] == 3
    assert "mine" in (recipe / "RESULTS.md").read_text()

    # Stage 3: paired fine-tuning from the stage-2 model (curriculum) on real posteriors of
    # data/train_paired; stages 4-5 then decode the fine-tuned model, and RESULTS.md lists both.
    assert len((recipe / "data" / "train_paired" / "wav.scp").read_text().splitlines()) == 6
    test_voices = {ln.split()[1] for s in ("dev", "test_in", "test_ood")
                   for ln in (recipe / "data" / s / "utt2spk").read_text().splitlines()}
    paired_voices = {ln.split()[1] for ln in (recipe / "data" / "train_paired" / "utt2spk").read_text().splitlines()}
    assert paired_voices and not paired_voices & test_voices
    out = run(recipe, "--stage", "1", "--stop_stage", "5", "--paired_set", "train_paired", "--test_sets", "test_in",
              *TINY)
    ft = exp.parent / f"{exp.name}_finetune"
    assert (ft / "model.pt").is_file() and (exp / "model.pt").stat().st_mtime == model_mtime
    log = (ft / "train.log").read_text()
    assert f"from exp/{exp.name}/model.pt" in log and "6 paired utterances" in log
    assert json.loads((ft / "decode_test_in" / "score.json").read_text())["n_utts"] == 6
    table = (recipe / "RESULTS.md").read_text()
    row = r"\| test_in \| 6 \| \d+ \| " + r"[\d.]+ \| " * 8
    assert re.search(row + rf"{exp.name}_finetune \|", table) and re.search(row + rf"{exp.name} \|", table)
    trained, before = torch.load(ft / "model.pt"), torch.load(exp / "model.pt")
    assert trained.keys() == before.keys() and any(not torch.equal(trained[k], before[k]) for k in before)

    # Stage 3 with a domain's text: tasu-adapt continues the stage-2 model on it, mixed with a replay
    # sample of the training text; stages 4-5 decode the adapted model with its own lexicon
    (recipe / "data" / "domain.txt").write_text("press the zorbex key to go on\nthe zorbex menu is closed now\n")
    out = run(recipe, "--stage", "3", "--stop_stage", "5", "--adapt_text", "data/domain.txt",
              "--adapt_args", "--steps 2", "--test_sets", "test_in", *TINY)
    ad = exp.parent / f"{exp.name}_adapt_domain"
    assert (exp / "model.pt").stat().st_mtime == model_mtime
    assert "zorbex\t" in (ad / "lexicon.txt").read_text() and "2 of 2 steps" in (ad / "ADAPT.md").read_text()
    assert "2 domain, 2 replay" in (ad / "logs" / "adapt.log").read_text()
    assert f"--lexicon {ad.relative_to(recipe)}/lexicon.txt" in out  # decoded with the adapted lexicon
    assert json.loads((ad / "decode_test_in" / "score.json").read_text())["n_utts"] == 6
    assert re.search(row + rf"{exp.name}_adapt_domain \|", (recipe / "RESULTS.md").read_text())
    adapted = torch.load(ad / "model.pt")
    assert adapted.keys() == before.keys() and any(not torch.equal(adapted[k], before[k].float()) for k in before)
    out = run(recipe, "--stage", "3", "--stop_stage", "3", "--adapt_text", "data/domain.txt", *TINY)
    assert "model.pt exists, skipping the adaptation" in out


def test_recipe_task_transfer_and_cascade(recipe):
    """After the run above: intent answers with the task prompt, scored by accuracy; the cascade."""
    exp = recipe / "exp" / "tasu_train_hama"
    assert (recipe / "data" / "slu_test" / "intent").is_file() and (recipe / "data" / "train_mt" / "intent").is_file()
    run(recipe, "--stage", "1", "--stop_stage", "5", "--test_sets", "slu_test", "--task", "intent", *TINY)
    summary = json.loads((exp / "decode_slu_test_intent" / "score.json").read_text())
    assert summary["metric"] == "accuracy" and summary["task"] == "intent" and summary["n_utts"] == 6
    log = (exp / "logs" / "decode_slu_test_intent.log").read_text()
    assert "task intent: prompt 'What does the speaker want?" in log
    run(recipe, "--stage", "4", "--stop_stage", "5", "--test_sets", "slu_test", *TINY)  # its ASR output
    run(recipe, "--stage", "4", "--stop_stage", "5", "--test_sets", "slu_test", "--task", "intent",
        "--cascade_from", f"exp/{exp.name}", "--inference_tag", "cascade", *TINY)
    assert "cascade: 6 texts from" in (exp / "logs" / "decode_slu_test_cascade.log").read_text()
    assert json.loads((exp / "decode_slu_test_cascade" / "score.json").read_text())["n_utts"] == 6
    table = (recipe / "RESULTS.md").read_text()
    assert re.search(rf"\| slu_test \(intent\) \| intent \| 6 \| accuracy \| [\d.]+ \| {exp.name} \|", table)
    assert re.search(rf"\| slu_test \(cascade\) \| intent \| 6 \| accuracy \| [\d.]+ \| {exp.name} \|", table)
    assert "| test_in | 6 |" in table  # earlier rows are kept
