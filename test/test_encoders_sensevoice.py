"""SenseVoiceSmall backend (tasu.encoders.sensevoice) and sentencepiece text -> units (tasu.encoders.spm).

FunASR is not installed here (it imports torchaudio): the network is a tiny stand-in module
with SenseVoiceSmall's call signature (``embed``, ``encoder(x, lens)``, ``ctc.log_softmax``).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
spm_pkg = pytest.importorskip("sentencepiece")

from tasu.encoders.frontend import write_am_mvn  # noqa: E402
from tasu.encoders.sensevoice import BPE_MODEL, NUM_QUERIES, SenseVoiceEncoder  # noqa: E402
from tasu.encoders.spm import SentencePieceUnits  # noqa: E402

SENTENCES = ["the quick brown fox jumps over the lazy dog", "speech recognition from text alone",
             "a posterior for every frame", "hello world and good morning"] * 10


def train_spm(path: Path, vocab_size: int = 60) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        spm_pkg.SentencePieceTrainer.train(sentence_iterator=iter(SENTENCES), model_writer=f, model_type="bpe",
                                           vocab_size=vocab_size, character_coverage=1.0, minloglevel=2)
    return path


class _Encoder(torch.nn.Module):
    """Per-frame: output frame t depends on input frame t only (so the query drop is visible)."""

    def __init__(self, d_in: int, d: int) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(d_in, d)

    def forward(self, x, lens):
        return torch.tanh(self.lin(x)), lens


class _CTC(torch.nn.Module):
    def __init__(self, d: int, v: int) -> None:
        super().__init__()
        self.ctc_lo = torch.nn.Linear(d, v)

    def log_softmax(self, h):
        return torch.log_softmax(self.ctc_lo(h), dim=-1)


class TinySenseVoice(torch.nn.Module):
    def __init__(self, vocab: int, d_in: int = 560, d: int = 8) -> None:
        super().__init__()
        self.blank_id = 0
        self.embed = torch.nn.Embedding(16, d_in)
        self.encoder = _Encoder(d_in, d)
        self.ctc = _CTC(d, vocab)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("sensevoice")
    train_spm(d / BPE_MODEL)
    rng = np.random.default_rng(0)
    write_am_mvn(d / "am.mvn", rng.standard_normal(560) * 0.1 - 5, 0.2 + rng.random(560) * 0.1)
    return d


@pytest.fixture(scope="module")
def enc(model_dir) -> SenseVoiceEncoder:
    torch.manual_seed(0)
    sp = spm_pkg.SentencePieceProcessor(model_file=str(model_dir / BPE_MODEL))
    return SenseVoiceEncoder(model_dir, module=TinySenseVoice(sp.get_piece_size()), oov="drop")


def _waves() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [0.1 * rng.standard_normal(n).astype(np.float32) for n in (16000, 9000, 400)]


def test_shapes_lengths_and_blank(enc: SenseVoiceEncoder) -> None:
    assert enc.inventory.blank_id == 0 and enc.inventory.units[0] == "<blank>"
    assert enc.inventory.size == enc.tokenizer.sp.get_piece_size()
    waves = _waves()
    lp, lens = enc.log_posteriors_batch(waves, 16000)
    expect = [-(-(1 + (len(w) - 400) // 160) // 6) for w in waves]  # fbank frames, then LFR ceil(T/6)
    assert list(lens) == expect == [17, 9, 1]
    assert lp.shape == (3, max(expect), enc.inventory.size) and lp.dtype == np.float32
    assert (lp[1, lens[1]:] == 0).all() and (lp[2, lens[2]:] == 0).all()  # padding frames are zeros
    for i, n in enumerate(lens):
        np.testing.assert_allclose(np.exp(lp[i, :n]).sum(-1), 1.0, rtol=1e-5)
        single = enc.log_posteriors(waves[i], 16000)  # batching (padding) changes nothing
        assert single.shape == (n, enc.inventory.size)
        np.testing.assert_allclose(single, lp[i, :n], rtol=1e-5, atol=1e-5)


def test_query_frames_are_dropped(enc: SenseVoiceEncoder) -> None:
    wave = _waves()[0]
    lp = enc.log_posteriors(wave, 16000)
    m = enc.model
    with torch.no_grad():
        feats = torch.from_numpy(enc.features(wave))
        direct = m.ctc.log_softmax(m.encoder(feats[None], None)[0])[0].numpy()
        queries = m.ctc.log_softmax(m.encoder(m.embed(torch.tensor([enc.query_ids])), None)[0])[0].numpy()
    np.testing.assert_allclose(lp, direct, rtol=1e-5, atol=1e-5)  # frame 0 is the first speech frame
    assert enc.query_ids == (0, 1, 2, 15) and NUM_QUERIES == 4
    assert not np.allclose(lp[:NUM_QUERIES], queries, atol=1e-3)


def test_resampling_and_bad_audio(enc: SenseVoiceEncoder) -> None:
    w8k = _waves()[0][::2]
    assert enc.log_posteriors(w8k, 8000).shape[0] == 17
    with pytest.raises(ValueError, match="mono"):
        enc.log_posteriors(np.zeros((2, 100), dtype=np.float32), 16000)


def test_text_to_units_round_trips(enc: SenseVoiceEncoder) -> None:
    text = "the lazy fox jumps"
    units = enc.text_to_units(text)
    assert all(u in enc.inventory.index() for u in units) and "<blank>" not in units
    assert "".join(units).replace("\u2581", " ").strip() == text
    sp = enc.tokenizer.sp
    assert sp.decode([sp.piece_to_id(u) for u in units]) == text


def test_oov_policies(model_dir: Path) -> None:
    path = model_dir / BPE_MODEL
    text = "the fox ✓ jumps é"
    with pytest.raises(ValueError, match=r"'✓' \(U\+2713\) at character 8.*'é' \(U\+00E9\) at character 16"):
        SentencePieceUnits(path, "fail")(text)
    drop = SentencePieceUnits(path, "drop")
    assert "".join(drop(text)).replace("\u2581", " ").split() == ["the", "fox", "jumps"]
    assert drop.oov_counts == {"✓": 1, "é": 1}
    mapped = SentencePieceUnits(path, "map", "<unk>")(text)
    assert mapped.count("<unk>") == 2
    # SenseVoice: <unk> is the CTC blank, so `map` has no unit to map to and drops
    sv_map = SentencePieceUnits(path, "map", None)
    assert sv_map(text) == drop(text) and sv_map.oov_counts == {"✓": 1, "é": 1}
    with pytest.raises(ValueError, match="unknown OOV policy"):
        SentencePieceUnits(path, "ignore")


def test_bad_model_dirs(model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(FileNotFoundError, match="SenseVoice model dir not found: .*nope"):
        SenseVoiceEncoder(tmp_path / "nope")
    (tmp_path / "am.mvn").write_text((model_dir / "am.mvn").read_text())
    with pytest.raises(FileNotFoundError, match=f"{BPE_MODEL}: missing"):
        SenseVoiceEncoder(tmp_path)
    (tmp_path / BPE_MODEL).write_bytes((model_dir / BPE_MODEL).read_bytes())
    with pytest.raises(FileNotFoundError, match="config.yaml: missing"):
        SenseVoiceEncoder(tmp_path)  # no module given: FunASR needs config.yaml and model.pt
    (tmp_path / "config.yaml").write_text("model: SenseVoiceSmall\n")
    (tmp_path / "model.pt").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "funasr", None)  # as if not installed
    with pytest.raises(ImportError, match="pip install funasr"):
        SenseVoiceEncoder(tmp_path)
    with pytest.raises(ValueError, match="CTC layer has 7 outputs"):
        SenseVoiceEncoder(model_dir, module=TinySenseVoice(7))
    with pytest.raises(ValueError, match="unknown SenseVoice language"):
        SenseVoiceEncoder(model_dir, module=TinySenseVoice(60), language="xx")


def test_build_encoder_spec(model_dir: Path, monkeypatch) -> None:
    from tasu.encoders import build_encoder, parse_spec

    assert parse_spec(f"sensevoice:{model_dir}") == ("sensevoice", str(model_dir))
    with pytest.raises(ValueError, match="sensevoice:<model dir>"):
        build_encoder("sensevoice")


def test_missing_model_dirs_are_clear_errors_in_the_clis(tmp_path: Path) -> None:
    """make_units with a sensevoice:/espnet: path that does not exist: exit 1, the path named, no traceback."""
    import subprocess

    top = Path(__file__).resolve().parents[1]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "text").write_text("u1 hello world\n")
    for spec in (f"sensevoice:{tmp_path}/nothing", f"espnet:{tmp_path}/nothing.zip"):
        r = subprocess.run([sys.executable, "-m", "tasu.bin.make_units", "--encoder", spec, "--data",
                            str(tmp_path / "data"), "--out", str(tmp_path / "dump")],
                           cwd=top, capture_output=True, text=True)
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
        assert f"{tmp_path}/nothing" in r.stderr
