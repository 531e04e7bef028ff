"""The robustness suite's condition builder (tasu.bin.make_conditions) on real recordings."""
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tasu.bin import make_conditions as mc

ARCTIC = Path(__file__).resolve().parents[1] / "egs" / "open_en" / "db" / "arctic_cathy" / "flac"
pytestmark = pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed (tools/install.sh)")


def data_dir(root: Path, name: str, flacs: list[Path]) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "wav.scp").write_text("".join(f"{f.stem} {f}\n" for f in flacs))
    (d / "text").write_text("".join(f"{f.stem} some words\n" for f in flacs))
    (d / "utt2spk").write_text("".join(f"{f.stem} cathy\n" for f in flacs))
    (d / "spk2utt").write_text("cathy " + " ".join(f.stem for f in flacs) + "\n")
    return d


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    flacs = sorted(ARCTIC.glob("*.flac"))
    root = tmp_path_factory.mktemp("cond")
    return data_dir(root, "dev", flacs[:2]), data_dir(root, "others", flacs[2:8]), root


def test_every_condition_is_deterministic_and_does_what_it_says(sets):
    dev, others, root = sets
    outs = [mc.make_condition(dev, c, root / f"data{run}", root / f"audio{run}", 0, others)
            for run in (1, 2) for c in mc.CONDITIONS]
    for a, b in zip(outs[:len(mc.CONDITIONS)], outs[len(mc.CONDITIONS):]):  # same inputs, same bytes
        wa, wb = (sorted((o / "wav.scp").read_text().split("\n")) for o in (a, b))
        for la, lb in zip(wa, wb):
            if la:
                assert Path(la.split()[1]).read_bytes() == Path(lb.split()[1]).read_bytes()
        assert (a / "text").read_text() == (dev / "text").read_text()
    for uid, flac in (ln.split() for ln in (dev / "wav.scp").read_text().splitlines()):
        clean, sr = sf.read(flac, dtype="float32")
        got = {c: sf.read(root / "audio1" / f"dev_{c}" / f"{uid}.wav", dtype="float32") for c in mc.CONDITIONS}
        assert got["speed0.9"][1] == sr and len(got["speed0.9"][0]) == pytest.approx(len(clean) / 0.9, rel=0.01)
        assert len(got["speed1.1"][0]) == pytest.approx(len(clean) / 1.1, rel=0.01)
        tel, tel_sr = got["telephone"]
        assert tel_sr == 8000 and len(tel) == pytest.approx(len(clean) / 2, rel=0.01)
        assert len(np.unique(tel)) <= 256                                  # 8-bit mu-law levels
        assert len(got["reverb"][0]) == len(clean) + sr // 2               # the 0.5 s tail
        for c in ("babble10", "pink10", "brown10"):
            noisy, nsr = got[c]
            assert nsr == sr and len(noisy) == len(clean)
            snr = 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean((noisy - clean) ** 2))
            assert snr == pytest.approx(10, abs=0.3), c                    # 16-bit rounding aside
        assert not np.array_equal(got["pink10"][0], got["brown10"][0])


def test_seed_changes_the_noise_and_a_complete_condition_is_skipped(sets):
    dev, others, root = sets
    a = mc.make_condition(dev, "pink10", root / "s0", root / "a0", 0)
    b = mc.make_condition(dev, "pink10", root / "s1", root / "a1", 1)
    uid = (dev / "wav.scp").read_text().split()[0]
    w0, w1 = (root / a / "dev_pink10" / f"{uid}.wav" for a in ("a0", "a1"))
    assert w0.read_bytes() != w1.read_bytes()
    stamp = (a / "wav.scp").stat().st_mtime_ns
    mc.make_condition(dev, "pink10", root / "s0", root / "a0", 0)
    assert (a / "wav.scp").stat().st_mtime_ns == stamp and b.is_dir()


def test_bad_conditions_are_errors_naming_the_cause(sets, monkeypatch):
    dev, others, root = sets
    with pytest.raises(mc.ConditionError, match="unknown condition 'echo'"):
        mc.make_condition(dev, "echo", root / "x", root / "xa")
    with pytest.raises(mc.ConditionError, match="give --babble_from"):
        mc.make_condition(dev, "babble10", root / "x", root / "xa")
    with pytest.raises(mc.ConditionError, match="also a recording of"):   # babble from the set itself
        mc.make_condition(dev, "babble10", root / "x", root / "xa", 0, dev)
    monkeypatch.setattr(mc.shutil, "which", lambda _: None)
    with pytest.raises(mc.ConditionError, match=r"wav.scp.*needs sox"):
        mc.make_condition(dev, "reverb", root / "y", root / "ya")
    assert not (root / "y" / "dev_reverb" / "wav.scp").exists()          # nothing half-written passes as done
    assert mc.main(["--data", str(dev), "--conditions", "nope", "--audio_dir", str(root / "z")]) == 1
