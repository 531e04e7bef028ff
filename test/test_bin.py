"""Stage-1 CLIs on bad input: errors name file and line, skips are listed and counted."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("hama")
TOP = Path(__file__).resolve().parents[1]


def cli(*args):
    return subprocess.run([sys.executable, "-m", *args], cwd=TOP, capture_output=True, text=True, timeout=300)


def espeak(text, path):
    tmp = path.with_suffix(".22k.wav")
    subprocess.run(["espeak-ng", "-w", str(tmp), text], check=True)
    subprocess.run(["sox", str(tmp), "-r", "16000", str(path)], check=True)


@pytest.fixture
def data(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    espeak("the cat sat on the mat", tmp_path / "a.wav")
    sf.write(tmp_path / "silence.wav", np.zeros(16000, dtype=np.int16), 16000)
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
    (d / "wav.scp").write_text(f"u1 {tmp_path}/a.wav\nu2 {tmp_path}/silence.wav\nu3 {tmp_path}/corrupt.wav\n"
                               f"u4 {tmp_path}/missing.wav\n")
    (d / "text").write_text("u1 the cat sat on the mat\nu2 nothing\nu3 broken\nu4 missing\n")
    return d


def test_dump_stops_at_bad_audio_with_file_and_line(data, tmp_path):
    r = cli("tasu.bin.dump_posteriors", "--data", str(data), "--out", str(tmp_path / "dump"))
    assert r.returncode == 1
    assert "wav.scp:3" in r.stderr and "corrupt.wav" in r.stderr
    assert not (tmp_path / "dump" / "feats.scp").exists()  # nothing half-written under the final name


def test_dump_skips_and_lists_bad_audio_and_empty_psd(data, tmp_path):
    out = tmp_path / "dump"
    r = cli("tasu.bin.dump_posteriors", "--data", str(data), "--out", str(out), "--skip_bad_audio", "true",
            "--nj", "2")
    assert r.returncode == 0, r.stderr
    assert "1 utterances dumped, 3 skipped" in r.stderr
    skipped = (out / "skipped").read_text()
    assert "u2 empty PSD output" in skipped
    assert "u3 unreadable audio" in skipped and "wav.scp:3" in skipped
    assert "u4 unreadable audio" in skipped and "wav.scp:4" in skipped
    import kaldiio

    feats = dict(kaldiio.load_scp(str(out / "feats.scp")))
    assert list(feats) == ["u1"] and feats["u1"].shape[1] == 191
    np.testing.assert_allclose(feats["u1"].sum(1), 1, atol=1e-4)
    # argmax of the PSD rows spells the sentence's phonemes closely
    assert 10 <= feats["u1"].shape[0] <= 30
    # the encoder's own best path is kept for every utterance it heard (empty for silence)
    hyp = dict((ln.split(" ", 1) + [""])[:2] for ln in (out / "units_hyp").read_text().splitlines())
    assert set(hyp) == {"u1", "u2"} and hyp["u2"] == ""
    assert hyp["u1"].startswith("ð") and " k " in hyp["u1"] and hyp["u1"].count("<wb>") >= 4


def test_make_units_skips_unpronounceable_and_reports_bad_dirs(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    (d / "text").write_text("a hello world\nb ...\n")
    r = cli("tasu.bin.make_units", "--data", str(d), "--out", str(tmp_path / "dump"), "--lexicon",
            str(tmp_path / "lexicon.txt"))
    assert r.returncode == 0, r.stderr
    assert "skipped 1" in r.stderr
    assert (tmp_path / "dump" / "units.skipped").read_text().startswith("b empty transcript")
    assert (tmp_path / "dump" / "units").read_text().startswith("a h")
    (d / "text").write_text("b x\na y\n")
    r = cli("tasu.bin.make_units", "--data", str(d), "--out", str(tmp_path / "dump"), "--lexicon",
            str(tmp_path / "lexicon.txt"))
    assert r.returncode == 1 and "text:2" in r.stderr
