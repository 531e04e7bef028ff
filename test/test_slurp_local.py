"""egs/slurp stage 0 on a tiny SLURP in its release layout (test/fixtures/slurp: real devel.jsonl
lines, synthesised audio), and its errors on a malformed release (each names the file and line)."""
import json
import shutil
from pathlib import Path

import pytest
from tiny_hf import recipe_module

from tasu.audio import load_audio
from tasu.data import DataDir, read_targets

TOP = Path(__file__).resolve().parents[1]
FIXTURE = TOP / "test" / "fixtures" / "slurp"
pytestmark = pytest.mark.unit  # in-process, about a second


def data_prep():
    return recipe_module(TOP, "slurp", "data_prep")


def run(slurp, data, *more):
    return data_prep().main(["--slurp", str(slurp), "--audio", str(slurp / "audio"), "--data", str(data), *more])


def release(name):
    return [json.loads(x) for x in (FIXTURE / "dataset" / "slurp" / f"{name}.jsonl").read_text().splitlines()]


def test_release_becomes_kaldi_data_dirs(tmp_path):
    assert run(FIXTURE, tmp_path / "data") == 0
    test = DataDir.load(tmp_path / "data" / "test")
    first = release("test")[0]
    files = [r["file"] for s in release("test") for r in s["recordings"]]
    assert sorted(test.utt_ids) == sorted(f[:-5] for f in files)  # one utterance per recording, named by file
    uid = first["recordings"][0]["file"][:-5]
    assert test.text[uid] == " ".join(t["surface"] for t in first["tokens"])
    answers = {k: read_targets(test, k) for k in ("scenario", "action", "intent")}
    assert answers["scenario"][uid] == first["scenario"] and answers["action"][uid] == first["action"]
    assert answers["intent"][uid] == f"{first['scenario']}_{first['action']}"  # as SLURP's scorer builds it
    wave, sr = load_audio(test, uid)
    assert sr == 16000 and 0.5 < len(wave) / sr < 10
    # training text: train + train_synthetic sentences, the planted test sentence dropped and counted
    train = DataDir.load(tmp_path / "data" / "train", require=("text",))
    n_release = len(release("train")) + len(release("train_synthetic"))
    assert len(train.utt_ids) == n_release - 1 and "slurp-990001" not in train.utt_ids
    assert (tmp_path / "data" / "train" / "dropped").read_text().startswith("1 sentences held out")
    assert set(read_targets(train, "intent")) == set(train.utt_ids)
    labels = (tmp_path / "data" / "intents.txt").read_text().split()
    assert answers["intent"][uid] in labels and labels == sorted(set(labels))


def test_without_synthetic_text(tmp_path):
    assert run(FIXTURE, tmp_path / "data", "--synthetic", "false") == 0
    train = DataDir.load(tmp_path / "data" / "train", require=("text",))
    assert len(train.utt_ids) == len(release("train")) - 1


def edit_line(n, change):
    def edit(path):
        lines = path.read_text().splitlines()
        lines[n - 1] = change(lines[n - 1])
        path.write_text("\n".join(lines) + "\n")
    return edit


def drop_field(name):
    def change(line):
        obj = json.loads(line)
        del obj[name]
        return json.dumps(obj)
    return change


def set_field(line, name, value):
    return json.dumps(dict(json.loads(line), **{name: value}))


@pytest.mark.parametrize("case,file,edit,says", [
    ("not JSON", "devel", edit_line(2, lambda s: s[:-1]), "devel.jsonl:2: not JSON"),
    ("no scenario", "train", edit_line(3, drop_field("scenario")), "train.jsonl:3: no 'scenario' field"),
    ("label with a space", "test", edit_line(1, lambda s: s.replace('"scenario": "', '"scenario": "x ')),
     "test.jsonl:1: scenario"),
    ("repeated id", "train", edit_line(2, lambda s: set_field(s, "slurp_id", release("train")[0]["slurp_id"])),
     "train.jsonl:2: slurp_id"),
    ("no words", "devel", edit_line(1, lambda s: set_field(s, "tokens", [])), "devel.jsonl:1: sentence"),
    ("not UTF-8", "test", lambda p: p.write_bytes(p.read_bytes() + b"\xff\n"), "test.jsonl:5: not valid UTF-8"),
    ("flac missing", "test", None, "test.jsonl:1: no audio"),
    ("file missing", "train_synthetic", lambda p: p.unlink(), "train_synthetic.jsonl: no such file"),
])
def test_malformed_release_names_file_and_line(tmp_path, caplog, case, file, edit, says):
    slurp = tmp_path / "slurp"
    shutil.copytree(FIXTURE, slurp)
    path = slurp / "dataset" / "slurp" / f"{file}.jsonl"
    if edit is None:  # the first test recording's flac is gone
        (slurp / "audio" / "slurp_real" / release("test")[0]["recordings"][0]["file"]).unlink()
    else:
        edit(path)
    assert run(slurp, tmp_path / "data") == 1
    assert says in caplog.text, caplog.text
    assert not (tmp_path / "data").exists()  # checked before anything is written
