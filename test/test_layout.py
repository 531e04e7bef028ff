"""The library's shape: modules import in one direction (no cycles, function-level imports
included), the bottom layers import no torch, and the README stays a short guide whose
Python example runs."""
import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[1]
PKG = TOP / "tasu"


def module_name(path: Path) -> str:
    rel = path.relative_to(TOP).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """``module -> tasu modules it imports``, from every import statement (top-level,
    inside functions, under TYPE_CHECKING alike)."""
    modules = {module_name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for m, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tasu":
                for alias in node.names:  # `from tasu.encoders import hama` imports the submodule
                    sub = f"{node.module}.{alias.name}"
                    graph[m].add(sub if sub in modules else node.module)
            elif isinstance(node, ast.Import):
                graph[m].update(a.name for a in node.names if a.name in modules)
        graph[m].discard(m)
        graph[m].discard("tasu")  # the package itself: only its version string
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(u: str) -> list[str] | None:
        state[u] = 1
        stack.append(u)
        for v in sorted(graph.get(u, ())):
            if state.get(v) == 1:
                return stack[stack.index(v):] + [v]
            if v not in state and (c := visit(v)):
                return c
        stack.pop()
        state[u] = 2
        return None

    for m in sorted(graph):
        if m not in state and (c := visit(m)):
            return c
    return None


def test_the_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_tasu_modules_import_without_cycles():
    graph = import_graph()
    assert {"tasu.train", "tasu.zoo", "tasu.modelio", "tasu.inference", "tasu.score", "tasu.tasks"} <= set(graph)
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


def test_layers_point_down():
    """bin is the top; nothing in the library imports a CLI, and the bottom modules import no
    other tasu module."""
    graph = import_graph()
    for m, deps in graph.items():
        if not m.startswith("tasu.bin"):
            assert not {d for d in deps if d.startswith("tasu.bin")}, f"{m} imports a CLI module"
    for bottom in ("tasu.config", "tasu.fileio", "tasu.units", "tasu.textnorm", "tasu.psd", "tasu.rescore"):
        assert graph[bottom] == set(), f"{bottom} imports {sorted(graph[bottom])}"


@pytest.mark.parametrize("module", ["tasu.config", "tasu.data", "tasu.textnorm", "tasu.score", "tasu.tasks",
                                    "tasu.units", "tasu.zoo"])
def test_data_side_modules_import_no_torch(module):
    """Data preparation and scoring stay light: reading a config or a data dir loads no torch."""
    code = f"import sys, {module}; print('torch' in sys.modules, 'transformers' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], cwd=TOP, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "False"], f"{module} pulls in torch/transformers"


def readme_python_example() -> str:
    text = (TOP / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1, "the README has one Python example"
    return blocks[0]


def test_readme_is_a_short_guide():
    text = (TOP / "README.md").read_text()
    assert len(text) <= 8000, f"README.md has {len(text)} characters (at most 8 000: reference material goes to docs/)"
    for link in re.findall(r"\]\(((?!https?://)[^)#]+)", text):
        assert (TOP / link).exists(), f"README links to {link}, which does not exist"


@pytest.mark.cli
def test_readme_python_example_runs(tmp_path):
    """The README's three lines, verbatim, on two real ARCTIC recordings with the shipped model."""
    code = readme_python_example()
    db = TOP / "egs" / "open_en" / "db" / "arctic_cathy"
    flacs = sorted(db.rglob("*.flac"))[:2]
    assert len(flacs) == 2
    for i, f in enumerate(flacs):  # the example names a.flac and b.flac
        (tmp_path / f"{'ab'[i]}.flac").symlink_to(f)
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    answers = eval(r.stdout.strip().splitlines()[-1])  # the printed list of answers
    assert isinstance(answers, list) and len(answers) == 2 and all(isinstance(a, str) and a for a in answers)
