"""ESPnet2 backend (tasu.encoders.espnet): model layout, lazy import, and a tiny random ASR model.

The model tests need ``espnet2.tasks.asr`` importable (tools/install.sh --espnet); they build
a 1-block transformer CTC model from a config offline, pack it like espnet_model_zoo, and
load it back through the backend.
"""
from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from tasu.encoders.espnet import (
    ESPnetEncoder,
    import_asr_task,
    locate_model,
    read_config,
)

torch = pytest.importorskip("torch")


def _write_zip(path: Path, files: dict[str, bytes | str]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


CFG = {"token_list": ["<blank>", "<unk>", "a", "<sos/eos>"], "token_type": "char", "model_conf": {"ctc_weight": 0.3}}


def test_layouts(tmp_path: Path) -> None:
    meta = {"files": {"asr_model_file": "exp/asr/valid.acc.ave.pth"},
            "yaml_files": {"asr_train_config": "exp/asr/config.yaml"}}
    z = _write_zip(tmp_path / "m.zip", {"meta.yaml": yaml.safe_dump(meta), "exp/asr/config.yaml": yaml.safe_dump(CFG),
                                        "exp/asr/valid.acc.ave.pth": b"x"})
    f = locate_model(z, cache=tmp_path / "cache")
    assert f.config.name == "config.yaml" and f.model_file.name == "valid.acc.ave.pth"
    assert f.root.parent == tmp_path / "cache" and f.root.name.startswith("m-")
    assert locate_model(z, cache=tmp_path / "cache") == f  # extracted once, reused
    # a recipe dir with exp/**/config.yaml next to a .pth; an exp dir
    d = tmp_path / "recipe" / "exp" / "asr_train"
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(yaml.safe_dump(CFG))
    (d / "40epoch.pth").write_bytes(b"x")
    assert locate_model(tmp_path / "recipe").model_file == d / "40epoch.pth"
    assert locate_model(d).config == d / "config.yaml"
    (d / "valid.acc.best.pth").write_bytes(b"x")
    with pytest.raises(ValueError, match="several model files"):
        locate_model(d)


def test_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="ESPnet model not found: .*nope"):
        locate_model(tmp_path / "nope")
    (tmp_path / "x.zip").write_text("not a zip")
    with pytest.raises(ValueError, match="x.zip: not a zip"):
        locate_model(tmp_path / "x.zip")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no meta.yaml, and no config.yaml next to a"):
        locate_model(tmp_path / "empty")
    z = _write_zip(tmp_path / "evil.zip", {"../evil.txt": "x"})
    with pytest.raises(ValueError, match="leaves the target dir"):
        locate_model(z, cache=tmp_path / "cache")
    z = _write_zip(tmp_path / "half.zip", {"meta.yaml": yaml.safe_dump({"files": {}, "yaml_files": {}})})
    with pytest.raises(ValueError, match="meta.yaml: expected yaml_files.asr_train_config"):
        locate_model(z, cache=tmp_path / "cache")


def test_model_without_ctc_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({**CFG, "model_conf": {"ctc_weight": 0.0}}))
    (tmp_path / "m.pth").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"config.yaml: model_conf.ctc_weight is 0: the model has no CTC branch"):
        read_config(locate_model(tmp_path))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"encoder": "rnn"}))
    with pytest.raises(ValueError, match="no token_list"):
        read_config(locate_model(tmp_path))


def test_missing_espnet_names_the_install(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "espnet2", None)  # as if not installed
    with pytest.raises(ImportError, match="pip install espnet.*--no-deps"):
        import_asr_task()
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CFG))
    (tmp_path / "m.pth").write_bytes(b"x")
    with pytest.raises(ImportError, match="pip install espnet"):
        ESPnetEncoder(tmp_path)


def test_build_encoder_spec() -> None:
    from tasu.encoders import build_encoder, parse_spec

    assert parse_spec("espnet:/m.zip") == ("espnet", "/m.zip")
    with pytest.raises(ValueError, match="espnet:<zip or dir>"):
        build_encoder("espnet")
    with pytest.raises(FileNotFoundError, match="ESPnet model not found"):
        build_encoder("espnet:/no/such/model.zip")


# ---- a tiny random ESPnet2 model, packed like espnet_model_zoo ----

@pytest.fixture(scope="module")
def asr_task():
    try:
        return import_asr_task()
    except ImportError as e:
        pytest.skip(f"espnet2 not importable: {e}")


@pytest.fixture(scope="module")
def packed(asr_task, tmp_path_factory):
    """(zip path, the model as built, its config); bpe units, global MVN stats file in the zip."""
    from test_encoders_sensevoice import train_spm

    root = tmp_path_factory.mktemp("espnet_src")
    bpe = train_spm(root / "data/token_list/bpe_unigram60/bpe.model")
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(bpe))
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size()) if i not in (sp.unk_id(), sp.bos_id(), sp.eos_id())]
    token_list = ["<blank>", "<unk>", *pieces, "<sos/eos>"]
    stats = root / "exp/asr_stats/train/feats_stats.npz"
    stats.parent.mkdir(parents=True)
    np.savez(stats, count=np.array(100), sum=np.full(16, -300.0), sum_square=np.full(16, 1000.0))
    cfg = vars(asr_task.get_parser().parse_args(["--output_dir", "exp/asr_tiny"]))
    cfg.update(
        token_list=token_list, token_type="bpe", bpemodel="data/token_list/bpe_unigram60/bpe.model",
        frontend="default", frontend_conf={"fs": 16000, "n_fft": 128, "hop_length": 64, "n_mels": 16},
        normalize="global_mvn", normalize_conf={"stats_file": "exp/asr_stats/train/feats_stats.npz"},
        encoder="transformer", encoder_conf={"output_size": 16, "attention_heads": 2, "linear_units": 32,
                                             "num_blocks": 1, "input_layer": "conv2d"},
        decoder=None, model_conf={"ctc_weight": 1.0})
    build_cfg = {**cfg, "normalize_conf": {"stats_file": str(stats)}}
    torch.manual_seed(0)
    model = asr_task.build_model(argparse.Namespace(**build_cfg)).eval()
    with torch.no_grad():  # a peaky random CTC layer, so argmax paths are not all blank
        model.ctc.ctc_lo.weight.mul_(20)
    pth = root / "exp/asr_tiny/valid.acc.ave.pth"
    pth.parent.mkdir(parents=True)
    torch.save(model.state_dict(), pth)
    meta = {"files": {"asr_model_file": "exp/asr_tiny/valid.acc.ave.pth"},
            "yaml_files": {"asr_train_config": "exp/asr_tiny/config.yaml"}}
    z = _write_zip(root / "asr_tiny.zip", {
        "meta.yaml": yaml.safe_dump(meta), "exp/asr_tiny/config.yaml": yaml.safe_dump(cfg),
        "exp/asr_tiny/valid.acc.ave.pth": pth.read_bytes(), "exp/asr_stats/train/feats_stats.npz": stats.read_bytes(),
        "data/token_list/bpe_unigram60/bpe.model": bpe.read_bytes()})
    return z, model, cfg


@pytest.fixture(scope="module")
def enc(packed, tmp_path_factory) -> ESPnetEncoder:
    return ESPnetEncoder(packed[0], oov="drop", cache=tmp_path_factory.mktemp("cache"))


def test_posteriors_shapes_lengths_blank(enc: ESPnetEncoder, packed) -> None:
    _, model, cfg = packed
    assert enc.inventory.units == tuple(cfg["token_list"]) and enc.inventory.blank_id == 0
    assert enc.sample_rate == 16000
    rng = np.random.default_rng(0)
    waves = [0.1 * rng.standard_normal(n).astype(np.float32) for n in (8000, 5000)]
    lp, lens = enc.log_posteriors_batch(waves, 16000)
    # STFT (centre, hop 64): n // 64 + 1 frames; conv2d subsampling: ((T - 1) // 2 - 1) // 2
    expect = [((n // 64 + 1 - 1) // 2 - 1) // 2 for n in (8000, 5000)]
    assert [len(enc.log_posteriors(w, 16000)) for w in waves] == expect == [30, 19]
    # ESPnet derives batched lengths from subsampled padding masks: a padded item may get one more frame
    assert lens[0] == expect[0] and expect[1] <= lens[1] <= expect[1] + 1
    assert lp.shape == (2, expect[0], enc.inventory.size) and (lp[1, lens[1]:] == 0).all()
    np.testing.assert_allclose(np.exp(lp[1, :lens[1]]).sum(-1), 1.0, rtol=1e-5)
    with torch.no_grad():  # the same weights as the model that was saved
        e, _ = model.encode(torch.from_numpy(waves[0])[None], torch.tensor([8000]))
        ref = model.ctc.log_softmax(e)[0].numpy()
    single = enc.log_posteriors(waves[0], 16000)
    np.testing.assert_allclose(single, ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(lp[0, :lens[0]], ref, rtol=1e-4, atol=1e-4)
    best = single.argmax(-1)
    assert (best == 0).any() or (best != 0).any()  # blank is column 0 of the inventory
    assert enc.log_posteriors(waves[0][::2], 8000).shape == ref.shape  # resampled to 16 kHz


def test_placeholders_do_not_leak(asr_task) -> None:
    import importlib.util

    from transformers.utils import is_torchaudio_available

    assert is_torchaudio_available() == (importlib.util.find_spec("torchaudio") is not None)
    assert "g2p_en" not in sys.modules or importlib.util.find_spec("g2p_en") is not None


def test_text_to_units_bpe_round_trip_and_oov(enc: ESPnetEncoder) -> None:
    text = "hello speech world"
    units = enc.text_to_units(text)
    assert all(u in enc.inventory.index() for u in units) and "<blank>" not in units
    assert "".join(units).replace("\u2581", " ").strip() == text
    assert "".join(enc.text_to_units("hello ✓ world")).replace("\u2581", " ").split() == ["hello", "world"]
    assert enc.tokenizer.oov_counts == {"✓": 1} and enc.oov_counts == {"✓": 1}  # make_units logs the latter


def test_oov_fail_and_map(packed, tmp_path: Path) -> None:
    fail = ESPnetEncoder(packed[0], cache=tmp_path)
    with pytest.raises(ValueError, match=r"'✓' \(U\+2713\) at character 6"):
        fail.text_to_units("hello ✓ world")
    mapped = ESPnetEncoder(packed[0], oov="map", cache=tmp_path)
    assert mapped.text_to_units("hello ✓ world").count("<unk>") == 1


def test_char_units(packed, tmp_path: Path) -> None:
    z, _, cfg = packed
    enc = ESPnetEncoder(z, oov="fail", cache=tmp_path)
    enc.token_type = "char"
    assert enc.text_to_units("he") == ["h", "e"]
    with pytest.raises(ValueError, match=r"token_list has no unit for 'X' \(U\+0058\) at character 1"):
        enc.text_to_units("hX")
