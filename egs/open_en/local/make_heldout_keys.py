#!/usr/bin/env python3
"""Hashed keys of every held-out sentence (local/text/heldout.keys) for the training-text filter.

Provenance script, run by a maintainer before local/build_text.py. Held out, never trained on:
- this recipe's test and dev speech: every CMU ARCTIC prompt (all 1 132, not only the committed
  subset: ``cmuarctic.data`` and every ``.txt`` of rhasspy/dataset-voice-cathy) and every
  Asterisk prompt transcript (Debian asterisk-core-sounds-en);
- standard evaluation text: LibriSpeech dev-clean/dev-other/test-clean/test-other, LJSpeech
  (original and normalised), TIMIT prompts (one sentence a line in ``--extra`` files; where each
  came from is in ``--extra_sources``, copied to local/text/heldout.SOURCES.tsv);
- Debian's fortunes (packages fortunes, fortunes-min), SLURP's devel and test sentences.

Only hashed keys are written (:func:`tasu.textnorm.heldout_keys`), so the filter ships without
the text of corpora whose licence does not allow it. A missing source is an error naming it.
"""
from __future__ import annotations

import argparse
import gzip
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tasu.fileio import atomic_write_text
from tasu.textnorm import heldout_keys, split_sentences


def git_show(mirror: Path, repo: str, path: str) -> tuple[str, bytes]:
    base = mirror / repo.replace("/", "+") / "repo"
    gitdir = base / ".git" if (base / ".git").is_dir() else base
    commit = subprocess.run(["git", "--git-dir", str(gitdir), "rev-parse", "HEAD"], check=True,
                            capture_output=True, text=True).stdout.strip()
    out = subprocess.run(["git", "--git-dir", str(gitdir), "show", f"{commit}:{path}"], check=True,
                         capture_output=True).stdout
    return commit, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mirror", type=Path, required=True)
    ap.add_argument("--extra", type=Path, nargs="*", default=[], help="sentence-per-line files")
    ap.add_argument("--extra_sources", type=Path, help="TSV saying where the --extra files came from")
    ap.add_argument("--out", type=Path, default=Path("local/text/heldout.keys"),
                    help="then compress it: xz -9 <out> (conf/text.yaml reads the .xz)")
    args = ap.parse_args(argv)
    sets: dict[str, list[str]] = {}
    origin: dict[str, str] = {}
    # ARCTIC: all prompts, both spellings (cmuarctic.data and the re-edited .txt files)
    repo = "rhasspy/dataset-voice-cathy"
    commit, data = git_show(args.mirror, repo, "cmuarctic.data")
    sets["cmu_arctic_prompts"] = re.findall(r'^\( \S+ "(.*)" \)$', data.decode("utf-8"), re.M)
    base = args.mirror / repo.replace("/", "+") / "repo"
    gitdir = base / ".git" if (base / ".git").is_dir() else base
    names = subprocess.run(["git", "--git-dir", str(gitdir), "ls-tree", "-r", "--name-only", commit, "data/"],
                           check=True, capture_output=True, text=True).stdout.split()
    txt = [n for n in names if n.endswith(".txt")]
    blob = subprocess.run(["git", "--git-dir", str(gitdir), "cat-file", "--batch"], input="".join(
        f"{commit}:{n}\n" for n in txt).encode(), check=True, capture_output=True).stdout
    texts, pos = [], 0
    while pos < len(blob):
        header_end = blob.index(b"\n", pos)
        size = int(blob[pos:header_end].split()[2])
        texts.append(blob[header_end + 1: header_end + 1 + size].decode("utf-8"))
        pos = header_end + 1 + size + 1
    sets["cathy_transcripts"] = texts
    origin["cmu_arctic_prompts"] = origin["cathy_transcripts"] = f"{repo}@{commit}"
    # Asterisk prompts
    ast = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
    if not ast.is_file():
        raise SystemExit(f"{ast}: missing; apt-get install asterisk-core-sounds-en")
    sets["asterisk_prompts"] = [l.split(":", 1)[1] for l in gzip.open(ast, "rt", encoding="utf-8")
                                if ":" in l and not l.startswith(";")]
    origin["asterisk_prompts"] = "debian:asterisk-core-sounds-en"
    # SLURP devel/test
    repo = "pswietojanski/slurp"
    for part in ("devel", "test"):
        commit, data = git_show(args.mirror, repo, f"dataset/slurp/{part}.jsonl")
        sets[f"slurp_{part}"] = [json.loads(l)["sentence"] for l in data.decode("utf-8").splitlines() if l.strip()]
        origin[f"slurp_{part}"] = f"{repo}@{commit}"
    # Debian fortunes
    fdir = Path("/usr/share/games/fortunes")
    files = sorted(p for p in fdir.rglob("*") if p.is_file() and p.suffix not in (".dat", ".u8") and not p.is_symlink())
    if not files:
        raise SystemExit(f"{fdir}: no fortune files; apt-get install fortunes fortunes-min")
    fort = []
    for p in files:
        for f in p.read_text(encoding="utf-8", errors="replace").split("\n%\n"):
            fort += split_sentences(f)
    sets["debian_fortunes"] = fort
    origin["debian_fortunes"] = "debian:fortunes,fortunes-min"
    for p in args.extra:
        if not p.is_file():
            raise SystemExit(f"{p}: missing")
        sets[p.stem] = [l for l in p.read_text(encoding="utf-8").splitlines() if l.strip()]
        origin[p.stem] = f"--extra {p.name} (see heldout.SOURCES.tsv)"
    keys: set[str] = set()
    header = ["# hashed held-out keys (tasu.textnorm.heldout_keys); one line a key", "# set\tsentences\torigin"]
    for name, sents in sets.items():
        for s in sents:
            keys |= heldout_keys(s)
        header.append(f"# {name}\t{len(sents)}\t{origin[name]}")
        print(f"{name}: {len(sents)} sentences")
    atomic_write_text(args.out, "\n".join(header + sorted(keys)) + "\n")
    if args.extra_sources:
        shutil.copyfile(args.extra_sources, args.out.parent / "heldout.SOURCES.tsv")
    print(f"{args.out}: {len(keys)} keys")
    return 0


if __name__ == "__main__":
    sys.exit(main())
