"""mini_en's data preparation: synthesised audio is reused only for the same text and settings."""
import random
import shutil
import sys
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("sox") is None, reason="needs espeak-ng, sox")
def test_a_changed_sentence_is_synthesised_again(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(TOP / "egs" / "mini_en" / "local"))
    import prepare_data

    cfg = {"voices": ["en-us"], "speed": [150, 150], "pitch": [50, 50], "sample_rate": 16000}
    prepare_data.make_speech_set("s", ["a short one"], cfg, tmp_path / "data", tmp_path / "wav", random.Random(0))
    wav = tmp_path / "wav" / "s" / "enus-s-0000.wav"
    first = wav.read_bytes()
    prepare_data.make_speech_set("s", ["a short one"], cfg, tmp_path / "data", tmp_path / "wav", random.Random(0))
    assert wav.read_bytes() == first  # same text and settings: reused
    prepare_data.make_speech_set("s", ["a much longer sentence than the first one was"], cfg, tmp_path / "data",
                                 tmp_path / "wav", random.Random(0))
    assert len(wav.read_bytes()) > len(first) * 1.5  # same utterance id, new text: new audio
    assert "longer sentence" in (tmp_path / "data" / "s" / "text").read_text()
    sys.modules.pop("prepare_data", None)


@pytest.mark.skipif(shutil.which("bible") is None, reason="needs bible-kjv")
def test_kjv_clauses_split_verses_and_unknown_sources_are_refused(monkeypatch):
    monkeypatch.syspath_prepend(str(TOP / "egs" / "mini_en" / "local"))
    import prepare_data

    clauses = prepare_data.kjv_clauses(["Ge"])                      # Genesis: 1 533 verses
    assert "In the beginning God created the heaven and the earth" in clauses
    assert "And God said, Let there be light" in clauses and "and there was light" in clauses  # Ge1:3 split at ':'
    assert len(clauses) > 1533 and len(clauses) == len(set(clauses))
    with pytest.raises(SystemExit, match="unknown text source 'nope'"):
        prepare_data.source_sentences("nope", {})
    sys.modules.pop("prepare_data", None)


@pytest.mark.skipif(shutil.which("flite") is None or shutil.which("sox") is None, reason="needs flite, sox")
def test_flite_voices_speak_at_the_drawn_speed(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(TOP / "egs" / "mini_en" / "local"))
    import prepare_data
    import soundfile as sf

    text = "the conclusion of a business deal"
    durations = {}
    for speed in (120, 200):
        cfg = {"voices": ["flite:slt"], "speed": [speed, speed], "pitch": [50, 50], "sample_rate": 16000}
        prepare_data.make_speech_set(f"s{speed}", [text], cfg, tmp_path / "data", tmp_path / "wav", random.Random(0))
        wav = tmp_path / "wav" / f"s{speed}" / f"fliteslt-s{speed}-0000.wav"
        info = sf.info(str(wav))
        assert info.samplerate == 16000 and info.channels == 1
        durations[speed] = info.duration
        utt2spk = (tmp_path / "data" / f"s{speed}" / "utt2spk").read_text().split()
        assert utt2spk == [f"fliteslt-s{speed}-0000", "fliteslt"]
    # duration stretch 160/speed: 200 wpm speaks in about 120/200 of the time of 120 wpm
    assert 0.5 < durations[200] / durations[120] < 0.75
    sys.modules.pop("prepare_data", None)
