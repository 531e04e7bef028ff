#!/usr/bin/env python3
"""Benchmark (not a test): time and peak memory of one ``tasu-adapt`` run on a domain of
``--n`` sentences holding ``--new_words`` words the model's lexicon lacks.

    python -m tasu.bin.benchmark_adapt --text egs/open_en/exp/replay.txt.xz --n 2000 --new_words 200 \\
        --workdir exp/bench_adapt -- --replay_text egs/open_en/exp/replay.txt.xz

The domain is made from real sentences (``--text``, one a line; the first ``--n`` of a seeded
shuffle): in ``--new_words`` x 2 of them one word of five letters or more is replaced by one of
``--new_words`` made-up words (seeded consonant-vowel strings no lexicon holds), so every new
word is used twice and goes through G2P. ``tasu-adapt`` runs in a child process (arguments after
``--`` go to it; ``--model`` defaults to the shipped one); the memory of the child and its G2P
workers together is sampled every ``--interval`` seconds into ``<workdir>/memory.tsv`` (resident
and proportional set sizes, and the log's phase). Prints the wall time, the steps (G2P, training,
packing: from the child's log), the peak memory with the phase it was reached in, and the card.
"""
from __future__ import annotations

import argparse
import lzma
import random
import re
import subprocess
import sys
import time
from pathlib import Path

from tasu.fileio import atomic_write_text


def pseudo_words(n: int, seed: int, avoid: set[str]) -> list[str]:
    """``n`` made-up pronounceable words (consonant-vowel syllables), none of them in ``avoid``."""
    rng = random.Random(seed)
    cons, vows = "bdfgklmnprstvz", "aeiou"
    out: list[str] = []
    while len(out) < n:
        w = "".join(rng.choice(cons) + rng.choice(vows) for _ in range(rng.choice((2, 3)))) + rng.choice(cons)
        if w not in avoid and w not in out:
            out.append(w)
    return out


def tree_memory_kb(pid: int) -> tuple[int, int, int]:
    """``(resident kB, proportional kB, processes)`` of ``pid`` and its descendants (zeros once
    gone). Resident memory counts a page shared by forked workers once in each of them;
    proportional memory (PSS, ``/proc/<pid>/smaps_rollup``) splits it among them, so its sum is
    what the tree takes from the machine."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in stat.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        p = int(stat.parent.name)
        children.setdefault(int(fields.get("PPid", "0").strip()), []).append(p)
        rss[p] = int(fields.get("VmRSS", "0 kB").split()[0])
    total = pss = n = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        if p not in rss:
            continue
        n += 1
        total += rss[p]
        try:
            pss += next(int(line.split()[1]) for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines()
                        if line.startswith("Pss:"))
        except (OSError, StopIteration, ValueError):
            pss += rss[p]
        todo += children.get(p, [])
    return total, pss, n


def last_phase(log: Path) -> str:
    """The last log line the run has written (its phase), shortened."""
    try:
        text = log.read_text(errors="replace").replace("\r", "\n")
    except OSError:
        return ""
    lines = [ln for ln in text.splitlines() if " INFO: " in ln or " WARNING: " in ln]
    return lines[-1].split(": ", 1)[-1][:90] if lines else ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--text", type=Path, required=True, help="real sentences, one a line (.xz too)")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--new_words", type=int, default=200)
    ap.add_argument("--lexicon", type=Path, help="words the made-up ones must avoid (default: the shipped model's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("adapt_args", nargs="*", help="after --: more tasu-adapt options")
    args = ap.parse_args(argv)
    from tasu.g2p import read_lexicon
    from tasu.zoo import unpack

    lexicon = args.lexicon or unpack(None).lexicon_file
    known = set(read_lexicon(Path(lexicon))[0])
    raw = lzma.open(args.text).read() if args.text.suffix == ".xz" else args.text.read_bytes()
    sents = [s.strip() for s in raw.decode("utf-8").splitlines() if s.strip()]
    rng = random.Random(args.seed)
    rng.shuffle(sents)
    sents = sents[:args.n]
    new = pseudo_words(args.new_words, args.seed, known)
    slots = [i for i, s in enumerate(sents) if re.search(r"\b[a-z]{5,}\b", s)]
    for k, i in enumerate(rng.sample(slots, min(len(slots), 2 * len(new)))):
        cands = re.findall(r"\b[a-z]{5,}\b", sents[i])
        sents[i] = re.sub(rf"\b{re.escape(rng.choice(cands))}\b", new[k % len(new)], sents[i], count=1)
    args.workdir.mkdir(parents=True, exist_ok=True)
    domain = args.workdir / "domain.txt"
    atomic_write_text(domain, "".join(s + "\n" for s in sents))
    out = args.workdir / "adapted.zip"
    cmd = [sys.executable, "-m", "tasu.bin.adapt", "--text", str(domain), "--out", str(out), *args.adapt_args]
    log = args.workdir / "adapt.log"
    t0 = time.time()
    peak = (0, 0, 0, 0.0, "")  # pss, rss, processes, when, phase
    with open(log, "w") as f, open(args.workdir / "memory.tsv", "w") as mem:
        mem.write("seconds\trss_kb\tpss_kb\tprocesses\tphase\n")
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)
        while p.poll() is None:
            rss, pss, n = tree_memory_kb(p.pid)
            phase = last_phase(log)
            mem.write(f"{time.time() - t0:.1f}\t{rss}\t{pss}\t{n}\t{phase}\n")
            if pss > peak[0]:
                peak = (pss, max(rss, peak[1]), n, time.time() - t0, phase)
            else:
                peak = (peak[0], max(rss, peak[1]), *peak[2:])
            time.sleep(args.interval)
    wall = time.time() - t0
    text = log.read_text(errors="replace")
    print(f"domain: {len(sents)} sentences of {args.text}, {len(new)} made-up words (each in 2 sentences)")
    print(f"tasu-adapt exit {p.returncode}: {wall / 60:.1f} min wall; peak memory {peak[0] / 1e6:.2f} GB "
          f"(proportional set size of the process and its workers, {peak[2]} processes, at {peak[3] / 60:.1f} min, "
          f"during: {peak[4]!r}); peak of the summed resident sizes {peak[1] / 1e6:.2f} GB (counts pages "
          f"the workers share once each); sampled every {args.interval:g} s: {args.workdir / 'memory.tsv'}")
    for pat in (r"\d+ new to the lexicon", r"training \d+ steps.*", r"time budget .* reached.*", r"adapted model: .*"):
        m = re.search(pat, text)
        if m:
            print("  " + m.group(0)[:200])
    if out.is_file():
        import zipfile

        with zipfile.ZipFile(out) as z:
            card = next(n for n in z.namelist() if n.endswith("ADAPT.md"))
            print(z.read(card).decode())
    return p.returncode


if __name__ == "__main__":
    sys.exit(main())
