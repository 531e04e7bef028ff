#!/usr/bin/env python3
"""Build open_en's training text from its pinned sources (conf/text.yaml) into local/text/.

Run once by a maintainer (the result ships in the repo, so stage 0 runs offline):

    python3 local/build_text.py --config conf/text.yaml --mirror /work/.mirror --out local/text

``--mirror`` holds the source repositories as the search tool's ``fetch`` leaves them
(``<mirror>/<owner>+<name>/repo``, a bare or normal git dir); files are read with
``git show <commit>:<path>``, so the text is the same whatever the mirror's newest commit is.

Per source: read (formats below), cut into sentences, make each speakable
(:func:`tasu.textnorm.clean_sentence`: numbers read out, markup removed, 3-35 words, only
letters and ``' ,.;:!?-``), deduplicate, sample ``max_sentences`` if set. Then over the pool:
drop sentences holding a word seen fewer than ``min_word_count`` times, drop every sentence that
hits the held-out filter (:class:`tasu.textnorm.HeldoutFilter`: test sets, LibriSpeech dev/test,
LJSpeech, TIMIT, Debian's fortunes...; keys in ``heldout``), deduplicate across sources, draw
``n_dev`` validation sentences. Every drop is counted by reason, per source, in
``<out>/SOURCES.tsv`` and the log. Outputs (written atomically, xz-compressed):
``train.text.xz`` and ``dev.text.xz`` (Kaldi ``text``: ``<source>-<n> <sentence>``),
``SOURCES.tsv``, ``build.log``. The lexicon is a separate step (local/build_lexicon.sh).

Formats: ``gutenberg`` (a Project Gutenberg file: between the START/END markers, paragraphs at
blank lines), ``paragraphs`` (zip members, a paragraph per line or per blank-line block),
``lines`` (one sentence a line), ``brown`` (nltk's tagged Brown corpus), ``tokens`` (tokenised,
lower-cased lines: movie_reviews), ``wordnet`` (the quoted usage examples of Debian's
wordnet-base), ``kjv`` (verses of Debian's bible-kjv, split into clauses).
"""
from __future__ import annotations

import argparse
import collections
import fnmatch
import io
import logging
import lzma
import random
import re
import subprocess
import sys
import zipfile
from pathlib import Path

from tasu.config import read_config_data
from tasu.fileio import atomic_write_bytes, atomic_write_text
from tasu.textnorm import HeldoutFilter, clean_sentence, normalize_text, split_sentences

log = logging.getLogger("build_text")


class SourceError(Exception):
    """A source that cannot be read; the message names it."""


def git_file(mirror: Path, repo: str, commit: str, path: str) -> bytes:
    base = mirror / repo.replace("/", "+") / "repo"
    gitdir = base / ".git" if (base / ".git").is_dir() else base
    if not gitdir.is_dir():
        raise SourceError(f"{repo}: no mirror at {base} (fetch github:{repo} first)")
    res = subprocess.run(["git", "--git-dir", str(gitdir), "show", f"{commit}:{path}"], capture_output=True)
    if res.returncode != 0:
        raise SourceError(f"{repo}@{commit[:10]}:{path}: {res.stderr.decode(errors='replace').strip()}")
    if not res.stdout:
        raise SourceError(f"{repo}@{commit[:10]}:{path}: empty file (not in the mirror?)")
    return res.stdout


def decode(data: bytes, where: str, encoding: str = "utf-8-sig") -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise SourceError(f"{where}:{line}: not valid UTF-8 (byte 0x{data[e.start]:02x})") from None


def zip_members(data: bytes, pattern: str, where: str, encoding: str = "utf-8-sig") -> list[tuple[str, str]]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as e:
        raise SourceError(f"{where}: not a zip file ({e})") from None
    names = sorted(n for n in zf.namelist() if fnmatch.fnmatch(n, pattern))
    if not names:
        raise SourceError(f"{where}: no member matches {pattern!r}")
    return [(f"{where}!{n}", decode(zf.read(n), f"{where}!{n}", encoding)) for n in names]


def gutenberg_paragraphs(text: str, where: str) -> list[str]:
    lines = text.splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith("*** START OF") or l.startswith("***START OF")), None)
    end = next((i for i, l in enumerate(lines) if l.startswith("*** END OF") or l.startswith("***END OF")
                or l.startswith("End of the Project Gutenberg") or l.startswith("End of Project Gutenberg")), None)
    if start is None or end is None or end <= start:
        raise SourceError(f"{where}: no Project Gutenberg START/END markers")
    return blocks(lines[start + 1:end])


def blocks(lines: list[str]) -> list[str]:
    out, cur = [], []
    for line in lines:
        if line.strip():
            cur.append(line.strip())
        elif cur:
            out.append(" ".join(cur))
            cur = []
    if cur:
        out.append(" ".join(cur))
    return out


_DETOK = [(re.compile(r"\s+([,.;:!?%)\]])"), r"\1"), (re.compile(r"([(\[$])\s+"), r"\1"),
          (re.compile(r"\s+(n't|'s|'re|'ve|'ll|'d|'m)\b", re.I), r"\1"), (re.compile(r"\s*(``|'')\s*"), " ")]


def detokenize(tokens: list[str]) -> str:
    s = " ".join(tokens)
    for pat, rep in _DETOK:
        s = pat.sub(rep, s)
    return s


def read_source(src: dict, mirror: Path) -> list[str]:
    """Raw sentences (before cleaning) of one source."""
    fmt = src["format"]
    if fmt == "wordnet":
        out = []
        for pos in ("noun", "verb", "adj", "adv"):
            path = Path(src["path"]) / f"data.{pos}"
            if not path.is_file():
                raise SourceError(f"{path}: missing (apt-get install {src.get('package', 'wordnet-base')})")
            for line in path.read_text(encoding="latin-1").splitlines():
                if not line.startswith("  ") and "|" in line:
                    out += re.findall(r'"([^"]+)"', line.split("|", 1)[1])
        return out
    if fmt == "kjv":
        out = []
        for book in src["books"]:
            res = subprocess.run(["bible", "-f", f"{book}1:1-150:200"], capture_output=True, text=True)
            verses = [m.group(1) for m in (re.match(r"^\S+\d+:\d+ (.*)$", l) for l in res.stdout.splitlines()) if m]
            if res.returncode != 0 or not verses:
                raise SourceError(f"`bible -f {book}1:1-150:200` gave no verse ({res.stderr.strip()}); "
                                  "apt-get install bible-kjv")
            out += [c.strip() for v in verses for c in re.split(r"[:;.?!]", v) if c.strip()]
        return out
    where = f"{src['repo']}@{src['commit'][:10]}:{src['path']}"
    data = git_file(mirror, src["repo"], src["commit"], src["path"])
    enc = src.get("encoding", "utf-8-sig")   # the declared encoding of a source that is not UTF-8
    if fmt == "gutenberg":
        return [s for p in gutenberg_paragraphs(decode(data, where, enc), where) for s in split_sentences(p)]
    if fmt == "lines":
        texts = (zip_members(data, src["members"], where, enc) if "members" in src
                 else [(where, decode(data, where, enc))])
        return [l for _, t in texts for l in t.splitlines() if l.strip()]
    members = zip_members(data, src["members"], where, enc)
    strip = re.compile(src["strip"]) if src.get("strip") else None
    out = []
    for _, text in members:
        if fmt == "paragraphs":
            paras = [l for l in text.splitlines() if l.strip()] if src.get("paragraph") == "line" \
                else blocks(text.splitlines())
            for p in paras:
                out += split_sentences(strip.sub("", p) if strip else p)
        elif fmt == "brown":
            for line in text.splitlines():
                toks = [t.rsplit("/", 1)[0] for t in line.split() if "/" in t]
                if toks:
                    out.append(detokenize(toks))
        elif fmt == "tokens":
            out += [detokenize(l.split()) for l in text.splitlines() if l.strip()]
        else:
            raise SourceError(f"{src['name']}: unknown format {fmt!r}")
    return out


def build(cfg: dict, mirror: Path, out: Path, heldout: HeldoutFilter) -> int:
    rng = random.Random(cfg["seed"])
    pool: list[tuple[str, str]] = []          # (source, sentence)
    stats: dict[str, collections.Counter] = {}
    seen_names = set()
    for src in cfg["sources"]:
        name = src["name"]
        if name in seen_names or not re.fullmatch(r"[a-z0-9_]+", name):
            raise SourceError(f"source name {name!r}: duplicate or not [a-z0-9_]+")
        seen_names.add(name)
        st = stats[name] = collections.Counter()
        raw = read_source(src, mirror)
        st["read"] = len(raw)
        kept, norm_seen = [], set()
        for r in raw:
            s, why = clean_sentence(r, cfg["min_words"], cfg["max_words"])
            if s is None:
                st[f"drop_{why}"] += 1
                continue
            k = normalize_text(s)
            if k in norm_seen:
                st["drop_duplicate"] += 1
                continue
            norm_seen.add(k)
            kept.append(s)
        cap = src.get("max_sentences")
        if cap and len(kept) > cap:
            st["drop_sampled_out"] = len(kept) - cap
            kept = rng.sample(kept, cap)
        pool += [(name, s) for s in kept]
        log.info("%s: %d read, %d clean (%s)", name, len(raw), len(kept),
                 ", ".join(f"{k} {v}" for k, v in sorted(st.items()) if k.startswith("drop")))
    counts = collections.Counter(w for _, s in pool for w in normalize_text(s).split())
    rare = {w for w, c in counts.items() if c < cfg["min_word_count"]}
    final, seen = [], set()
    for name, s in pool:
        words = normalize_text(s).split()
        key = " ".join(words)
        if any(w in rare for w in words):
            stats[name]["drop_rare_word"] += 1
        elif key in seen:
            stats[name]["drop_duplicate_across_sources"] += 1
        elif heldout.hits(s):
            stats[name]["drop_heldout"] += 1
        else:
            seen.add(key)
            final.append((name, s))
    rng.shuffle(final)
    per: dict[str, int] = collections.Counter()
    ided = []
    for name, s in final:                     # ids numbered per source, in the shuffled order
        per[name] += 1
        ided.append((name, f"{name}-{per[name]:07d}", s))
    dev, train = ided[: cfg["n_dev"]], ided[cfg["n_dev"]:]

    def table(items: list[tuple[str, str, str]]) -> bytes:
        lines = sorted(f"{uid} {s}\n" for _, uid, s in items)
        return lzma.compress("".join(lines).encode("utf-8"), preset=9 | lzma.PRESET_EXTREME)

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "train.text.xz", table(train))
    atomic_write_bytes(out / "dev.text.xz", table(dev))
    for name, _, _ in train:
        stats[name]["train"] += 1
    for name, _, _ in dev:
        stats[name]["dev"] += 1
    cols = ["read", "train", "dev", "drop_chars", "drop_caps", "drop_short", "drop_long", "drop_empty",
            "drop_duplicate", "drop_sampled_out", "drop_rare_word", "drop_duplicate_across_sources", "drop_heldout"]
    rows = ["\t".join(["name", "origin", "commit_or_package", "path"] + cols)]
    for src in cfg["sources"]:
        st = stats[src["name"]]
        origin = src.get("repo", f"debian:{src.get('package', '')}")
        rows.append("\t".join([src["name"], origin, src.get("commit", package_version(src.get("package"))),
                               src.get("path", " ".join(src.get("books", [])))] + [str(st[c]) for c in cols]))
    atomic_write_text(out / "SOURCES.tsv", "\n".join(rows) + "\n")
    vocab = {w for _, _, s in train for w in normalize_text(s).split()}
    tot = collections.Counter()
    for st in stats.values():
        tot.update(st)
    nw = [len(normalize_text(s).split()) for _, _, s in train]
    log.info("pool: %d sentences; train %d (%d words, vocabulary %d, %.1f words/sentence, max %d), dev %d",
             len(pool), len(train), sum(nw), len(vocab), sum(nw) / max(1, len(nw)), max(nw, default=0), len(dev))
    log.info("dropped: %s", ", ".join(f"{k} {v}" for k, v in sorted(tot.items()) if k.startswith("drop")))
    return 0


def package_version(pkg: str | None) -> str:
    if not pkg:
        return ""
    res = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
    return f"{pkg}={res.stdout.strip()}" if res.returncode == 0 else pkg


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=Path("conf/text.yaml"))
    ap.add_argument("--mirror", type=Path, required=True, help="dir of fetched repos (<owner>+<name>/repo)")
    ap.add_argument("--out", type=Path, default=Path("local/text"))
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s",
                        handlers=[logging.StreamHandler(), logging.FileHandler(args.out / "build.log", mode="w")])
    cfg = read_config_data(args.config)  # base: resolved, as every tasu config
    keys_path = Path(cfg["heldout"])
    if not keys_path.is_file():
        log.error("%s: missing; make it with local/make_heldout_keys.py", keys_path)
        return 1
    raw = lzma.decompress(keys_path.read_bytes()) if keys_path.suffix == ".xz" else keys_path.read_bytes()
    heldout = HeldoutFilter(l.strip() for l in raw.decode("utf-8").splitlines() if l.strip() and not l.startswith("#"))
    log.info("held-out filter: %d keys from %s", len(heldout.keys), keys_path)
    try:
        return build(cfg, args.mirror, args.out, heldout)
    except SourceError as e:
        log.error("%s", e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
