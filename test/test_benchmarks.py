"""The benchmark scripts' own helpers (the benchmarks themselves are run by hand, not timed here)."""
from pathlib import Path

import pytest

from tasu.bin.benchmark_memory import input_scp, memory_kb


def test_memory_benchmark_inputs_repeat_with_unique_keys(tmp_path: Path) -> None:
    for name, lines in (("a", "a1 /x/a1.wav\na2 /x/a2.wav\n"), ("b", "b1 sox /x/b1.flac -t wav - |\n")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "wav.scp").write_text(lines)
    scp = input_scp([tmp_path / "a", tmp_path / "b"], 7)
    assert scp == ["a1 /x/a1.wav", "a2 /x/a2.wav", "b1 sox /x/b1.flac -t wav - |",
                   "a1-r2 /x/a1.wav", "a2-r2 /x/a2.wav", "b1-r2 sox /x/b1.flac -t wav - |", "a1-r3 /x/a1.wav"]
    assert len({ln.split()[0] for ln in scp}) == 7  # tasu-infer refuses a repeated key
    assert input_scp([tmp_path / "a"], 1) == ["a1 /x/a1.wav"]

    (tmp_path / "a" / "segments").write_text("s1 a1 0.0 1.0\n")
    with pytest.raises(ValueError, match="segments"):
        input_scp([tmp_path / "a"], 3)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "wav.scp").write_text("")
    with pytest.raises(ValueError, match="no wav.scp lines"):
        input_scp([tmp_path / "c"], 3)


def test_memory_of_a_process() -> None:
    import os

    rss, hwm = memory_kb(os.getpid())
    assert 0 < rss <= hwm
    assert memory_kb(2 ** 22 + 12345) == (0, 0)  # no such process (above the default pid_max)
