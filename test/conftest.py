"""Shared fixtures: a tiny text-only training set with its stage-1 units (G2P through hama)."""
import re
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


# --- test kinds: pytest -m unit | cli | recipe -----------------------------------------------
# A test marked by hand keeps its mark. Otherwise: the end-to-end recipe runs are `recipe`;
# a test that runs a command-line tool (in a subprocess or through its main()), builds the
# tiny training set through hama's G2P, or loads a real model (the LLM, hama's recogniser)
# is `cli`; everything else is a fast library test, `unit` (about 6 s of test time in all).
# A slow test the signs miss is marked by hand (e.g. the one reading the whole shipped text).
_CLI_SIGNS = re.compile(r"subprocess|tasu\.bin\.|_cli\(|\bmain\(|_main\(|train_cmd|tiny_units|smollm2|HamaEncoder|"
                        r'build_encoder\("hama"|load_model\(|llm_dirs|\bhama\.')
_CLI_FIXTURES = {"tiny_units", "exp", "llm_dirs", "model_dir", "trained", "packed"}


def pytest_collection_modifyitems(config, items):
    import inspect

    for item in items:
        if any(item.get_closest_marker(k) for k in ("unit", "cli", "recipe")):
            continue
        if item.module.__name__.startswith("test_recipe"):
            kind = "recipe"
        else:
            try:
                src = inspect.getsource(item.function)
            except (OSError, TypeError):
                src = ""
            slow = bool(_CLI_SIGNS.search(src)) or bool(_CLI_FIXTURES & set(getattr(item, "fixturenames", ())))
            kind = "cli" if slow else "unit"
        item.add_marker(getattr(pytest.mark, kind))
