#!/usr/bin/env python3
"""Prepare the mini_en data dirs: text-only train, espeak-ng dev and two espeak-ng test sets
(and, per ``flite_sets``, diagnostic copies of held-out sets in flite's voices).

The training domain is one text source of a Debian package (``domain:`` in conf/data.yaml):
- ``kjv``: clauses of the King James Bible (Debian ``bible-kjv``), verses split at
  ``: ; . ? !``. A narrow domain: one register, formulaic phrasing, a small working vocabulary.
- ``wordnet`` (conf/data.yaml's choice): the usage examples of Princeton WordNet 3.0 (Debian
  ``wordnet-base``), the largest set of modern, self-contained English sentences Debian ships
  as plain text; a broad domain (every topic WordNet covers).
Either way the task is closed-vocabulary: the domain is every sentence of ``min_words`` to
``max_words`` words whose words all lie in the ``vocab_size`` most frequent words. The
in-domain test set holds sentences of that domain that are not in the training text; the
out-of-domain test set comes from another source (``ood:``): WordNet examples (modern English,
open vocabulary) for the ``kjv`` domain, verses of the Book of Proverbs for ``wordnet``.
"""
from __future__ import annotations

import argparse
import collections
import logging
import random
import re
import subprocess
import tempfile
from pathlib import Path

from tasu.config import read_config_data
from tasu.data import write_data_dir

WORD_RE = re.compile(r"[a-z]+(?:'[a-z]+)*")
ALLOWED = re.compile(r"[A-Za-z' ,.;:!?-]+")


def words(s: str) -> list[str]:
    return WORD_RE.findall(s.lower())


def wordnet_examples(wn_dir: Path) -> list[str]:
    """Every quoted usage example in the data.{noun,verb,adj,adv} glosses, deduplicated."""
    out: set[str] = set()
    for pos in ("noun", "verb", "adj", "adv"):
        path = wn_dir / f"data.{pos}"
        if not path.is_file():
            raise SystemExit(f"{path}: missing; install it with `apt-get install wordnet-base`")
        for line in path.read_text(encoding="latin-1").splitlines():
            if line.startswith("  ") or "|" not in line:
                continue
            for ex in re.findall(r'"([^"]+)"', line.split("|", 1)[1]):
                ex = " ".join(ex.split())
                if ALLOWED.fullmatch(ex):
                    out.add(ex)
    return sorted(out)


def kjv_verses(specs: list[str]) -> list[str]:
    """Verses of the King James Bible, by ``bible -f`` reference (``Pr1:1-40``; ``Ge1:1-150:200``: a whole book)."""
    out = []
    for spec in specs:
        res = subprocess.run(["bible", "-f", spec], capture_output=True, text=True)
        if res.returncode != 0:
            raise SystemExit(f"`bible -f {spec}` failed ({res.stderr.strip()}); "
                             "install it with `apt-get install bible-kjv`")
        for line in res.stdout.splitlines():
            m = re.match(r"^\S+\d+:\d+ (.*)$", line)
            if m:
                out.append(" ".join(m.group(1).split()))
    if not out:
        raise SystemExit(f"`bible -f` gave no verse for {specs}; is bible-kjv installed?")
    return out


def kjv_clauses(books: list[str]) -> list[str]:
    """The clauses of every verse of ``books`` (verses split at ``: ; . ? !``), deduplicated."""
    out = {c.strip() for v in kjv_verses([f"{b}1:1-150:200" for b in books]) for c in re.split(r"[:;.?!]", v)}
    return sorted(c for c in out if c)


def source_sentences(name: str, cfg: dict) -> list[str]:
    """The sentences of a text source named in conf/data.yaml (``domain:`` or ``ood:``)."""
    if name == "wordnet":
        return wordnet_examples(Path(cfg["wordnet_dir"]))
    if name == "kjv":
        return kjv_clauses(cfg["kjv_books"])
    if name == "proverbs":
        return kjv_verses(cfg["proverbs_spec"])
    raise SystemExit(f"unknown text source {name!r}: use kjv, wordnet or proverbs")


def normalise(s: str) -> str:
    """Training/scoring form: lower case, words only."""
    return " ".join(words(s))


def synthesize(text: str, voice: str, speed: int, pitch: int, wav: Path, sr: int) -> None:
    """Speak ``text`` into a ``sr`` Hz 16-bit mono wav: espeak-ng, or flite for ``flite:<voice>``
    (flite has no pitch knob that keeps each voice's own range: ``pitch`` is not used there;
    ``speed`` in words per minute becomes its duration stretch, 1.0 at 160 wpm)."""
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        if voice.startswith("flite:"):
            cmd = ["flite", "-voice", voice[len("flite:"):], "--setf", f"duration_stretch={160 / speed:.3f}",
                   "-t", text, "-o", tmp.name]
        else:
            cmd = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", tmp.name, text]
        subprocess.run(cmd, check=True, capture_output=True)
        subprocess.run(["sox", tmp.name, "-r", str(sr), "-c", "1", "-b", "16", str(wav)],
                       check=True, capture_output=True)


def make_speech_set(name: str, texts: list[str], cfg: dict, data: Path, wav_root: Path,
                    rng: random.Random) -> None:
    wav_dir = (wav_root / name).resolve()
    wav_dir.mkdir(parents=True, exist_ok=True)
    wav_scp, text, utt2spk = {}, {}, {}
    voices = cfg["voices"]
    for i, t in enumerate(texts):
        voice = voices[i % len(voices)]
        speed = rng.randint(*cfg["speed"])
        pitch = rng.randint(*cfg["pitch"])
        spk = re.sub(r"[^A-Za-z0-9]", "", voice)
        uid = f"{spk}-{name}-{i:04d}"
        wav = wav_dir / f"{uid}.wav"
        # a wav is reused only if it was made from the same text and settings (its .params
        # sidecar); a changed config or sentence list re-synthesises it
        params = wav.with_suffix(".params")
        key = f"{voice} {speed} {pitch} {cfg['sample_rate']} {t}\n"
        if not wav.exists() or not params.exists() or params.read_text() != key:
            synthesize(t, voice, speed, pitch, wav, cfg["sample_rate"])
            params.write_text(key)
        wav_scp[uid], text[uid], utt2spk[uid] = str(wav), normalise(t), spk
    write_data_dir(data / name, wav_scp=wav_scp, text=text, utt2spk=utt2spk)
    logging.info("%s: %d utterances, %d voices", name, len(texts), len(set(utt2spk.values())))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", type=Path, default=Path("conf/data.yaml"))
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--wav_dir", type=Path, default=Path("data/wav"))
    ap.add_argument("--n_train", type=int, default=0, help="cap on training sentences (0: all)")
    ap.add_argument("--n_dev", type=int, default=0, help="cap on dev sentences (0: config)")
    ap.add_argument("--n_test", type=int, default=0, help="cap on test utterances (0: config)")
    ap.add_argument("--n_paired", type=int, default=0, help="cap on paired training utterances (0: config)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cfg = read_config_data(args.config)  # base: resolved, as every tasu config
    rng = random.Random(cfg["seed"])

    examples = [s for s in source_sentences(cfg["domain"], cfg)
                if cfg["min_words"] <= len(words(s)) <= cfg["max_words"]]
    counts = collections.Counter(w for s in examples for w in words(s))
    vocab = {w for w, _ in counts.most_common(cfg["vocab_size"])}
    domain = sorted({normalise(s) for s in examples if all(w in vocab for w in words(s))})
    rng.shuffle(domain)
    logging.info("%s: %d sentences of %d-%d words, %d in the %d-word domain", cfg["domain"],
                 len(examples), cfg["min_words"], cfg["max_words"], len(domain), cfg["vocab_size"])

    # Held-out sets first; their words must all occur in the training text (closed vocabulary).
    n_held = cfg["n_dev"] + cfg["n_test_in"]
    held, train = domain[:n_held * 2], domain[n_held * 2:]
    train_words = collections.Counter(w for s in train for w in words(s))
    covered = [s for s in held if all(train_words[w] for w in words(s))]
    train += [s for s in held if s not in covered[:n_held]]
    dev, test_in = covered[:cfg["n_dev"]], covered[cfg["n_dev"]:n_held]
    train = sorted(set(train) - set(dev) - set(test_in))
    if args.n_train:
        train = train[:args.n_train]
    if args.n_dev:
        dev = dev[:args.n_dev]

    ood = []
    seen = set(domain)
    for v in source_sentences(cfg["ood"], cfg):
        n = normalise(v)
        if cfg["min_words"] <= len(n.split()) <= cfg["ood_max_words"] and n not in seen:
            ood.append(v)
            seen.add(n)
    rng.shuffle(ood)
    n_in = args.n_test or cfg["n_test_in"]
    n_ood = args.n_test or cfg["n_test_ood"]
    if len(ood) < n_ood:
        raise SystemExit(f"only {len(ood)} out-of-domain sentences for {n_ood} requested")

    ids = [f"train-{i:05d}" for i in range(len(train))]
    write_data_dir(args.data / "train", text=dict(zip(ids, train)))
    logging.info("train: %d sentences (text only)", len(train))
    make_speech_set("test_in", test_in[:n_in], cfg, args.data, args.wav_dir, rng)
    make_speech_set("test_ood", ood[:n_ood], cfg, args.data, args.wav_dir, rng)
    # dev: its text drives the dev loss; its speech (same voices, own draws) is the held-out
    # set on which decoding and simulation settings are chosen, never the test sets
    make_speech_set("dev", dev, cfg, args.data, args.wav_dir, random.Random(cfg["seed"] + 1))
    # train_paired (stage 3): training sentences, other voices; its own generator, so the
    # sets above do not change when it is resized
    prng = random.Random(cfg["seed"] + 2)
    paired = prng.sample(train, min(args.n_paired or cfg["n_paired"], len(train)))
    make_speech_set("train_paired", paired, {**cfg, "voices": cfg["paired_voices"]}, args.data, args.wav_dir, prng)
    # the same test sentences in another synthesiser's voices (flite): a diagnostic set on
    # which the encoder is closer to right; own generator, so the sets above do not change
    frng = random.Random(cfg["seed"] + 3)
    held_out = {"test_in": test_in[:n_in], "test_ood": ood[:n_ood], "dev": dev}
    for src, name in (cfg.get("flite_sets") or {}).items():
        if src not in held_out or not cfg.get("flite_voices"):
            raise SystemExit(f"{args.config}: flite_sets takes {sorted(held_out)} as sources (got {src!r}) "
                             "and needs flite_voices")
        make_speech_set(name, held_out[src], {**cfg, "voices": cfg["flite_voices"]}, args.data, args.wav_dir, frng)
    (args.data / "vocab.txt").write_text("".join(f"{w}\n" for w in sorted(train_words)))


if __name__ == "__main__":
    main()
