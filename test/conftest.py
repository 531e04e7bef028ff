"""Shared fixtures: a tiny text-only training set with its stage-1 units (G2P through hama)."""
import subprocess
import sys
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[1]
TINY_SENTS = ["the cat sat on the mat", "a dog ran in the park", "she reads a book at night",
              "we walk to school", "the sun is hot today", "he plays the piano well",
              "they sing a song", "my friend likes green tea", "open the window please", "it rained all day"]


@pytest.fixture(scope="session")
def tiny_units(tmp_path_factory) -> Path:
    """A dir with ``data/text`` (10 sentences), ``dump/units`` and ``lexicon.txt``."""
    pytest.importorskip("hama")
    d = tmp_path_factory.mktemp("tiny_units")
    (d / "data").mkdir()
    (d / "data" / "text").write_text("".join(f"s{i:02d} {s}\n" for i, s in enumerate(TINY_SENTS)))
    r = subprocess.run([sys.executable, "-m", "tasu.bin.make_units", "--data", str(d / "data"), "--out",
                        str(d / "dump"), "--lexicon", str(d / "lexicon.txt")], cwd=TOP, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return d


def train_cmd(d: Path, expdir: Path, overrides: list[str], launcher: list[str] | None = None) -> list[str]:
    """``python -m tasu.bin.train`` on :func:`tiny_units` data with the mini_en config and overrides."""
    return (launcher or [sys.executable, "-m"]) + [
        "tasu.bin.train", "--config", str(TOP / "egs/mini_en/conf/train.yaml"),
        "--train_data", str(d / "data"), "--train_units", str(d / "dump" / "units"),
        "--lexicon", str(d / "lexicon.txt"), "--expdir", str(expdir)] + [
        x for o in overrides for x in ("--override", o)]
