#!/usr/bin/env python3
"""Benchmark (not a test): memory of the training text, held whole vs in shards (tasu.shards).

Makes ``--repeat`` copies of a recipe's training tables (``units`` + ``text``, keys prefixed so
they stay sorted and distinct) under ``--workdir``, then loads them in a fresh process each way,
as ``tasu.bin.train`` does:

- ``memory``: both tables read whole, every example built (``shard_size: 0``);
- ``shards``: converted to shards of ``--shard_size`` examples, then one epoch of batches drawn
  shard by shard (``shard_size: N``);

and prints, for each, the words, the examples, the seconds and the peak resident memory above
the process's memory once the tokenizer is loaded (``ru_maxrss``). E.g. open_en's 4.19 M-word
text ten times over, about 42 M words::

    python -m tasu.bin.benchmark_text --units egs/open_en/dump/train/units \\
        --text egs/open_en/data/train/text --repeat 10 --workdir /tmp/bench_text
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return _rss_mb()


def replicate(src: Path, dst: Path, repeat: int) -> None:
    """``repeat`` copies of a sorted table, keys prefixed ``r<NN>-`` (still sorted, all distinct)."""
    tmp = dst.with_name(dst.name + ".tmp")
    with tmp.open("wb") as out:
        for r in range(repeat):
            pre = f"r{r:03d}-".encode()
            with src.open("rb") as f:
                for line in f:
                    out.write(pre + line)
    tmp.replace(dst)


def child(mode: str, units: Path, text: Path, llm: str, shard_size: int, workdir: Path) -> dict:
    from transformers import AutoTokenizer

    from tasu.encoders import build_encoder
    from tasu.llm import resolve_llm

    tok = AutoTokenizer.from_pretrained(str(resolve_llm(llm)))
    inv = build_encoder("hama").inventory
    eos = tok.eos_token_id
    base = _current_rss_mb()
    t0 = time.perf_counter()
    if mode == "memory":
        from tasu.data import read_kv
        from tasu.examples import make_examples

        texts, unit_tab = read_kv(text), read_kv(units)
        exs = make_examples(unit_tab, texts, inv, tok, eos)
        n, words = len(exs), sum(len(t.split()) for t in texts.values())
    else:
        from tasu.shards import ShardedExamples, build_shards

        sh = ShardedExamples(build_shards(units, text, inv, tok, eos, workdir / "shards", shard_size))
        n, words = 0, 0
        built = time.perf_counter() - t0
        it = sh.batches(8, random.Random(0))
        batches_per_epoch = sum(-(-k // 8) for k in sh.shard_sizes)
        for _ in range(batches_per_epoch):
            b = next(it)
            n += len(b)
            words += sum(len(e.text.split()) for e in b)
    out = {"mode": mode, "examples": n, "words": words, "seconds": round(time.perf_counter() - t0, 1),
           "peak_rss_mb_above_base": round(_rss_mb() - base, 1), "base_rss_mb": round(base, 1)}
    if mode == "shards":
        out["build_seconds"] = round(built, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--units", type=Path, required=True, help="stage-1 units file of the training set")
    ap.add_argument("--text", type=Path, required=True, help="its data dir's text")
    ap.add_argument("--repeat", type=int, default=1, help="copies of the tables to load (default 1)")
    ap.add_argument("--shard_size", type=int, default=100_000)
    ap.add_argument("--llm", default="smollm2-135m-instruct", help="whose tokenizer writes the answers")
    ap.add_argument("--workdir", type=Path, required=True, help="where the copies and shards go")
    ap.add_argument("--modes", default="memory,shards")
    ap.add_argument("--_child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._child:
        print(json.dumps(child(args._child, args.units, args.text, args.llm, args.shard_size, args.workdir)))
        return 0
    args.workdir.mkdir(parents=True, exist_ok=True)
    units, text = args.workdir / "units", args.workdir / "text"
    replicate(args.units, units, args.repeat)
    replicate(args.text, text, args.repeat)
    for mode in args.modes.split(","):
        r = subprocess.run([sys.executable, "-m", "tasu.bin.benchmark_text", "--units", str(units), "--text",
                            str(text), "--llm", args.llm, "--shard_size", str(args.shard_size), "--workdir",
                            str(args.workdir), "--_child", mode], capture_output=True, text=True)
        if r.returncode:
            print(r.stderr[-3000:], file=sys.stderr)
            return r.returncode
        res = json.loads(r.stdout.strip().splitlines()[-1])
        print(f"{mode:7s} {res['words'] / 1e6:7.2f} M words {res['examples']:10d} examples "
              f"{res['seconds']:8.1f} s  peak RSS +{res['peak_rss_mb_above_base'] / 1024:.2f} GB "
              f"(above {res['base_rss_mb']:.0f} MB with the tokenizer)"
              + (f"  [shards built in {res['build_seconds']} s]" if "build_seconds" in res else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
