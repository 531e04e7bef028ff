"""tasu.sphinx_lm and peer_decode --lm_text: pocketsphinx given the adaptation text, on real telephone prompts."""
import subprocess
import sys
from pathlib import Path

import pytest

from tasu.sphinx_lm import IPA_TO_ARPABET, ipa_to_arpabet, spell_words

ASTERISK = Path("/usr/share/asterisk/sounds/en")
PROMPTS = {"agent-pass": "Please enter your password followed by the pound key.",   # Debian's transcripts
           "vm-passchanged": "Your passwords have been changed."}


def test_ipa_to_arpabet():
    assert ipa_to_arpabet(["t͡ʃ", "ɝ", "t͡ʃ"]) == (["CH", "ER", "CH"], "")
    assert ipa_to_arpabet(["ɟ", "͡", "ʝ", "e", "s"]) == (["Y", "EH", "S"], "")      # hama's "yes"
    assert ipa_to_arpabet(["k", "ɑː", " ", "ʰ"]) == (["K", "AA"], "")                  # marks dropped
    assert ipa_to_arpabet(["x", "u", "⁵"]) == ([], "IPA '⁵' has no ARPAbet phone")
    assert set(IPA_TO_ARPABET.values()) <= {
        "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH", "IH", "IY",
        "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH", "UW", "V", "W", "Y",
        "Z", "ZH"}     # pocketsphinx en-us's phones


def test_spell_words_letters_and_no_letters():
    d = {"p": "P IY", "b": "B IY", "x": "EH K S", "the": "DH AH"}
    added, unspelled = spell_words(["the", "pbx", "$"], d)
    assert added == {"pbx": "P IY B IY EH K S"} and unspelled == {"$": "no letters"}
    pytest.importorskip("hama")
    added, unspelled = spell_words(["unmute"], d)
    assert added == {"unmute": "AH N M Y UW T"} and not unspelled


def wer(ref, hyp):
    from tasu.score import score_texts

    return score_texts({"u": ref}, {"u": hyp}).wer


@pytest.mark.skipif(not ASTERISK.is_dir(), reason="Debian asterisk-core-sounds-en-wav not installed")
def test_text_lm_decodes_its_sentence_at_least_as_well_as_the_default(tmp_path):
    """A real 3 s telephone prompt: the default model says 'please get your password ...'; a model
    mixed with that one sentence (weight 0.3) decodes it at least as well."""
    pytest.importorskip("pocketsphinx")
    pytest.importorskip("hama")
    from tasu.audio import read_audio
    from tasu.bin.peer_decode import PocketSphinx
    from tasu.encoders.base import resample
    from tasu.sphinx_lm import build_sphinx_lm

    ref = PROMPTS["agent-pass"]
    wave, sr = read_audio(str(ASTERISK / "agent-pass.wav"))
    wave = resample(wave, sr, 16000)
    counts = build_sphinx_lm([ref], tmp_path / "lm", weight=0.3)
    assert counts["1-grams"] > 70_000 and counts["unspelled"] == 0 and counts["floored_histories"] == 0
    assert "pocketsphinx en-us.lm.bin" in (tmp_path / "lm" / "info").read_text()
    default, adapted = PocketSphinx()(wave), PocketSphinx(str(tmp_path / "lm"))(wave)
    assert wer(ref, adapted) <= wer(ref, default) and wer(ref, adapted) <= 20, (default, adapted)


@pytest.mark.skipif(not ASTERISK.is_dir(), reason="Debian asterisk-core-sounds-en-wav not installed")
def test_peer_decode_with_lm_text(tmp_path):
    """The CLI: --lm_text builds <out>/lm (new words spelled, counts in info) and decodes with it."""
    pytest.importorskip("pocketsphinx")
    pytest.importorskip("hama")
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text("".join(f"{u} {ASTERISK / u}.wav\n" for u in sorted(PROMPTS)))
    (data / "text").write_text("".join(f"{u} {t}\n" for u, t in sorted(PROMPTS.items())))
    (tmp_path / "sentences.txt").write_text("".join(t + "\n" for t in PROMPTS.values()) + "Unmute the dahdi line.\n")
    (tmp_path / "general").write_text("g1 The password was changed yesterday.\ng2 Press one to continue.\n")
    out = tmp_path / "dec"
    res = subprocess.run([sys.executable, "-m", "tasu.bin.peer_decode", "--data", str(data), "--out", str(out),
                          "--lm_text", str(tmp_path / "sentences.txt"), "--lm_general_text", str(tmp_path / "general")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    info = (out / "lm" / "info").read_text()
    assert "0.3 * Witten-Bell 3-gram of 3 adaptation sentences" in info and "general_sentences 2" in info
    assert {l.split()[0] for l in (out / "lm" / "g2p_added").read_text().splitlines()} == {"dahdi", "unmute"}
    assert "\ndahdi D " in (out / "lm" / "dict").read_text()
    from tasu.score import read_text, score_texts

    assert score_texts(read_text(data / "text"), read_text(out / "text")).wer <= 10
