"""Top-k posterior storage (tasu.posteriors): packing, dense on demand, reading a top-k dump, the
stage-1 CLI writing one, and decoding from it exactly as from the dense rows it stands for."""
import json
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest

from tasu.data import DataError, read_posteriors, write_data_dir
from tasu.posteriors import INFO_FILE, TopKRows, info_text, pack_topk

TOP = Path(__file__).resolve().parents[1]


def rows(T=5, V=12, seed=0, nonzero=3):
    """PSD-like rows: ``nonzero`` units carry each row's mass."""
    rng = np.random.default_rng(seed)
    m = np.zeros((T, V), np.float32)
    for t in range(T):
        ids = rng.choice(V, nonzero, replace=False)
        m[t, ids] = rng.dirichlet(np.ones(nonzero))
    return m


@pytest.mark.unit
def test_pack_and_dense():
    m = rows()
    packed = pack_topk(m, 4)
    assert packed.shape == (5, 8) and (np.diff(packed[:, :4], axis=1) <= 0).all()  # largest first
    r = TopKRows(packed, 12)
    assert r.shape == (5, 12) and r.ndim == 2 and len(r) == 5
    np.testing.assert_allclose(np.asarray(r), m, atol=1e-6)  # rows with <= k units come back exactly
    # a row with more than k units: the kept mass stays, the rest is spread evenly
    full = np.full((1, 12), 1 / 12, np.float32)
    full[0, 3] = 0.5
    full /= full.sum()
    d = TopKRows(pack_topk(full, 2), 12).dense()
    assert d[0, 3] == pytest.approx(full[0, 3]) and d.sum() == pytest.approx(1.0)
    rest = np.delete(d[0], [3, int(pack_topk(full, 2)[0, 3])])
    assert np.allclose(rest, rest[0])
    assert np.asarray(r, dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError, match="need 0 < k"):
        pack_topk(m, 13)
    with pytest.raises(ValueError, match="unit ids outside"):
        TopKRows(np.array([[1.0, 12.0]], np.float32), 12)
    with pytest.raises(ValueError, match=r"\[T', 2k\]"):
        TopKRows(np.zeros((2, 3), np.float32), 12)


def write_dump(d: Path, mats: dict, info: str | None):
    d.mkdir(parents=True, exist_ok=True)
    with kaldiio.WriteHelper(f"ark,scp:{d / 'feats.ark'},{d / 'feats.scp'}") as w:
        for k, v in mats.items():
            w(k, v)
    if info is not None:
        (d / INFO_FILE).write_text(info)
    return d / "feats.scp"


@pytest.mark.unit
def test_read_a_topk_dump(tmp_path):
    m = rows(T=4, V=10)
    scp = write_dump(tmp_path / "topk", {"u1": pack_topk(m, 3)}, info_text(3, 10))
    got = read_posteriors(scp)["u1"]
    assert isinstance(got, TopKRows) and got.shape == (4, 10)
    np.testing.assert_allclose(np.asarray(got), m, atol=1e-6)
    dense = read_posteriors(write_dump(tmp_path / "dense", {"u1": m}, None))["u1"]  # no feats.info: dense
    assert isinstance(dense, np.ndarray) and dense.shape == (4, 10)
    (tmp_path / "topk" / INFO_FILE).write_text(info_text(5, 10))  # says top-5, holds top-3
    with pytest.raises(DataError, match=r"feats.scp:1: u1: rows of shape \(4, 6\), but .*feats.info says top-5"):
        read_posteriors(scp)
    (tmp_path / "topk" / INFO_FILE).write_text('{"format": "sparse"}')
    with pytest.raises(DataError, match="feats.info: expected"):
        read_posteriors(scp)


def test_decoding_topk_rows_equals_decoding_their_dense_rows():
    import torch
    from test_model import V, tiny_model

    from tasu.decode import decode_posteriors

    m, _ = tiny_model()
    m.tokenizer = type("Tok", (), {"decode": staticmethod(lambda ids, skip_special_tokens: " ".join(map(str, ids)))})
    dense = {f"u{i}": rows(T=3 + i, V=V, seed=i) for i in range(3)}
    topk = {u: TopKRows(pack_topk(x, 3), V) for u, x in dense.items()}
    with torch.inference_mode():
        a = decode_posteriors(m, list(dense.items()), batch_size=2, max_new_tokens=4)
        b = decode_posteriors(m, list(topk.items()), batch_size=2, max_new_tokens=4)
    assert a == b and len(a) == 3


@pytest.mark.cli
def test_dump_posteriors_topk_keeps_each_rows_largest_units(tmp_path):
    from tiny_hf import UPPER, tiny_ctc_dir

    ctc = tiny_ctc_dir(tmp_path / "ctc", "wav2vec2", UPPER)
    flacs = sorted((TOP / "test" / "fixtures" / "LibriSpeech").rglob("*.flac"))[:2]
    d = tmp_path / "data"
    write_data_dir(d, wav_scp={f.stem: str(f) for f in flacs})
    for out, more in (("dense", []), ("topk", ["--topk", "4"])):
        r = subprocess.run([sys.executable, "-m", "tasu.bin.dump_posteriors", "--data", str(d), "--out",
                            str(tmp_path / out), "--encoder", f"hf:{ctc}", *more], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    assert not (tmp_path / "dense" / INFO_FILE).exists()
    info = json.loads((tmp_path / "topk" / INFO_FILE).read_text())
    dense, topk = read_posteriors(tmp_path / "dense" / "feats.scp"), read_posteriors(tmp_path / "topk" / "feats.scp")
    assert info == {"format": "topk", "k": 4, "vocab_size": len(UPPER)} and dense.keys() == topk.keys()
    for u, x in dense.items():
        y = np.asarray(topk[u])
        assert y.shape == x.shape and topk[u].packed.shape[1] == 8
        top = np.argsort(-x, axis=1)[:, :4]
        np.testing.assert_allclose(np.take_along_axis(y, top, 1), np.take_along_axis(x, top, 1), rtol=1e-6)
        np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-4)
    # re-dumping dense removes the top-k format note with the top-k rows
    r = subprocess.run([sys.executable, "-m", "tasu.bin.dump_posteriors", "--data", str(d), "--out",
                        str(tmp_path / "topk"), "--encoder", f"hf:{ctc}"], capture_output=True, text=True)
    assert r.returncode == 0 and not (tmp_path / "topk" / INFO_FILE).exists()
    assert isinstance(read_posteriors(tmp_path / "topk" / "feats.scp")["1988-24833-0000"], np.ndarray)
