"""tasu-adapt on the shipped mini_en model and a few sentences: new words land in the lexicon, the
weights change, the card says what was done; a killed run resumes to the uninterrupted weights;
bad input is refused with its file and line before the LLM is loaded."""
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch
import yaml

pytest.importorskip("hama")
TOP = Path(__file__).resolve().parents[1]
MINI = TOP / "tasu" / "pretrained" / "mini_en.zip"
DOMAIN = ["Press pound to reach the voicemail of extension four.", "Your zorbex order has shipped.",
          "©©© ©©©", "Please hold for a quillan agent."]
REPLAY = ["the cat sat on the mat", "a dog ran in the park", "she reads a book at night", "we walk to school"]


def adapt_cmd(tmp_path, out, *more):
    return [sys.executable, "-m", "tasu.bin.adapt", "--model", str(MINI), "--text", str(tmp_path / "domain.txt"),
            "--words", str(tmp_path / "words.txt"), "--replay_text", str(tmp_path / "replay.txt"),
            "--out", str(out), "--word_repeats", "2", "--override", "save_interval=1", "--override", "log_interval=1",
            *map(str, more)]


def write_inputs(d: Path) -> Path:
    (d / "domain.txt").write_text("\n".join(DOMAIN) + "\n", encoding="utf-8")
    (d / "words.txt").write_text("Quillan\nzorbex tracker\t(a note)\n", encoding="utf-8")
    (d / "replay.txt").write_text("\n".join(REPLAY) + "\n", encoding="utf-8")
    return d


@pytest.fixture
def inputs(tmp_path):
    return write_inputs(tmp_path)


def run(cmd, **kw):
    return subprocess.run(cmd, cwd=TOP, capture_output=True, text=True, timeout=900, **kw)


@pytest.fixture(scope="module")
def adapted(tmp_path_factory):
    """One uninterrupted run of 4 steps: ``(inputs dir, out zip, its stderr)``."""
    d = write_inputs(tmp_path_factory.mktemp("adapt"))
    out = d / "adapted.zip"
    r = run(adapt_cmd(d, out, "--steps", "4"))
    assert r.returncode == 0, r.stderr[-3000:]
    return d, out, r.stderr


def test_adapt_end_to_end(adapted):
    from tasu.g2p import read_lexicon
    from tasu.inference import Speech2Text
    from tasu.zoo import read_weights, unpack

    inputs, out, _ = adapted
    u = unpack(out)
    lex, _ = read_lexicon(u.lexicon_file)
    assert {"voicemail", "zorbex", "quillan", "tracker", "pound"} <= set(lex) and lex["zorbex"]
    before, after = read_weights(unpack(MINI).model_file), read_weights(u.model_file)
    common = before.keys() & after.keys()   # (mini_en.zip predates a rename of the projector's tensors)
    assert len(common) > 10 and any(not torch.equal(before[k], after[k].to(before[k].dtype)) for k in common)
    work = inputs / "adapted.work"
    # the line nobody says is a counted skip with its file:line; the rest is trained on
    assert (work / "skipped.txt").read_text().startswith(f"{inputs / 'domain.txt'}:3 chars")
    text = (work / "data" / "train" / "text").read_text().splitlines()
    assert sum(t.startswith("adapt-") for t in text) == 3 + 2 * 2    # 3 sentences + 2 words x 2 repeats
    assert sum(t.startswith("replay-") for t in text) == len(REPLAY)  # ratio 1, a pool of 4: all of it
    with zipfile.ZipFile(out) as z:
        card = z.read(f"exp/{u.model_file.parent.name}/ADAPT.md").decode()
    assert "tasu-adapt" in card and "--steps 4" in card and "4 of 4 steps" in card
    assert "lines skipped: 1" in card and "replay: 4 sentences" in card
    assert u.replay_file is not None and u.replay_file.is_file()        # carried on for a later adaptation
    assert yaml.safe_load(u.decode_config.read_text()) == yaml.safe_load(unpack(MINI).decode_config.read_text())
    s2t = Speech2Text.from_pretrained(out)
    assert isinstance(s2t([torch.zeros(8000).numpy() + 0.01], sample_rate=16000)[0], str)
    # the same inputs again: every step is done, nothing is retrained, the zip is rewritten whole
    r = run(adapt_cmd(inputs, out, "--steps", "4"))
    assert r.returncode == 0 and "training 4 steps" not in r.stderr and "adapted model:" in r.stderr
    # the packed weights are the default --interpolate 0.5 of the trained ones and the original's;
    # --interpolate 0.25 reuses the same training (nothing retrained) for another mix
    trained = read_weights(next((work / "exp").glob("*_adapt")) / "model.pt")
    mix = inputs / "mix.zip"
    r = run(adapt_cmd(inputs, mix, "--steps", "4", "--interpolate", "0.25", "--workdir", work))
    assert r.returncode == 0 and "training 4 steps" not in r.stderr, r.stderr[-2000:]
    m = unpack(mix)
    got = read_weights(m.model_file)
    assert got.keys() == after.keys() == trained.keys()
    assert "0.25 x the adapted" in (m.model_file.parent / "ADAPT.md").read_text() and "0.5 x the adapted" in card
    for k in common:  # (the zips hold float16 weights, as mini_en.zip does: its rounding)
        for share, w in ((0.5, after), (0.25, got)):
            want = share * trained[k].double() + (1 - share) * before[k].double()
            torch.testing.assert_close(w[k].double(), want, atol=1e-4, rtol=2e-3)
        if not torch.equal(trained[k], before[k].to(trained[k].dtype)):
            assert not torch.allclose(got[k].double(), after[k].double())
    r = run(adapt_cmd(inputs, mix, "--interpolate", "0"))
    assert r.returncode == 2 and "--interpolate 0" in r.stderr


def test_a_time_budget_packs_the_model_of_the_last_step(inputs):
    from tasu.zoo import unpack

    out = inputs / "budget.zip"
    r = run(adapt_cmd(inputs, out, "--steps", "50", "--max_minutes", "0.001"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "time budget of 0.001 min reached after step 1 of 50" in r.stderr
    with zipfile.ZipFile(out) as z:
        assert "1 of 50 steps (time budget 0.001 min reached)" in z.read(
            f"exp/{unpack(out).model_file.parent.name}/ADAPT.md").decode()


def test_killed_adapt_resumes_to_the_uninterrupted_weights(adapted, inputs):
    ref_dir, _, _ = adapted
    out = inputs / "killed.zip"
    p = subprocess.Popen(adapt_cmd(inputs, out, "--steps", "4"), cwd=TOP, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    cks = inputs / "killed.work" / "exp"
    t0 = time.time()
    while not any(cks.glob("*/checkpoints/step0000002.pt")):
        assert p.poll() is None and time.time() - t0 < 600, "the run ended before it could be killed"
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    assert p.wait() == -signal.SIGKILL
    assert not out.exists() and not list(inputs.glob(".killed.zip.*"))   # no zip, whole or torn
    r = run(adapt_cmd(inputs, out, "--steps", "4"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resumed from" in r.stderr
    a = torch.load(next((ref_dir / "adapted.work" / "exp").glob("*_adapt/model.pt")))  # the trained weights
    b = torch.load(next(cks.glob("*_adapt/model.pt")))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("domain, words", [
    (b"", "domain.txt: the domain text file is empty"),
    (b"Fine.\n\xff\xfe oops\n", "domain.txt:2: not valid UTF-8"),
    (None, "domain.txt: domain text file not found"),
    (b"\xa9\xa9\n".decode("latin-1").encode(), "no usable sentence (1 skipped"),
])
def test_bad_text_is_refused_naming_file_and_line(inputs, domain, words):
    f = inputs / "domain.txt"
    if domain is None:
        f.unlink()
    else:
        f.write_bytes(domain)
    cmd = [c for c in adapt_cmd(inputs, inputs / "x.zip") if c not in ("--words", str(inputs / "words.txt"))]
    r = run(cmd)
    assert r.returncode == 1 and words in r.stderr, r.stderr[-2000:]
    assert not (inputs / "x.zip").exists()


def test_other_refusals(inputs):
    from tasu.zoo import unpack

    # no replay text: the mini_en zip carries none
    r = run([sys.executable, "-m", "tasu.bin.adapt", "--model", str(MINI), "--text", str(inputs / "domain.txt"),
             "--out", str(inputs / "x.zip")])
    assert r.returncode == 1 and "carries no replay text" in r.stderr
    # a work dir of another run
    work = inputs / "x.work"
    work.mkdir()
    (work / "inputs.json").write_text('{"model": "something else"}')
    r = run(adapt_cmd(inputs, inputs / "x.zip"))
    assert r.returncode == 1 and "holds a run of other inputs" in r.stderr
    # a model trained on other units than the encoder's
    u = unpack(MINI)
    exp = inputs / "exp" / "other_units"
    exp.mkdir(parents=True)
    for f in (u.train_config, u.model_file):
        (exp / f.name).write_bytes(f.read_bytes())
    lines = u.units_file.read_text().splitlines()       # `<unit> <id>` lines: two units swap their ids
    (a, i), (b, j) = lines[5].split(), lines[6].split()
    lines[5:7] = [f"{b} {i}", f"{a} {j}"]
    (exp / "units.txt").write_text("\n".join(lines) + "\n")
    r = run([c if c != str(MINI) else str(exp) for c in adapt_cmd(inputs, inputs / "y.zip")])
    assert r.returncode == 1 and "units differ from hama's" in r.stderr, r.stderr[-2000:]
    r = run(adapt_cmd(inputs, inputs / "y.txt"))
    assert r.returncode == 2 and "packed .zip files" in r.stderr
    r = run(adapt_cmd(inputs, inputs / "z.zip") + ["--lexicon", str(inputs / "no_such_lexicon.txt")])
    assert r.returncode == 1 and "no_such_lexicon.txt: no such file" in r.stderr
    assert not (inputs / "z.work").exists()  # refused before anything was written


def test_paired_audio_continues_with_stage_3(adapted, tmp_path):
    """--paired_data: the text step (done: the fixture's work dir) then fine-tuning on real
    posteriors of the domain's audio, packed from the stage-3 dir."""
    import shutil

    from tasu.data import write_data_dir

    inputs, _, _ = adapted
    d = tmp_path / "in"
    shutil.copytree(inputs, d, ignore=shutil.ignore_patterns("*.zip"))
    texts = {"p1": "press pound for voicemail", "p2": "please hold for an agent", "p3": "your order has shipped",
             "p4": "dial the extension now"}
    wavs = {}
    for u, t in texts.items():
        subprocess.run(["espeak-ng", "-w", str(tmp_path / f"{u}.wav"), t], check=True)
        wavs[u] = str(tmp_path / f"{u}.wav")
    write_data_dir(tmp_path / "paired", wav_scp=wavs, text=texts)
    out = d / "adapted.zip"
    r = run(adapt_cmd(d, out, "--steps", "4", "--paired_data", tmp_path / "paired", "--paired_steps", "2"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "training 4 steps" not in r.stderr            # the text step was done: copied work dir
    assert "4 paired utterances" in r.stderr
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        card = z.read(next(n for n in names if n.endswith("ADAPT.md"))).decode()
    assert any(n.startswith("exp/") and "_adapt_paired_mix0.5/" in n for n in names)  # (--interpolate 0.5)
    assert f"paired fine-tuning: {tmp_path / 'paired'}, 2 steps" in card
