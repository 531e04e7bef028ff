"""egs/librispeech stage 0 on real LibriSpeech files in the official layout (test/fixtures/LibriSpeech,
ten dev-clean utterances), and its errors on a malformed corpus (each names the file and line)."""
import shutil
from pathlib import Path

import pytest
from tiny_hf import recipe_module

from tasu.audio import load_audio
from tasu.data import DataDir

TOP = Path(__file__).resolve().parents[1]
FIXTURE = TOP / "test" / "fixtures" / "LibriSpeech"
pytestmark = pytest.mark.unit  # in-process, about a second


def data_prep():
    return recipe_module(TOP, "librispeech", "data_prep")


def run(corpus, data, *more, sets=("dev-clean-2",)):
    return data_prep().main(["--corpus", str(corpus), "--data", str(data), *map(str, more), "--sets", *sets])


def test_official_layout_becomes_a_kaldi_data_dir(tmp_path):
    assert run(FIXTURE, tmp_path / "data") == 0
    dd = DataDir.load(tmp_path / "data" / "dev_clean_2")
    assert len(dd.utt_ids) == 10 and dd.utt_ids[0] == "1988-24833-0000"
    assert dd.text["1988-24833-0000"] == "THE TWO STRAY KITTENS GRADUALLY MAKE THEMSELVES AT HOME"
    assert dd.utt2spk["2412-153948-0002"] == "2412-153948"  # speaker-chapter, as Kaldi's recipe has it
    assert sorted(dd.spk2utt) == ["1988-24833", "2412-153948", "3752-4944"]
    wave, sr = load_audio(dd, "3752-4944-0001")  # the flac is read as it is
    assert sr == 16000 and 1.0 < len(wave) / sr < 30.0


def malformed(tmp_path, edit):
    corpus = tmp_path / "LibriSpeech"
    shutil.copytree(FIXTURE, corpus)
    ch = corpus / "dev-clean-2" / "1988" / "24833"
    edit(ch, ch / "1988-24833.trans.txt")
    return corpus


@pytest.mark.parametrize("case,edit,says", [
    ("flac missing", lambda ch, t: (ch / "1988-24833-0002.flac").unlink(),
     "1988-24833.trans.txt:3: no audio"),
    ("flac without a transcript", lambda ch, t: shutil.copy(ch / "1988-24833-0000.flac", ch / "1988-24833-0009.flac"),
     "1988-24833-0009.flac: no line in"),
    ("id of another chapter", lambda ch, t: t.write_text(t.read_text().replace("1988-24833-0001", "1988-99999-0001")),
     "1988-24833.trans.txt:2: utterance id '1988-99999-0001' is not one of chapter 1988-24833"),
    ("line without text", lambda ch, t: t.write_text(t.read_text().replace("0003 WHEN", "0003\n#")),
     "1988-24833.trans.txt:4: expected '<utt id> <TRANSCRIPT>'"),
    ("repeated id", lambda ch, t: t.write_text(t.read_text() + t.read_text().splitlines()[0] + "\n"),
     "1988-24833.trans.txt:5: utterance id '1988-24833-0000' repeats"),
    ("not UTF-8", lambda ch, t: t.write_bytes(t.read_bytes().replace(b"KITTENS", b"KITT\xe9NS")),
     "1988-24833.trans.txt:1: not valid UTF-8"),
    ("transcript file missing", lambda ch, t: t.unlink(), "1988-24833.trans.txt: missing (4 flac files"),
])
def test_a_malformed_corpus_is_an_error_naming_file_and_line(tmp_path, caplog, case, edit, says):
    corpus = malformed(tmp_path, edit)
    assert run(corpus, tmp_path / "data") == 1, case
    assert says in caplog.text, caplog.text
    assert not (tmp_path / "data" / "dev_clean_2" / "text").exists()  # nothing half-written


def test_a_missing_set_dir_says_where_it_looked(tmp_path, caplog):
    assert run(FIXTURE, tmp_path / "data", sets=("dev-clean-2", "test-clean")) == 1
    assert f"{FIXTURE / 'test-clean'}: no such set dir" in caplog.text


def test_train_sets_become_one_text_only_set(tmp_path):
    assert run(FIXTURE, tmp_path / "data", "--train_sets", "dev-clean-2", "--train_name", "train_small", sets=()) == 0
    dd = DataDir.load(tmp_path / "data" / "train_small", require=("text",))
    assert len(dd.text) == 10 and dd.wav_scp is None and not (tmp_path / "data" / "dev_clean_2").exists()


def test_lm_text_drops_held_out_sentences_and_counts_them(tmp_path):
    lm = tmp_path / "librispeech-lm-norm.txt"
    lm.write_text("A FIRST TRAINING SENTENCE OF THE BOOKS\n\nTHE TWO STRAY KITTENS GRADUALLY MAKE THEMSELVES AT HOME\n"
                  "AND A SECOND ONE\n")
    assert run(FIXTURE, tmp_path / "data", "--lm_text", lm, "--heldout_sets", "dev-clean-2") == 0
    text = DataDir.load(tmp_path / "data" / "lm_text", require=("text",)).text
    assert sorted(text.values()) == ["A FIRST TRAINING SENTENCE OF THE BOOKS", "AND A SECOND ONE"]
    assert (tmp_path / "data" / "lm_text" / "dropped").read_text().startswith("1 lines held out")
