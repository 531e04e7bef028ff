"""The ``hf:`` encoder backend on tiny random Wav2Vec2ForCTC / HubertForCTC dirs (offline)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

pytest.importorskip("transformers")
from tiny_hf import LOWER, UPPER, tiny_ctc_dir  # noqa: E402

from tasu.encoders import build_encoder  # noqa: E402
from tasu.encoders.base import EncoderError  # noqa: E402
from tasu.encoders.hf import OOVError  # noqa: E402
from tasu.units import UnitInventory  # noqa: E402

TOP = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf")
    return {"wav2vec2": tiny_ctc_dir(root / "w2v", "wav2vec2", UPPER),
            "hubert": tiny_ctc_dir(root / "hubert", "hubert", LOWER, seed=1)}


@pytest.fixture(scope="module", params=["wav2vec2", "hubert"])
def enc(request, models):
    return build_encoder(f"hf:{models[request.param]}", oov="drop")


def waves(*seconds: float, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(int(s * 16000))).astype(np.float32) for s in seconds]


def test_inventory_blank_and_word_boundary(enc):
    inv = enc.inventory
    tok = enc.tokenizer
    assert inv.size == len(tok) == enc.model.config.vocab_size
    assert inv.blank_id == enc.model.config.pad_token_id == tok.pad_token_id == 0
    assert inv.units[inv.blank_id] == "<blank>" and inv.units[inv.wb_id] == "<wb>"
    assert inv.wb_id == tok.convert_tokens_to_ids("|")
    # every other unit is the tokenizer's own token, in id order
    assert all(u == tok.convert_ids_to_tokens(i) for i, u in enumerate(inv.units) if i not in (0, inv.wb_id))


def test_batched_shapes_lengths_and_normalisation(enc):
    ws = waves(1.0, 0.43, 0.2, 0.7)
    lp, n = enc.log_posteriors_batch(ws, 16000)
    assert lp.dtype == np.float32 and n.dtype == np.int64
    expect = [((len(w) - 10) // 5 + 1 - 4) // 4 + 1 for w in ws]  # the two convolutions of tiny_ctc_dir
    assert lp.shape == (4, max(expect), enc.inventory.size) and n.tolist() == expect
    for b, w in enumerate(ws):
        one = enc.log_posteriors(w, 16000)
        assert one.shape == (n[b], enc.inventory.size)
        np.testing.assert_allclose(lp[b, : n[b]], one, atol=1e-4)  # batched == one by one
        np.testing.assert_allclose(np.exp(one).sum(1), 1.0, atol=1e-5)
        assert not lp[b, n[b]:].any()  # padding frames are zeros
    # a model without an attention mask (group-norm wav2vec2-base) would see its batch
    # neighbours' padding: it runs one by one, exactly equal to unbatched
    enc._use_mask = False
    try:
        lp2, n2 = enc.log_posteriors_batch(ws, 16000)
        assert n2.tolist() == n.tolist()
        for b, w in enumerate(ws):
            np.testing.assert_array_equal(lp2[b, : n2[b]], enc.log_posteriors(w, 16000))
    finally:
        enc._use_mask = True
    # another sample rate is resampled: about the same number of frames
    assert abs(enc.log_posteriors(ws[0][::2].copy(), 8000).shape[0] - n[0]) <= 1


def test_short_and_empty_batches(enc):
    lp, n = enc.log_posteriors_batch(waves(0.0005, 0.3), 16000)  # 8 samples: no whole frame
    assert n[0] == 0 and n[1] > 0 and lp.shape[0] == 2
    lp, n = enc.log_posteriors_batch([], 16000)
    assert lp.shape == (0, 0, enc.inventory.size) and n.shape == (0,)


def test_text_to_units_round_trips_through_the_tokenizer(enc):
    text = "Hello   world, it's  the dog's ball"
    ids = enc.text_to_ids(text)
    units = enc.text_to_units(text)
    assert units == [enc.inventory.units[i] for i in ids] and units.count("<wb>") == 5
    norm = "hello world it's the dog's ball"  # the comma is dropped (oov=drop)
    norm = norm.upper() if enc.inventory.units[5] == "E" else norm  # case as the vocabulary writes it
    assert enc.tokenizer.decode(ids, group_tokens=False) == norm
    assert enc.tokenizer(norm)["input_ids"] == ids  # the tokenizer itself writes the same ids
    assert enc.normalize("  a  B ") == ("A B" if enc.inventory.units[5] == "E" else "a b")


def test_oov_policies(models):
    d = models["wav2vec2"]
    fail = build_encoder(f"hf:{d}")  # the constructor default: fail
    with pytest.raises(OOVError) as e:
        fail.text_to_units("naïve café")
    msg = str(e.value)
    assert msg.startswith("character 'ï' (U+00EF) at position 3 of 'naïve café'"), msg
    drop = build_encoder(f"hf:{d}", oov="drop")
    assert drop.text_to_units("naïve café!") == list("NAVE") + ["<wb>"] + list("CAF")
    assert dict(drop.oov_counts) == {"ï": 1, "é": 1, "!": 1}
    mapped = build_encoder(f"hf:{d}", oov="map")
    assert mapped.text_to_units("naïve café!") == list("NAIVE") + ["<wb>"] + list("CAFE") + ["<unk>"]
    assert dict(mapped.oov_counts) == {"ï": 1, "é": 1, "!": 1}
    with pytest.raises(EncoderError, match="oov policy must be one of fail, drop, map"):
        build_encoder(f"hf:{d}", oov="ignore")


def test_spellings_are_the_characters(enc):
    sp = enc.spellings()
    assert sp[enc.inventory.units[5]] == {enc.inventory.units[5].lower(): 1} and sp["'"] == {"'": 1}
    assert not {"<blank>", "<wb>", "<unk>", "<s>"} & set(sp)


def test_bad_models_name_the_dir(tmp_path, models):
    with pytest.raises(EncoderError, match=f"{tmp_path}/nope: encoder model directory does not exist"):
        build_encoder(f"hf:{tmp_path}/nope")
    nohead = tiny_ctc_dir(tmp_path / "nohead", head=False)
    with pytest.raises(EncoderError, match=rf"{nohead}: the model \(Wav2Vec2Model\) has no CTC head"):
        build_encoder(f"hf:{nohead}")
    # a *ForCTC config whose checkpoint lacks the head weights
    from safetensors.torch import load_file, save_file

    nolm = tiny_ctc_dir(tmp_path / "nolm")
    state = load_file(nolm / "model.safetensors")
    save_file({k: v for k, v in state.items() if not k.startswith("lm_head")}, nolm / "model.safetensors",
              metadata={"format": "pt"})
    with pytest.raises(EncoderError, match=rf"{nolm}: the checkpoint has no CTC head weights \(lm_head.bias, "):
        build_encoder(f"hf:{nolm}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EncoderError, match=f"{tmp_path}/empty/config.json: missing"):
        build_encoder(f"hf:{tmp_path}/empty")
    notok = tiny_ctc_dir(tmp_path / "notok")
    (notok / "vocab.json").unlink()
    with pytest.raises(EncoderError, match=f"{notok}: cannot load the tokenizer"):
        build_encoder(f"hf:{notok}")


def test_spec_strings_and_devices(models, monkeypatch):
    with pytest.raises(ValueError, match=r"unknown encoder 'w2v:x'; known: hama\[:<arg>\], hf\[:<arg>\]"):
        build_encoder("w2v:x")
    with pytest.raises(ValueError, match="needs a model dir or hub id"):
        build_encoder("hf:")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(EncoderError, match="sees no CUDA device"):
            build_encoder(f"hf:{models['wav2vec2']}", device="cuda")


def test_hub_id_offline_says_how_to_use_a_local_dir(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    with pytest.raises(EncoderError) as e:
        build_encoder("hf:nobody/no-such-ctc-model")
    msg = str(e.value)
    assert msg.startswith("nobody/no-such-ctc-model: ") and "could not be found or downloaded" in msg
    assert "--encoder hf:DIR" in msg


# -- the recipe CLIs -----------------------------------------------------------------------


def run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", *args], cwd=TOP, capture_output=True, text=True, env=ENV,
                       timeout=timeout)
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    return r


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, models) -> Path:
    """A 3-utterance data dir (noise wavs at 16 and 8 kHz) and its stage-1 outputs via ``hf:``."""
    d = tmp_path_factory.mktemp("recipe")
    data = d / "data"
    data.mkdir()
    ws = waves(0.6, 0.35, 0.8, seed=3)
    for i, w in enumerate(ws):
        sr = 8000 if i == 1 else 16000
        sf.write(d / f"u{i}.wav", w[::2] if sr == 8000 else w, sr, subtype="FLOAT")
    (data / "wav.scp").write_text("".join(f"u{i} {d}/u{i}.wav\n" for i in range(3)))
    (data / "text").write_text("u0 the cat sat on the mat\nu1 a dog ran, in the park!\nu2 we walk to school\n")
    (data / "utt2spk").write_text("u0 a\nu1 a\nu2 b\n")
    (data / "spk2utt").write_text("a u0 u1\nb u2\n")
    return d


@pytest.fixture(scope="module")
def stage1_units(recipe, models) -> subprocess.CompletedProcess:
    """``make_units --encoder hf:<tiny wav2vec2>`` into ``<recipe>/dump/units``."""
    return run("tasu.bin.make_units", "--encoder", f"hf:{models['wav2vec2']}", "--data", str(recipe / "data"),
               "--out", str(recipe / "dump"))


def test_make_units_and_dump_posteriors(recipe, models, stage1_units):
    enc = f"hf:{models['wav2vec2']}"
    r = stage1_units
    assert r.returncode == 0, r.stderr[-3000:]
    assert "'!' x1, ',' x1" in r.stderr and "dropped" in r.stderr  # oov=drop, counted
    units = (recipe / "dump" / "units").read_text().splitlines()
    assert units[0] == "u0 T H E <wb> C A T <wb> S A T <wb> O N <wb> T H E <wb> M A T"
    assert units[1] == "u1 A <wb> D O G <wb> R A N <wb> I N <wb> T H E <wb> P A R K"
    # oov=fail names the text line, the utterance, the character and its position
    r = run("tasu.bin.make_units", "--encoder", enc, "--oov", "fail", "--data", str(recipe / "data"),
            "--out", str(recipe / "dump_fail"))
    assert r.returncode == 1
    assert f"{recipe / 'data' / 'text'}:2: utterance u1: character ',' (U+002C) at position 10" in r.stderr

    r = run("tasu.bin.dump_posteriors", "--encoder", enc, "--data", str(recipe / "data"), "--out",
            str(recipe / "dump"), "--batch_size", "2", "--psd_threshold", "0.99")
    assert r.returncode == 0, r.stderr[-3000:]
    import kaldiio

    from tasu.encoders import build_encoder
    from tasu.psd import psd_compress

    e = build_encoder(enc)
    stats = {u: (int(a), int(b))
             for u, a, b in (x.split() for x in (recipe / "dump" / "psd_stats").read_text().splitlines())}
    feats = dict(kaldiio.load_scp(str(recipe / "dump" / "feats.scp")))
    for i in range(3):
        wave, sr = sf.read(recipe / f"u{i}.wav", dtype="float32")
        lp = e.log_posteriors(wave, sr)
        assert stats[f"u{i}"][0] == lp.shape[0]
        if f"u{i}" in feats:
            np.testing.assert_allclose(feats[f"u{i}"], psd_compress(lp, e.inventory.blank_id, 0.99), atol=1e-4)
            assert feats[f"u{i}"].shape[1] == e.inventory.size
    assert feats and (recipe / "dump" / "units_hyp").is_file()


def test_dump_posteriors_bad_encoder_dir(recipe, tmp_path):
    r = run("tasu.bin.dump_posteriors", "--encoder", f"hf:{tmp_path}/missing", "--data", str(recipe / "data"),
            "--out", str(tmp_path / "dump"))
    assert r.returncode == 1 and f"{tmp_path}/missing: encoder model directory does not exist" in r.stderr


def test_train_a_few_steps(recipe, models, stage1_units, tmp_path):
    assert stage1_units.returncode == 0, stage1_units.stderr[-3000:]
    enc = f"hf:{models['wav2vec2']}"
    over = ["optim.max_steps=2", "optim.batch_size=2", "optim.warmup_steps=1", "amp=none", "log_interval=1",
            "projector.init_steps=5", "noise_warmup_steps=0", "lora.r=4", "projector.hidden=64", "save_interval=2"]

    def train(encoder: str, exp: Path) -> subprocess.CompletedProcess:
        return run("tasu.bin.train", "--config", str(TOP / "egs/mini_en/conf/train.yaml"), "--encoder", encoder,
                   "--train_data", str(recipe / "data"), "--train_units", str(recipe / "dump" / "units"),
                   "--expdir", str(exp), *[x for o in over for x in ("--override", o)])

    r = train(enc, tmp_path / "exp")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "projector warm start: 28 units with spelling targets" in r.stderr  # 26 letters, apostrophe, <wb>
    inv = UnitInventory.from_file(tmp_path / "exp" / "units.txt")  # decode/pack read it with the default roles
    assert inv.units == build_encoder(enc).inventory.units and inv.blank_id == 0 and inv.wb_id == 4
    assert (tmp_path / "exp" / "model.pt").is_file()
    # the exp dir records the encoder: tasu-infer runs it on audio, pack references it
    assert yaml.safe_load((tmp_path / "exp" / "config.yaml").read_text())["encoder"] == enc
    r = run("tasu.bin.infer", "--model", str(tmp_path / "exp"), str(recipe / "data"), "-o", str(tmp_path / "hyp"),
            "--max_new_tokens", "3", "--psd_threshold", "0.99")
    assert r.returncode == 0, r.stderr[-3000:]
    hyp_ids = [line.split(maxsplit=1)[0] for line in (tmp_path / "hyp").read_text().splitlines()]
    assert hyp_ids and set(hyp_ids) <= {"u0", "u1", "u2"}  # the tiny model's audio went through
    from tasu.zoo import pack, unpack

    meta = unpack(pack(tmp_path / "exp", tmp_path / "m.zip"), tmp_path / "unpacked").meta
    assert meta["references"]["encoder"]["package"] == "transformers"
    assert meta["references"]["encoder"]["model"] == str(models["wav2vec2"])
    # units of another encoder: an error naming the file, before the LLM is loaded
    r = train(f"hf:{models['hubert']}", tmp_path / "exp2")
    assert r.returncode == 1 and str(recipe / "dump" / "units") in r.stderr and "'T'" in r.stderr
