"""egs/covost2 stage 0 on a tiny CoVoST 2 in its published column layout (test/fixtures/covost2:
split tsv files, synthesised mp3 clips), and its errors on a malformed release (file and line)."""
import shutil
from pathlib import Path

import pytest
from tiny_hf import recipe_module

from tasu.audio import load_audio
from tasu.data import DataDir, read_targets

TOP = Path(__file__).resolve().parents[1]
FIXTURE = TOP / "test" / "fixtures" / "covost2"
pytestmark = pytest.mark.unit  # in-process, about a second


def data_prep():
    return recipe_module(TOP, "covost2", "data_prep")


def run(root, data, tgt="zh-CN"):
    return data_prep().main(["--covost", str(root / "covost"), "--clips", str(root / "cv" / "en" / "clips"),
                             "--tgt", tgt, "--data", str(data)])


def tsv(root, tgt, split):
    lines = (root / "covost" / f"covost_v2.en_{tgt}.{split}.tsv").read_text().splitlines()[1:]
    return [x.split("\t") for x in lines]


@pytest.mark.parametrize("tgt,name", [("zh-CN", "en_zh"), ("de", "en_de")])
def test_split_files_become_kaldi_data_dirs(tmp_path, tgt, name):
    assert run(FIXTURE, tmp_path / "data", tgt) == 0
    test = DataDir.load(tmp_path / "data" / f"test_{name}")
    rows = tsv(FIXTURE, tgt, "test")
    uid = f"{rows[0][3][:16]}-{rows[0][0][:-4]}"
    assert len(test.utt_ids) == len(rows) and test.utt2spk[uid] == rows[0][3][:16]
    assert test.text[uid] == rows[0][1] and read_targets(test, "translation")[uid] == rows[0][2]
    wave, sr = load_audio(test, uid)  # the mp3 clip, read as it is
    assert sr == 22050 and 0.5 < len(wave) / sr < 10
    train = DataDir.load(tmp_path / "data" / f"train_{name}", require=("text",))
    # the train file repeats a test sentence: held out and counted
    assert len(train.utt_ids) == len(tsv(FIXTURE, tgt, "train")) - 1
    assert (tmp_path / "data" / f"train_{name}" / "dropped").read_text().startswith("1 lines held out")
    assert rows[0][1] not in train.text.values()


def rewrite(n, fn):
    def edit(path):
        lines = path.read_text().split("\n")
        lines[n - 1] = fn(lines[n - 1])
        path.write_text("\n".join(lines))
    return edit


@pytest.mark.parametrize("case,split,edit,says", [
    ("header", "train", rewrite(1, lambda s: s.replace("client_id", "speaker")), "train.tsv:1: expected the header"),
    ("three fields", "dev", rewrite(3, lambda s: s.rsplit("\t", 1)[0]), "dev.tsv:3: expected 4 tab-separated"),
    ("empty translation", "test", rewrite(2, lambda s: "\t".join(s.split("\t")[:2] + ["", s.split("\t")[3]])),
     "test.tsv:2: empty translation"),
    ("repeated clip", "train", rewrite(3, lambda s: "common_voice_en_19000001.mp3\t" + s.split("\t", 1)[1]),
     "train.tsv:3: clip common_voice_en_19000001.mp3 repeats (first on line 2)"),
    ("not UTF-8", "dev", lambda p: p.write_bytes(p.read_bytes() + b"\xff\tx\ty\tz\n"), "dev.tsv:4: not valid UTF-8"),
    ("missing clip", "test", "clip", "test.tsv:3: no audio"),
    ("missing file", "dev", lambda p: p.unlink(), "dev.tsv: no such file"),
])
def test_malformed_release_names_file_and_line(tmp_path, caplog, case, split, edit, says):
    root = tmp_path / "covost2"
    shutil.copytree(FIXTURE, root)
    path = root / "covost" / f"covost_v2.en_zh-CN.{split}.tsv"
    if edit == "clip":
        (root / "cv" / "en" / "clips" / tsv(root, "zh-CN", "test")[1][0]).unlink()
    else:
        edit(path)
    assert run(root, tmp_path / "data") == 1
    assert says in caplog.text, caplog.text
    assert not (tmp_path / "data").exists()  # checked before anything is written
