#!/usr/bin/env python3
"""Benchmark (not a test): data-parallel training throughput, time to resume, checkpoint size.

Trains ``--steps`` steps of a training config with 1 process and with ``torchrun`` N
processes (gloo on CPU; the same global batch), each into its own exp dir under
``--workdir``, and prints per run: sentences/s over the steps after the first
(``history.json``), wall time, then the time one more run takes to resume from the last
checkpoint (checkpoint load alone, from the log, and process start to resumed) and the
size of a checkpoint and of ``model.pt``.

    python -m tasu.bin.benchmark_dist --config egs/mini_en/conf/train.yaml \\
        --train_data egs/mini_en/data/train --train_units egs/mini_en/dump/train/units \\
        --lexicon egs/mini_en/dump/lexicon.txt --steps 30 --nprocs 1 2
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path


def train_cmd(args: argparse.Namespace, expdir: Path, nproc: int, steps: int) -> list[str]:
    launcher = [sys.executable, "-m"] if nproc == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc), "-m"]
    over = [f"optim.max_steps={steps}", f"save_interval={steps}", "log_interval=1", "keep_checkpoints=1"]
    return launcher + ["tasu.bin.train", "--config", str(args.config), "--train_data", str(args.train_data),
                       "--train_units", str(args.train_units), "--lexicon", str(args.lexicon),
                       "--expdir", str(expdir)] + [x for o in over + args.override for x in ("--override", o)]


def log_time(line: str) -> float:
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--train_data", type=Path, required=True)
    ap.add_argument("--train_units", type=Path, required=True)
    ap.add_argument("--lexicon", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--nprocs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--workdir", type=Path, default=None, help="default: a temporary dir")
    ap.add_argument("--override", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="tasu_bench_dist_"))

    from tasu.config import load_config, parse_overrides

    bs = load_config(args.config, overrides=parse_overrides(args.override)).optim.batch_size
    print(f"workdir {work}; {os.cpu_count()} CPUs; config {args.config}; {args.steps} steps")
    for n in args.nprocs:
        exp = work / f"np{n}"
        env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // n))}
        t0 = time.time()
        r = subprocess.run(train_cmd(args, exp, n, args.steps), capture_output=True, text=True, env=env)
        wall = time.time() - t0
        if r.returncode:
            print(r.stderr[-3000:], file=sys.stderr)
            return 1
        hist = [h for h in json.loads((exp / "history.json").read_text()) if "loss" in h]
        logl = [ln for ln in (exp / "train.log").read_text().splitlines() if " INFO: step " in ln and " loss " in ln]
        # sentences/s from the log timestamps of step 1 and the last step (start-up excluded)
        span = log_time(logl[-1]) - log_time(logl[0])
        sps = bs * (len(logl) - 1) / span if span > 0 else float("nan")
        print(f"{n} process(es): {sps:.2f} sent/s over steps 2-{args.steps} (global batch {bs}, "
              f"OMP_NUM_THREADS={env['OMP_NUM_THREADS']}), final loss {hist[-1]['loss']:.4f}, wall {wall:.1f} s")
        # resume: one more step from the checkpoint of step N
        t0 = time.time()
        r = subprocess.run(train_cmd(args, exp, n, args.steps + 1), capture_output=True, text=True, env=env)
        if r.returncode:
            print(r.stderr[-3000:], file=sys.stderr)
            return 1
        lines = (exp / "train.log").read_text().splitlines()
        res = [ln for ln in lines if "resumed from" in ln][-1]
        load_s = float(re.search(r"in ([\d.]+) s", res).group(1))
        start = [ln for ln in lines if " INFO: command: " in ln][-1]
        ck = sorted((exp / "checkpoints").glob("step*.pt"))[-1]
        print(f"  resume: checkpoint load {load_s:.2f} s, process start to resumed "
              f"{log_time(res) - log_time(start):.1f} s (LLM load, projector set-up included); "
              f"checkpoint {ck.stat().st_size / 2**20:.1f} MiB, "
              f"model.pt {(exp / 'model.pt').stat().st_size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
