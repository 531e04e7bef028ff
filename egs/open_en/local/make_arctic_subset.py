#!/usr/bin/env python3
"""Make the committed ARCTIC real-speech subset (db/arctic_cathy) from rhasspy/dataset-voice-cathy.

Provenance script: run once by a maintainer; the result ships in the repo and local/data.sh reads
it. The source is GitHub ``rhasspy/dataset-voice-cathy`` (CC0 1.0): CMU ARCTIC prompts read by one
native US English speaker, 48 kHz stereo wavs with a ``.txt`` transcript each, 1 to 3 takes of
each of 1 132 prompts. Fetch it with the search tool (``fetch github:rhasspy/dataset-voice-cathy``),
then

    python3 local/make_arctic_subset.py --mirror /work/.mirror --out db/arctic_cathy

Rules: one take per prompt (the latest by its timestamp: the speaker re-read prompts she was not
happy with); prompts are split at random (seeded) into ``n_test`` test and ``n_dev`` dev prompts,
so no prompt is in both; audio becomes 16 kHz mono 16-bit FLAC (sox, its default high-quality
resampler, channels averaged; ``-R`` seeds the dither of the reduction to 16 bits, so a re-run
writes the same bytes). The committed ``db/arctic_cathy`` FLACs (2026-12-01) were made without
``-R``: SoX then seeds the dither from the clock, and they differ from a re-run in about half of
the samples by 1-2 LSB, by that dither alone. A wav without a ``.txt``, or a ``.txt`` without a
wav, is skipped and counted; a transcript that normalises to nothing is skipped and counted.
Outputs, each written atomically: ``<out>/flac/<utt>.flac``, ``<out>/{dev,test}.text`` (``<utt> <transcript>``),
``<out>/SOURCE`` (repo, commit, licence, the original file of every utterance, the counts).
"""
from __future__ import annotations

import argparse
import collections
import os
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from tasu.fileio import atomic_write_text
from tasu.textnorm import normalize_text

REPO = "rhasspy/dataset-voice-cathy"


def git(gitdir: Path, *args: str) -> bytes:
    return subprocess.run(["git", "--git-dir", str(gitdir), *args], check=True, capture_output=True).stdout


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mirror", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("db/arctic_cathy"))
    ap.add_argument("--n_test", type=int, default=400)
    ap.add_argument("--n_dev", type=int, default=150)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--train_out", type=Path, default=None,
                    help="also write the prompts in neither split (paired data for stage 3, not committed) "
                         "to <train_out>/{flac/,train.text,SOURCE}; dev and test stay as they are")
    args = ap.parse_args(argv)
    base = args.mirror / REPO.replace("/", "+") / "repo"
    gitdir = base / ".git" if (base / ".git").is_dir() else base
    commit = git(gitdir, "rev-parse", "HEAD").decode().strip()
    names = git(gitdir, "ls-tree", "-r", "--name-only", commit, "data/").decode().split()
    stems = collections.defaultdict(set)
    for n in names:
        m = re.fullmatch(r"data/(arctic_[ab]\d{4})_(\d+)\.(wav|txt)", n)
        if m:
            stems[(m[1], m[2])].add(m[3])
    counts = collections.Counter()
    takes = collections.defaultdict(list)   # prompt -> [(timestamp, stem)]
    for (prompt, ts), kinds in stems.items():
        if kinds != {"wav", "txt"}:
            counts["no_txt" if "wav" in kinds else "no_wav"] += 1
            continue
        takes[prompt].append((int(ts), f"data/{prompt}_{ts}"))
    prompts = sorted(takes)
    random.Random(args.seed).shuffle(prompts)
    split = {"test": sorted(prompts[: args.n_test]), "dev": sorted(prompts[args.n_test: args.n_test + args.n_dev])}
    outdir = {"test": args.out, "dev": args.out}
    if args.train_out is not None:
        split["train"] = sorted(prompts[args.n_test + args.n_dev:])
        outdir["train"] = args.train_out
    for d in set(outdir.values()):
        (d / "flac").mkdir(parents=True, exist_ok=True)
    header = [f"repo: {REPO}", f"commit: {commit}", "licence: CC0 1.0 (the repository's LICENSE)",
              "audio: 16 kHz mono 16-bit FLAC, sox -R <wav> -r 16000 -c 1 -b 16 <flac>", "utterances:"]
    source_lines = {d: list(header) for d in outdir.values()}
    for part, ps in split.items():
        lines = []
        for prompt in ps:
            ts, stem = max(takes[prompt])
            text = " ".join(git(gitdir, "show", f"{commit}:{stem}.txt").decode("utf-8").split())
            if not normalize_text(text):
                counts["empty_transcript"] += 1
                continue
            utt = f"cathy-{prompt}"
            flac = outdir[part] / "flac" / f"{utt}.flac"
            if not flac.exists():
                with tempfile.TemporaryDirectory() as td:
                    wav = Path(td) / "in.wav"
                    wav.write_bytes(git(gitdir, "show", f"{commit}:{stem}.wav"))
                    # written beside its final name, then renamed: a killed run leaves no half file
                    tmp = flac.with_name(f".{flac.name}.tmp")
                    subprocess.run(["sox", "-R", str(wav), "-r", "16000", "-c", "1", "-b", "16", "-t", "flac",
                                    str(tmp)], check=True)
                    os.replace(tmp, flac)
            lines.append(f"{utt} {text}\n")
            source_lines[outdir[part]].append(f"  {utt}: {stem}.wav ({part})")
            counts[part] += 1
        atomic_write_text(outdir[part] / f"{part}.text", "".join(lines))
    for d, lines in source_lines.items():   # each SOURCE counts its own parts and the skips
        mine = {k: v for k, v in counts.items() if k not in outdir or outdir[k] == d}
        lines.append("counts: " + ", ".join(f"{k} {v}" for k, v in sorted(mine.items())))
        atomic_write_text(d / "SOURCE", "\n".join(lines) + "\n")
    print(f"{args.out}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
