"""Tests for tasu.data, the validate/fix data-dir CLIs and the utils/*.sh helpers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf

from tasu.audio import load_audio, recording_duration, wav_entry_kind
from tasu.bin.fix_data_dir import fix_data_dir
from tasu.bin.validate_data_dir import main as validate_main
from tasu.data import (
    DataDir,
    DataError,
    read_kv,
    utt2spk_to_spk2utt,
    write_data_dir,
    write_kv,
)
from tasu.fileio import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
SR = 16000


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _wav(path: Path, seconds: float = 0.5, channels: int = 1) -> np.ndarray:
    """Write a 16 kHz int16 wav and return its int16 samples (frames, channels)."""
    n = int(seconds * SR)
    t = np.arange(n) / SR
    chans = [np.round(8000 * np.sin(2 * np.pi * (220 + 110 * c) * t)) for c in range(channels)]
    data = np.stack(chans, axis=1).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, SR, subtype="PCM_16")
    return data


def _good_dir(tmp_path: Path) -> Path:
    """Three utterances, two speakers, real wav files."""
    d = tmp_path / "data"
    wav = {}
    for uid in ("spkA-u1", "spkA-u2", "spkB-u1"):
        _wav(tmp_path / "wav" / f"{uid}.wav")
        wav[uid] = str(tmp_path / "wav" / f"{uid}.wav")
    write_data_dir(d, wav_scp=wav, text={"spkA-u1": "hello world", "spkA-u2": "good bye", "spkB-u1": "yes"},
                   utt2spk={u: u.split("-")[0] for u in wav})
    return d


def _raises(match_file: str, line: int | None, fn, *args, **kwargs) -> str:
    """Assert ``fn`` raises DataError whose message starts with ``.../<file>:<line>: ``."""
    with pytest.raises(DataError) as exc:
        fn(*args, **kwargs)
    msg = str(exc.value)
    loc = f"{match_file}:{line}: " if line is not None else f"{match_file}: "
    first = msg.split(" ", 1)[0] + " "
    assert first.endswith(loc) and re.search(r"(^|/)" + re.escape(loc), msg), msg
    return msg


# ---------------------------------------------------------------------------
# read_kv / write_kv
# ---------------------------------------------------------------------------


def test_read_kv_good(tmp_path):
    p = _write(tmp_path / "text", "a x  y \nb\tz\nc  w\n")
    assert read_kv(p) == {"a": "x  y", "b": "z", "c": "w"}
    assert list(read_kv(p)) == ["a", "b", "c"]


def test_read_kv_c_byte_order(tmp_path):
    # C order: uppercase before lowercase, '-' (0x2d) before '0' and before '_'.
    p = _write(tmp_path / "utt2spk", "A-1 s\nB_1 s\na-1 s\na1 s\na_1 s\n")
    assert list(read_kv(p)) == ["A-1", "B_1", "a-1", "a1", "a_1"]
    q = _write(tmp_path / "x", "a_1 s\na1 s\n")
    msg = _raises("x", 2, read_kv, q)
    assert "sort" in msg


@pytest.mark.parametrize("content,line,words", [
    ("a x\nc y\nb z\n", 3, "not sorted"),
    ("a x\nb y\nb z\n", 3, "duplicate key 'b' (first on line 2)"),
    ("a x\n\nb y\n", 2, "blank line"),
    ("a x\nb\nc y\n", 2, "empty value"),
    ("a x\n b y\n", 2, "whitespace"),
])
def test_read_kv_errors(tmp_path, content, line, words):
    p = _write(tmp_path / "text", content)
    msg = _raises("text", line, read_kv, p)
    assert words in msg


def test_read_kv_empty_value_allowed(tmp_path):
    p = _write(tmp_path / "text", "a\nb y\n")
    assert read_kv(p, allow_empty_value=True) == {"a": "", "b": "y"}


def test_read_kv_missing_and_not_utf8(tmp_path):
    msg = _raises("nope", None, read_kv, tmp_path / "nope")
    assert "does not exist" in msg
    p = tmp_path / "text"
    p.write_bytes(b"a x\nb caf\xe9\n")
    assert "UTF-8" in _raises("text", 2, read_kv, p)


def test_write_kv_sorted_atomic(tmp_path):
    p = tmp_path / "sub" / "spk2utt"
    write_kv(p, {"b": ["u2", "u3"], "B": "u1", "a": "x y"})
    assert p.read_text() == "B u1\na x y\nb u2 u3\n"
    assert [f.name for f in p.parent.iterdir()] == ["spk2utt"]  # no temp file left
    with pytest.raises(DataError):
        write_kv(p, {"bad key": "v"})
    atomic_write_text(tmp_path / "t.txt", "héllo\n")
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "héllo\n"


def test_utt2spk_to_spk2utt():
    assert utt2spk_to_spk2utt({"u2": "s1", "u1": "s1", "u3": "s0"}) == {"s0": ["u3"], "s1": ["u1", "u2"]}


# ---------------------------------------------------------------------------
# DataDir
# ---------------------------------------------------------------------------


def test_good_dir_loads(tmp_path):
    d = _good_dir(tmp_path)
    assert (d / "spk2utt").read_text() == "spkA spkA-u1 spkA-u2\nspkB spkB-u1\n"
    dd = DataDir.load(d)
    assert dd.utt_ids == ["spkA-u1", "spkA-u2", "spkB-u1"]
    assert dd.spk2utt == {"spkA": ["spkA-u1", "spkA-u2"], "spkB": ["spkB-u1"]}
    assert dd.text["spkA-u2"] == "good bye" and dd.segments is None


def test_text_only_dir(tmp_path):
    d = tmp_path / "train"
    write_data_dir(d, text={"t2": "b", "t1": "a"})
    assert read_kv(d / "utt2spk") == {"t1": "t1", "t2": "t2"}
    dd = DataDir.load(d, require=("text",))
    assert dd.utt_ids == ["t1", "t2"] and dd.wav_scp is None
    _raises("wav.scp", None, DataDir.load, d)  # wav.scp required by default


def test_extra_tables_are_answer_files(tmp_path):
    from tasu.data import read_targets

    d = tmp_path / "train"
    write_data_dir(d, text={"t2": "b", "t1": "a"}, extra={"intent": {"t1": "alarm_set", "t2": "play_music"}})
    assert (d / "intent").read_text() == "t1 alarm_set\nt2 play_music\n"  # sorted, as every table
    assert read_targets(d, "intent") == {"t1": "alarm_set", "t2": "play_music"}
    for bad in ("text", "wav.scp", "a/b"):
        with pytest.raises(ValueError, match="extra table"):
            write_data_dir(tmp_path / "bad", text={"t1": "a"}, extra={bad: {"t1": "x"}})


def test_missing_dir_and_required_file(tmp_path):
    assert "does not exist" in _raises("nowhere", None, DataDir.load, tmp_path / "nowhere")
    d = _good_dir(tmp_path)
    (d / "text").unlink()
    assert "required file is missing" in _raises("text", None, DataDir.load, d, require=("wav.scp", "text"))


@pytest.mark.parametrize("name,content,line", [
    ("wav.scp", "spkB-u1 /x.wav\nspkA-u1 /y.wav\nspkA-u2 /z.wav\n", 2),   # unsorted
    ("text", "spkA-u1 hello\nspkA-u1 again\nspkA-u2 x\nspkB-u1 y\n", 2),   # duplicate
    ("text", "spkA-u1 hello\nspkA-u2\nspkB-u1 yes\n", 2),                  # empty transcript
])
def test_load_table_errors(tmp_path, name, content, line):
    d = _good_dir(tmp_path)
    _write(d / name, content)
    _raises(name, line, DataDir.load, d)


def test_text_audio_mismatch(tmp_path):
    d = _good_dir(tmp_path)
    _write(d / "text", "spkA-u1 hello\nspkA-u2 x\nspkA-u3 extra\nspkB-u1 y\nspkC-u9 more\n")
    msg = _raises("text", 3, DataDir.load, d)
    assert "2 utterance(s)" in msg and "'spkA-u3'" in msg and "fix_data_dir.sh" in msg
    _write(d / "text", "spkA-u1 hello\nspkB-u1 y\n")
    msg = _raises("wav.scp", 2, DataDir.load, d)
    assert "1 utterance(s)" in msg and "'spkA-u2'" in msg


def test_utt2spk_and_spk2utt_errors(tmp_path):
    d = _good_dir(tmp_path)
    _write(d / "utt2spk", "spkA-u1 spkA\nspkB-u1 spkB\n")
    msg = _raises("utt2spk", None, DataDir.load, d)
    assert "'spkA-u2'" in msg and "wav.scp:2" in msg
    _write(d / "utt2spk", "spkA-u1 spkA\nspkA-u2 spkA\nspkB-u1 spkB\nspkZ-u1 spkZ\n")
    _raises("utt2spk", 4, DataDir.load, d)
    _write(d / "utt2spk", "spkA-u1 spkA\nspkA-u2 spkB\nspkB-u1 spkB\n")
    msg = _raises("spk2utt", 1, DataDir.load, d)
    assert "utt2spk:2" in msg and "utt2spk_to_spk2utt.sh" in msg
    _write(d / "utt2spk", "spkA-u1 spkA\nspkA-u2 spkA\nspkB-u1 spkB\n")
    _write(d / "spk2utt", "spkA spkA-u1\nspkB spkB-u1\n")
    assert "lacks 1" in _raises("spk2utt", 1, DataDir.load, d)


def test_segments(tmp_path):
    d = _good_dir(tmp_path)
    rec = tmp_path / "wav" / "rec1.wav"
    samples = _wav(rec, seconds=1.0)
    _write(d / "wav.scp", f"rec1 {rec}\n")
    _write(d / "text", "s1 a\ns2 b\n")
    _write(d / "utt2spk", "s1 s1\ns2 s2\n")
    _write(d / "spk2utt", "s1 s1\ns2 s2\n")
    _write(d / "segments", "s1 rec1 0.0 0.25\ns2 rec1 0.5 1.0\n")
    dd = DataDir.load(d)
    assert dd.utt_ids == ["s1", "s2"] and dd.segments["s2"] == ("rec1", 0.5, 1.0)
    wave, sr = load_audio(dd, "s2")
    assert sr == SR and wave.shape == (8000,)
    np.testing.assert_allclose(wave, samples[8000:, 0] / 32768.0, atol=1e-6)

    for content, line, words in [
        ("s1 rec1 0.0 0.25\ns2 rec9 0.5 1.0\n", 2, "not in wav.scp"),
        ("s1 rec1 0.3 0.25\ns2 rec1 0.5 1.0\n", 1, "not after its start"),
        ("s1 rec1 0.0 0.25\ns2 rec1 abc 1.0\n", 2, "not a number"),
        ("s1 rec1 0.0 0.25\ns2 rec1 0.5\n", 2, "expected"),
    ]:
        _write(d / "segments", content)
        assert words in _raises("segments", line, DataDir.load, d)

    _write(d / "segments", "s1 rec1 0.0 0.25\ns2 rec1 2.0 3.0\n")
    assert "selects no audio" in _raises("segments", 2, load_audio, DataDir.load(d), "s2")


# ---------------------------------------------------------------------------
# Audio
# ---------------------------------------------------------------------------


def test_load_audio_stereo_int16(tmp_path):
    wav = tmp_path / "st.wav"
    data = _wav(wav, seconds=0.25, channels=2)
    d = tmp_path / "d"
    dd = write_data_dir(d, wav_scp={"u1": str(wav)}, text={"u1": "x"})
    wave, sr = load_audio(dd, "u1")
    assert sr == SR and wave.dtype == np.float32 and wave.shape == (4000,)
    expected = data.astype(np.float64).mean(axis=1) / 32768.0
    np.testing.assert_allclose(wave, expected, atol=1e-6)
    assert np.abs(wave).max() <= 1.0


def test_load_audio_pipe_and_ark(tmp_path):
    wav = tmp_path / "x.wav"
    data = _wav(wav, seconds=0.25)
    ark = tmp_path / "w.ark"
    with kaldiio.WriteHelper(f"ark,scp:{ark},{tmp_path / 'w.scp'}") as w:
        w("u3", (SR, data[:, 0]))
    ark_spec = (tmp_path / "w.scp").read_text().split()[1]
    dd = write_data_dir(tmp_path / "d", wav_scp={"u1": str(wav), "u2": f"cat {wav} |", "u3": ark_spec})
    assert [wav_entry_kind(v) for v in dd.wav_scp.values()] == ["file", "pipe", "ark"]
    ref, _ = load_audio(dd, "u1")
    for uid in ("u2", "u3"):
        wave, sr = load_audio(dd, uid)
        assert sr == SR
        np.testing.assert_array_equal(wave, ref)


def test_load_audio_errors(tmp_path):
    good = tmp_path / "good.wav"
    _wav(good)
    corrupt = _write(tmp_path / "corrupt.wav", "RIFF this is not really a wav file")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros((0, 1), np.int16), SR, subtype="PCM_16")
    dd = write_data_dir(tmp_path / "d", wav_scp={
        "a": str(good), "b": str(tmp_path / "missing.wav"), "c": str(corrupt),
        "d": "false |", "e": str(empty), "f": f"cat {tmp_path / 'nothing.wav'} |",
    })
    assert "does not exist" in _raises("wav.scp", 2, load_audio, dd, "b")
    assert "corrupt.wav" in _raises("wav.scp", 3, load_audio, dd, "c")
    assert "exit status 1" in _raises("wav.scp", 4, load_audio, dd, "d")
    assert "empty" in _raises("wav.scp", 5, load_audio, dd, "e")
    assert "nothing.wav" in _raises("wav.scp", 6, load_audio, dd, "f")
    _raises("wav.scp", None, load_audio, dd, "zzz")


# ---------------------------------------------------------------------------
# CLIs and shell helpers
# ---------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_validate_cli(tmp_path, capsys):
    d = _good_dir(tmp_path)
    assert validate_main([str(d)]) == 0
    assert capsys.readouterr().out.strip() == f"{d}: 3 utts, 2 speakers, OK"
    _write(tmp_path / "wav" / "spkA-u2.wav", "garbage")
    assert validate_main([str(d), "--no-audio-check"]) == 0
    capsys.readouterr()
    assert validate_main([str(d)]) == 1
    assert "wav.scp:2: " in capsys.readouterr().err
    assert validate_main([str(d), "--require", "segments"]) == 1
    assert "segments: required file is missing" in capsys.readouterr().err
    r = subprocess.run(["bash", str(REPO / "utils/validate_data_dir.sh"), "--help"],
                       capture_output=True, text=True, env=_env(), cwd=REPO)
    assert r.returncode == 0 and "--no-audio-check" in r.stdout


def test_validate_cli_pipes_and_segments(tmp_path, capsys):
    wav = tmp_path / "r.wav"
    _wav(wav, seconds=1.0)
    d = tmp_path / "d"
    write_data_dir(d, wav_scp={"r1": f"cat {wav} |", "r2": "false |"})
    assert validate_main([str(d)]) == 0  # pipes are not run by default
    capsys.readouterr()
    assert validate_main([str(d), "--read-pipes"]) == 1
    assert "wav.scp:2: " in capsys.readouterr().err
    _write(d / "wav.scp", f"r1 {wav}\n")
    _write(d / "segments", "s1 r1 0 0.5\ns2 r1 0.5 2.0\n")
    _write(d / "utt2spk", "s1 s1\ns2 s2\n")
    _write(d / "spk2utt", "s1 s1\ns2 s2\n")
    assert validate_main([str(d)]) == 1
    assert "segments:2: " in capsys.readouterr().err
    assert recording_duration(DataDir.load(d), "r1") == pytest.approx(1.0)


def test_fix_data_dir(tmp_path):
    d = _good_dir(tmp_path)
    wav = (tmp_path / "wav" / "spkA-u1.wav")
    _write(d / "wav.scp", f"spkB-u1 {wav}\nspkA-u1 {wav}\nspkA-u2 {wav}\nspkA-u1 {wav}\nspkC-u1 {wav}\n")
    _write(d / "text", "spkA-u1 hello\nspkA-u2\nspkB-u1 yes\nspkC-u1 more\nspkD-u1 no audio\n")
    _write(d / "utt2spk", "spkA-u1 spkA\nspkA-u2 spkA\nspkB-u1 spkB\nspkD-u1 spkD\n")
    original = (d / "wav.scp").read_text()
    r = subprocess.run([sys.executable, "-m", "tasu.bin.fix_data_dir", str(d)],
                       capture_output=True, text=True, env=_env(), cwd=REPO)
    assert r.returncode == 0, r.stderr
    err = r.stderr
    assert "wav.scp: kept 2 of 5 lines; dropped 3 (1 duplicate id, 1 not in text, 1 not in utt2spk); " \
           "re-sorted" in err
    assert "text: kept 2 of 5 lines; dropped 3 (1 empty transcript, 1 not in utt2spk, 1 not in wav.scp)" in err
    assert "utt2spk: kept 2 of 4 lines; dropped 2 (1 not in text, 1 not in wav.scp)" in err
    assert "spk2utt: regenerated" in err
    assert (d / ".backup" / "wav.scp").read_text() == original
    dd = DataDir.load(d)
    assert dd.utt_ids == ["spkA-u1", "spkB-u1"]
    assert dd.spk2utt == {"spkA": ["spkA-u1"], "spkB": ["spkB-u1"]}


def test_fix_data_dir_report(tmp_path):
    d = tmp_path / "d"
    _write(d / "text", "b x\na y\n\na z\nc\n")
    logs: list[str] = []
    reports = fix_data_dir(d, log=logs.append)
    assert reports["text"].kept == 2 and not reports["text"].was_sorted
    assert dict(reports["text"].dropped) == {"blank line": 1, "duplicate id": 1, "empty transcript": 1}
    assert read_kv(d / "text") == {"a": "y", "b": "x"}
    assert any("re-sorted" in m for m in logs)


def test_utt2spk_to_spk2utt_sh():
    r = subprocess.run(["bash", str(REPO / "utils/utt2spk_to_spk2utt.sh")], input="u1 s2\nu2 s1\nu3 s2\n",
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == "s1 u2\ns2 u1 u3\n"


SCRIPT = """#!/usr/bin/env bash
set -euo pipefail
nj=4
use_gpu=false
stage_name=prep
help_message="Usage: $0 [--nj N] [--use-gpu true|false] <dir>"
. {utils}/parse_options.sh
echo "nj=$nj use_gpu=$use_gpu stage_name=$stage_name args=$*"
"""


@pytest.mark.parametrize("args,rc,expect", [
    ([], 0, "nj=4 use_gpu=false stage_name=prep args="),
    (["--nj", "8", "d1", "d2"], 0, "nj=8 use_gpu=false stage_name=prep args=d1 d2"),
    (["--use-gpu=true", "--stage-name", "a b", "x"], 0, "nj=4 use_gpu=true stage_name=a b args=x"),
    (["--nj=", "--", "--x"], 0, "nj= use_gpu=false stage_name=prep args=--x"),
    (["--help"], 0, "Usage:"),
    (["--bogus", "1"], 1, "unknown option '--bogus'"),
    (["--nj"], 1, "needs a value"),
])
def test_parse_options(tmp_path, args, rc, expect):
    script = _write(tmp_path / "run.sh", SCRIPT.format(utils=REPO / "utils"))
    r = subprocess.run(["bash", str(script), *args], capture_output=True, text=True)
    assert r.returncode == rc, r.stderr
    assert expect in (r.stdout + r.stderr)
