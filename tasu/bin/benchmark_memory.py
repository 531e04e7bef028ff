#!/usr/bin/env python3
"""Benchmark (not a test): resident memory of one ``tasu-infer`` call as its input list grows.

    python -m tasu.bin.benchmark_memory --data data/arctic_dev data/arctic_test --n 550 \\
        --workdir exp/bench_mem -- --model exp/<model> --config conf/decode_rescore.yaml

writes a wav.scp of ``--n`` inputs (the data dirs' wav.scp lines in order, repeated with the
keys suffixed ``-r2``, ``-r3``... when ``--n`` is larger), runs ``tasu-infer`` on it in a child
process (arguments after ``--`` go to it), and samples the child's resident memory (VmRSS) and
its peak so far (VmHWM) every ``--interval`` seconds beside the number of answers written.
Prints the peak at the first ``--every``, 2 x ``--every``... answers and over the whole run, so
"memory flat as the list grows" is one table: the peak after 100 answers against the peak after
500 or 1 000. The samples go to ``<workdir>/memory.tsv``, the answers to ``<workdir>/text``.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from tasu.data import read_table_lines
from tasu.fileio import atomic_write_text


def input_scp(data_dirs: list[Path], n: int) -> list[str]:
    """``n`` wav.scp lines from the data dirs, repeated with suffixed keys when there are fewer."""
    lines = []
    for d in data_dirs:
        if (d / "segments").is_file():
            raise ValueError(f"{d}/segments: segmented data dirs are not supported here; give whole recordings")
        lines += [(t.key, t.value) for t in read_table_lines(d / "wav.scp") if t.key]
    if not lines:
        raise ValueError(f"no wav.scp lines in {', '.join(map(str, data_dirs))}")
    out = []
    for i in range(n):
        key, value = lines[i % len(lines)]
        rep = i // len(lines)
        out.append(f"{key}-r{rep + 1} {value}" if rep else f"{key} {value}")
    return out


def memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a live process, kB; (0, 0) once it is gone."""
    try:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if ":" in line)
    except OSError:
        return 0, 0
    kb = lambda k: int(fields.get(k, "0 kB").split()[0])  # noqa: E731
    return kb("VmRSS"), kb("VmHWM")


def count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    infer_args = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(prog="python -m tasu.bin.benchmark_memory", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, nargs="+", required=True, help="Kaldi data dirs whose wav.scp to read")
    ap.add_argument("--n", type=int, required=True, help="number of inputs of the one tasu-infer call")
    ap.add_argument("--workdir", type=Path, required=True, help="where wav.scp, text and memory.tsv go")
    ap.add_argument("--every", type=int, default=100, help="report the peak every this many answers")
    ap.add_argument("--interval", type=float, default=2.0, help="seconds between memory samples")
    args = ap.parse_args(argv)
    if args.n < 1 or args.every < 1:
        ap.error("--n and --every must be positive")
    args.workdir.mkdir(parents=True, exist_ok=True)
    scp, text, tsv = args.workdir / "wav.scp", args.workdir / "text", args.workdir / "memory.tsv"
    atomic_write_text(scp, "\n".join(input_scp(args.data, args.n)) + "\n")
    text.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "tasu.bin.infer", str(scp), "--output", str(text), *infer_args]
    print("running:", " ".join(cmd), flush=True)
    t0 = time.monotonic()
    child = subprocess.Popen(cmd)
    samples: list[tuple[float, int, int, int]] = []  # seconds, answers, rss kB, hwm kB
    marks: dict[int, int] = {}                       # answers (multiple of --every) -> peak kB by then
    while True:
        done = child.poll() is not None
        rss, hwm = memory_kb(child.pid)
        answers = count_lines(text)
        if rss:
            samples.append((time.monotonic() - t0, answers, rss, hwm))
            for m in range(args.every, answers + 1, args.every):
                marks.setdefault(m, hwm)
        if done:
            break
        time.sleep(args.interval)
    seconds = time.monotonic() - t0
    peak_kb = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,  # the child's own, to its end
                  max((s[3] for s in samples), default=0))
    rows = ["seconds\tanswers\trss_mb\tpeak_mb"] + [f"{s:.1f}\t{a}\t{r / 1024:.0f}\t{h / 1024:.0f}"
                                                    for s, a, r, h in samples]
    atomic_write_text(tsv, "\n".join(rows) + "\n")
    answers = count_lines(text)
    print(f"\n{answers} answers of {args.n} inputs in {seconds:.0f} s ({seconds / max(answers, 1):.2f} s each); "
          f"tasu-infer exit status {child.returncode}")
    print("answers written | peak RSS by then")
    for m in sorted(marks):
        print(f"{m:>15} | {marks[m] / 1024 ** 2:.2f} GB")
    print(f"{'end':>15} | {peak_kb / 1024 ** 2:.2f} GB (the whole call; samples in {tsv})")
    return 0 if child.returncode == 0 else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
