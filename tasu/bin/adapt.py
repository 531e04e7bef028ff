#!/usr/bin/env python3
"""Adapt a TASU model to a domain from its text alone (``tasu-adapt``).

    tasu-adapt --text domain.txt --out my_domain.zip                 # the shipped model, adapted
    tasu-adapt --model m.zip --text domain.txt --words names.txt --out m_domain.zip --max_minutes 10

The text is all a user needs: TASU trains its projector and adapters on posteriors simulated
from text, so a domain's sentences (an IVR menu, a product catalogue, a clinic's letters) teach
the model that domain's words and phrasing without one recording. Steps, in ``--workdir``
(default ``<out>.work``); each is skipped when its output is there, so a killed run re-run with
the same arguments resumes (training from its newest checkpoint), and a work dir holding a run
of other inputs is refused:

1. **text**: ``--text`` (one sentence a line, UTF-8, any size) cleaned as training text is
   (numbers and symbols read out; a line in capitals kept in lower case; a sentence with
   characters nobody says is a counted skip, listed in ``skipped.txt`` with its ``file:line``);
   ``--words`` (one word or phrase a line) adds each entry as a sentence of its own,
   ``--word_repeats`` times.
2. **lexicon**: the model's packed lexicon plus hama's G2P of every word new to it (cached there);
   a word G2P cannot spell is a counted skip listed in ``g2p_skipped.txt``.
3. **training text**: the domain sentences mixed with a replay sample of the model's own training
   text (``--replay_ratio`` replay sentences per domain sentence; from the zip's
   ``replay.txt.xz`` or ``--replay_text``), so general speech is not forgotten; their units.
4. **training**: the model's training config continued from its weights (``--init``): the
   model's simulation, word lists drawn from the domain's words, ``--steps`` (default: ``--epochs``
   over the mixed text) or until ``--max_minutes``; a progress bar with ETA on stderr.
5. **pack**: the new weights (``--interpolate A``, default 0.5: A x them + (1 - A) x the
   original's, weight-space ensembling (WiSE-FT), which keeps more of general speech for less of
   the gain), the lexicon with the new words, the model's decoding config and replay sample, and
   ``ADAPT.md`` (what it was adapted on, with which command) -> ``--out``,
   written whole or not at all. ``Speech2Text.from_pretrained(out)`` and ``tasu-infer --model out``
   use it like any model.

With ``--paired_data`` (a Kaldi data dir of the domain's audio with its ``text``), stage-3
fine-tuning follows the text step (``--paired_steps``, half of each batch paired).
"""
from __future__ import annotations

import argparse
import io
import json
import logging
import lzma
import random
import shlex
import shutil
import sys
import time
from pathlib import Path

log = logging.getLogger("tasu.adapt")


class AdaptError(ValueError):
    """Input that cannot be used; the message names the file (and line)."""


def sha256(path: Path) -> str:
    from tasu.zoo import sha256_file

    return sha256_file(path)


def read_lines(path: Path, what: str) -> list[tuple[int, str]]:
    """``(line number, stripped line)`` of a UTF-8 text file (.xz too), blank lines left out."""
    if not path.is_file():
        raise AdaptError(f"{path}: {what} file not found")
    raw = lzma.open(path).read() if path.suffix == ".xz" else path.read_bytes()
    out = []
    for n, line in enumerate(raw.split(b"\n"), 1):
        try:
            text = line.decode("utf-8").strip()
        except UnicodeDecodeError as e:
            raise AdaptError(f"{path}:{n}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
        if text:
            out.append((n, text))
    if not out:
        raise AdaptError(f"{path}: the {what} file is empty")
    return out


def domain_sentences(text: Path | None, words: Path | None, word_repeats: int
                     ) -> tuple[list[str], list[str], list[str]]:
    """``(sentences, listed phrases, skipped lines)``: the text cleaned as training text is, then each
    listed word or phrase ``word_repeats`` times (skips: ``file:line reason: text``)."""
    from tasu.textnorm import clean_sentence

    sentences, phrases, skipped = [], [], []
    for path, what in ((text, "domain text"), (words, "word list")):
        if path is None:
            continue
        for n, line in read_lines(path, what):
            if what == "word list":
                line = line.split("\t")[0]
            clean, why = clean_sentence(line)
            if why == "caps":  # a heading in a book, but in a domain's text an acronym or a name: "SIP", "DAHDI"
                clean, why = clean_sentence(line.lower())
            if clean is None:
                skipped.append(f"{path}:{n} {why}: {line}")
            elif what == "word list":
                phrases.append(clean.rstrip(".!?"))
            else:
                sentences.append(clean)
    if not sentences and not phrases:
        raise AdaptError(f"{text or words}: no usable sentence ({len(skipped)} skipped; see the reasons in the log)")
    return sentences + [p for p in phrases for _ in range(word_repeats)], phrases, skipped


def replay_sample(path: Path, n: int, seed: int, avoid: set[str]) -> list[str]:
    """``n`` sentences drawn (seeded) from a training text sample, none of them a domain sentence."""
    from tasu.textnorm import normalize_text

    pool = [t for _, t in read_lines(path, "replay text") if normalize_text(t) not in avoid]
    rng = random.Random(seed)
    if n >= len(pool):
        return pool
    return rng.sample(pool, n)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="tasu-adapt", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="packed zip, model dir or exp dir to adapt (default: the shipped model)")
    ap.add_argument("--text", type=Path, help="the domain's text: one sentence a line (UTF-8; .xz too)")
    ap.add_argument("--words", type=Path, help="words or phrases to learn, one a line (a tab and more is ignored)")
    ap.add_argument("--out", type=Path, required=True, help="the adapted model: a .zip")
    ap.add_argument("--workdir", type=Path, help="where the steps write (default: <out>.work); a re-run resumes")
    ap.add_argument("--lexicon", type=Path,
                    help="the model's training lexicon (default: the one packed with it, or an exp dir's lexicon.txt)")
    ap.add_argument("--replay_text", type=Path,
                    help="sentences of the model's training text to mix in (default: the zip's replay.txt.xz)")
    ap.add_argument("--replay_ratio", type=float, default=1.0,
                    help="replay sentences per domain sentence (default 1; 0: the domain text alone)")
    ap.add_argument("--word_repeats", type=int, default=5, help="times each --words entry is a sentence (default 5)")
    ap.add_argument("--steps", type=int, help="training steps (default: --epochs over the mixed text)")
    ap.add_argument("--epochs", type=float, default=1.0, help="passes over the mixed text when --steps is not given")
    ap.add_argument("--max_minutes", type=float, default=15.0,
                    help="training time budget (default 15; 0: none): the model of the last step is packed")
    ap.add_argument("--lr", type=float, help="learning rate (default: the model's own)")
    ap.add_argument("--grad_accum", type=int, default=2,
                    help="each step's batch goes through the LLM in this many parts: the same update, and "
                         "1/N of a step's activations in memory (default 2: tasu-adapt stays under 4 GB; 1: whole)")
    ap.add_argument("--interpolate", type=float, default=0.5, metavar="A",
                    help="the packed weights are A x the adapted ones + (1 - A) x the original's (weight-space "
                         "ensembling, WiSE-FT): less forgetting for less gain (default 0.5; 1: the adapted ones)")
    ap.add_argument("--seed", type=int, default=0, help="replay sample and batch order (default 0)")
    ap.add_argument("--paired_data", type=Path, help="Kaldi data dir of the domain's audio + text: stage-3 "
                    "fine-tuning after the text step")
    ap.add_argument("--paired_steps", type=int, default=200, help="stage-3 steps (default 200)")
    ap.add_argument("--g2p_nj", type=int, default=2, help="G2P worker processes for new words (default 2)")
    ap.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                    help="more training config overrides (repeatable), e.g. word_lists.share=0.5")
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    command = "tasu-adapt " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    if args.text is None and args.words is None:
        ap.error("give --text (the domain's sentences) and/or --words (a word or phrase list)")
    if args.out.suffix != ".zip":
        ap.error(f"--out {args.out}: adapted models are packed .zip files")
    if args.replay_ratio < 0 or args.word_repeats < 1 or (args.steps is not None and args.steps < 1):
        ap.error("--replay_ratio must be >= 0, --word_repeats and --steps >= 1")
    if not 0 < args.interpolate <= 1:
        ap.error(f"--interpolate {args.interpolate:g}: give a share of the adapted weights in (0, 1]")
    try:
        return adapt(args, command)
    except AdaptError as e:
        log.error("%s", e)
        return 1


def adapt(args: argparse.Namespace, command: str) -> int:
    import shutil

    from tasu.config import load_config
    from tasu.data import write_data_dir
    from tasu.fileio import atomic_write_text
    from tasu.textnorm import normalize_text
    from tasu.zoo import ZooError, unpack

    t_start = time.time()
    work = args.workdir or args.out.with_suffix(".work")
    try:
        src = unpack(args.model)
    except (ZooError, OSError) as e:
        raise AdaptError(f"--model {args.model or 'the shipped model'}: {e}") from None
    cfg = load_config(src.train_config)
    if cfg.encoder.split(":")[0] != "hama":
        raise AdaptError(f"{src.train_config}: encoder {cfg.encoder!r}: tasu-adapt turns text into hama's units "
                         "(its G2P); other encoders are not supported yet")
    replay = args.replay_text or src.replay_file
    model_lexicon = args.lexicon or src.lexicon_file
    if args.lexicon is not None and not args.lexicon.is_file():
        raise AdaptError(f"--lexicon {args.lexicon}: no such file")
    if args.replay_ratio > 0 and replay is None:
        raise AdaptError(f"{args.model or 'the shipped model'} carries no replay text (replay.txt.xz): give "
                         "--replay_text (sentences of its training text), or --replay_ratio 0 to train on the "
                         "domain alone (general speech may suffer)")
    # 1. the domain's sentences (read, and refused with file:line, before anything is written)
    sentences, phrases, skipped = domain_sentences(args.text, args.words, args.word_repeats)
    # the inputs this work dir belongs to: a re-run with others would mix two runs' files
    inputs = {"model": sha256(Path(src.model_file)), "text": sha256(args.text) if args.text else None,
              "words": sha256(args.words) if args.words else None,
              "replay": sha256(Path(replay)) if replay and args.replay_ratio > 0 else None,
              "replay_ratio": args.replay_ratio, "word_repeats": args.word_repeats, "seed": args.seed,
              "steps": args.steps, "epochs": args.epochs, "lr": args.lr, "override": args.override,
              **({"grad_accum": args.grad_accum} if args.grad_accum != 1 else {}),
              **({"lexicon": sha256(args.lexicon)} if args.lexicon else {})}
    stamp = work / "inputs.json"
    if stamp.is_file() and json.loads(stamp.read_text()) != inputs:
        raise AdaptError(f"{work}: holds a run of other inputs or options ({stamp}); remove it or give "
                         "another --workdir")
    work.mkdir(parents=True, exist_ok=True)
    atomic_write_text(stamp, json.dumps(inputs, indent=1))
    atomic_write_text(work / "skipped.txt", "".join(s + "\n" for s in skipped))
    if skipped:
        log.warning("%d lines skipped (characters nobody says, no lower-case letter...): listed in %s",
                    len(skipped), work / "skipped.txt")
    n_domain = len(sentences)
    # 2. the lexicon: the model's + the G2P of new words
    lexicon = work / "lexicon.txt"
    if not lexicon.is_file():
        if model_lexicon is not None:
            shutil.copyfile(model_lexicon, work / "lexicon.txt.tmp")
            (work / "lexicon.txt.tmp").replace(lexicon)
        else:
            log.warning("%s carries no lexicon and no --lexicon was given: every word goes through G2P, and the "
                        "adapted model's lexicon holds the domain's words alone", args.model)
    from tasu.encoders.hama import HamaEncoder
    from tasu.g2p import HamaG2P, read_lexicon
    from tasu.units import text_words

    known = set(read_lexicon(lexicon)[0]) if lexicon.is_file() else set()
    from tasu.units import UnitInventory

    inv = HamaEncoder().inventory
    if UnitInventory.from_file(src.units_file).units != inv.units:
        raise AdaptError(f"{src.units_file}: the model's units differ from hama's ({inv.size}): the text would be "
                         "turned into units the model was not trained on")
    words = sorted({w for s in sentences for w in text_words(s)})
    new = [w for w in words if w not in known]
    log.info("%d domain sentences (%d listed phrases), %d distinct words, %d new to the lexicon: G2P",
             n_domain, len(phrases), len(words), len(new))
    g2p = HamaG2P(inv, lexicon)
    g2p.add_words(new, progress=True, nj=args.g2p_nj)
    unspelt = [w for w in new if not g2p.lexicon.get(w)]
    atomic_write_text(work / "new_words.txt", "".join(f"{w}\t{' '.join(g2p.lexicon[w])}\n" for w in new
                                                      if g2p.lexicon.get(w)))
    atomic_write_text(work / "g2p_skipped.txt", "".join(w + "\n" for w in unspelt))
    if unspelt:
        log.warning("%d words G2P cannot spell (no unit of the model): listed in %s, e.g. %r", len(unspelt),
                    work / "g2p_skipped.txt", unspelt[0])
    # the word lists of training draw from the domain's own words
    domain_lex = work / "domain_lexicon.txt"
    atomic_write_text(domain_lex, "".join(f"{w}\t{' '.join(g2p.lexicon[w])}\t{' '.join(g2p.letters.get(w, ()))}\n"
                                          for w in words if g2p.lexicon.get(w)))
    # 3. the training text: domain + replay, and its units
    avoid = {normalize_text(s) for s in sentences}
    n_replay = round(args.replay_ratio * n_domain)
    mixed = [("adapt", s) for s in sentences]
    if n_replay:
        mixed += [("replay", s) for s in replay_sample(Path(replay), n_replay, args.seed, avoid)]
    text = {f"{kind}-{i:07d}": s for i, (kind, s) in enumerate(mixed)}
    data = work / "data" / "train"
    if not (data / "text").is_file():  # the inputs stamp above keeps it the text of these inputs
        write_data_dir(data, text=text)
    units = work / "dump" / "train" / "units"
    if not units.is_file():
        from tasu.bin import make_units

        if make_units.main(["--data", str(data), "--out", str(units.parent), "--lexicon", str(lexicon),
                            "--nj", str(args.g2p_nj)]) != 0:
            raise AdaptError(f"{data}: units failed (see the log above)")
    # 4. training, from the model's weights
    expdir = work / "exp" / f"{Path(src.model_file).parent.name}_adapt"
    batch = cfg.optim.batch_size
    steps = args.steps or max(20, round(args.epochs * len(text) / batch))
    overrides = [f"optim.max_steps={steps}", f"optim.warmup_steps={min(cfg.optim.warmup_steps, steps // 5)}",
                 f"seed={args.seed + 1000 + cfg.seed}", f"max_minutes={args.max_minutes}",
                 f"save_interval={min(cfg.save_interval, 50)}", f"init={src.root}"]
    if args.lr is not None:
        overrides += [f"optim.lr={args.lr}", f"optim.projector_lr={args.lr}"]
    if args.grad_accum != 1:
        overrides.append(f"optim.grad_accum={args.grad_accum}")
    overrides += args.override
    if not (expdir / "model.pt").is_file() or _resumable(expdir, steps):
        log.info("training %d steps of %d sentences (%d domain, %d replay)%s -> %s", steps, batch, n_domain,
                 len(text) - n_domain, f", at most {args.max_minutes:g} min" if args.max_minutes else "", expdir)
        argv = ["--config", str(src.train_config), "--train_data", str(data), "--train_units", str(units),
                "--lexicon", str(domain_lex), "--expdir", str(expdir)]
        if run_train(argv + [x for o in overrides for x in ("--override", o)]) != 0:
            raise AdaptError(f"{expdir}: training failed (see {expdir / 'train.log'})")
    model_dir = expdir
    if args.paired_data is not None:
        model_dir = paired_step(args, src, data, units, domain_lex, expdir, overrides)
    packed_dir = model_dir if args.interpolate >= 1 else interpolate_step(args.interpolate, src, model_dir)
    # 5. pack, with the card
    history = json.loads((model_dir / "history.json").read_text()) if (model_dir / "history.json").is_file() else []
    card = work / "ADAPT.md"
    atomic_write_text(card, adapt_card(args, src, command, n_domain, len(phrases), len(skipped), words, new, unspelt,
                                       len(text) - n_domain, steps, history, time.time() - t_start, model_dir))
    from tasu.zoo import pack

    extra = [card, work / "new_words.txt"]
    packed_replay = None
    if replay is not None:  # the adapted model carries a replay sample too, for a later adaptation
        packed_replay = Path(replay)
        if packed_replay.suffix != ".xz":
            packed_replay = work / "replay.txt.xz"
            if not packed_replay.is_file():
                from tasu.fileio import atomic_write_bytes

                atomic_write_bytes(packed_replay, lzma.compress(Path(replay).read_bytes()))
    out = pack(packed_dir, args.out, decode_config=src.decode_config, lexicon=lexicon, extra=extra,
               dtype=str(src.meta.get("weights_dtype", "float32")) if src.meta else "float32", replay=packed_replay)
    log.info("adapted model: %s (%.1f MB; %d new words; %.1f min in all; card: %s)", out, out.stat().st_size / 1e6,
             len(new) - len(unspelt), (time.time() - t_start) / 60, card)
    return 0


def run_train(argv: list[str]) -> int:
    """``tasu.bin.train`` in this process, with its own log handlers (stderr and the exp dir's
    train.log) in place of this command's while it runs."""
    from tasu.bin import train

    root = logging.getLogger()
    mine = list(root.handlers)
    for h in mine:
        root.removeHandler(h)
    try:
        return train.main(argv)
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
            h.close()
        for h in mine:
            root.addHandler(h)
        # the trained model is gone, but glibc keeps the heap its steps grew: hand it back before
        # the weights are mixed and packed (else those come on top: 4.22 GB at packing, 3.88 in training)
        import gc

        from tasu.runtime import release_memory

        gc.collect()
        release_memory()


def _resumable(expdir: Path, steps: int) -> bool:
    """A finished run of fewer steps than asked (its time budget ran out): resume it."""
    cks = sorted((expdir / "checkpoints").glob("step*.pt"))
    return bool(cks) and int(cks[-1].stem[4:]) < steps


def paired_step(args: argparse.Namespace, src, data: Path, units: Path, domain_lex: Path, text_exp: Path,
                overrides: list[str]) -> Path:
    """Stage-3 fine-tuning on ``--paired_data`` from the text-adapted model: its PSD posteriors
    (the model's decoding threshold), half of each batch paired, ``--paired_steps`` steps."""
    from tasu.bin import dump_posteriors

    work = text_exp.parent.parent
    feats = work / "dump" / "paired" / "feats.scp"
    if not feats.is_file():
        argv = ["--data", str(args.paired_data), "--out", str(feats.parent)]
        if src.decode_config is not None:
            argv += ["--config", str(src.decode_config)]
        if dump_posteriors.main(argv) != 0:
            raise AdaptError(f"{args.paired_data}: posteriors failed (see the log above)")
    expdir = text_exp.parent / (text_exp.name + "_paired")
    if not (expdir / "model.pt").is_file() or _resumable(expdir, args.paired_steps):
        over = [o for o in overrides if not o.startswith(("optim.max_steps=", "init="))]
        over += [f"optim.max_steps={args.paired_steps}", "paired_ratio=0.5", f"init={text_exp}"]
        argv = ["--config", str(src.train_config), "--train_data", str(data), "--train_units", str(units),
                "--lexicon", str(domain_lex), "--paired_data", str(args.paired_data), "--paired_feats", str(feats),
                "--expdir", str(expdir)]
        if run_train(argv + [x for o in over for x in ("--override", o)]) != 0:
            raise AdaptError(f"{expdir}: paired fine-tuning failed (see {expdir / 'train.log'})")
    return expdir


def interpolate_step(share: float, src, trained: Path) -> Path:
    """``<trained>_mix<share>``: an exp dir whose weights are ``share`` x the adapted ones + (1 -
    ``share``) x the original model's (WiSE-FT, Wortsman et al. 2022), float32."""
    import torch

    from tasu.fileio import atomic_write_bytes
    from tasu.zoo import read_weights

    out = trained.parent / f"{trained.name}_mix{share:g}"
    if not (out / "model.pt").is_file():
        adapted = read_weights(trained / "model.pt")
        original = _same_names(read_weights(src.model_file), adapted)
        missing = sorted(k for k, v in adapted.items() if k not in original or original[k].shape != v.shape)
        if missing:
            raise AdaptError(f"{src.model_file}: no tensor {missing[0]} of the adapted model's shape to interpolate "
                             "with (--interpolate)")
        state = {k: (share * v.double() + (1 - share) * original[k].double()).float() if v.is_floating_point() else v
                 for k, v in adapted.items()}
        out.mkdir(parents=True, exist_ok=True)
        for f in ("config.yaml", "units.txt", "history.json"):
            if (trained / f).is_file():
                shutil.copyfile(trained / f, out / f)
        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_bytes(out / "model.pt", buf.getvalue())
        log.info("weights: %g x %s + %g x %s -> %s", share, trained / "model.pt", 1 - share, src.model_file, out)
    return out


def _same_names(original: dict, adapted: dict) -> dict:
    """``original``'s tensors under ``adapted``'s names: a projector layer saved before it became a
    unit table (``<layer>.weight [H, V]``) is that table transposed (``<layer>.table [V, H]``),
    as loading converts it (:func:`tasu.sparse.upgrade_state_dict`)."""
    out = dict(original)
    for k, v in original.items():
        new = k[:-len("weight")] + "table"
        if k.endswith(".weight") and k not in adapted and new in adapted and getattr(v, "ndim", 0) == 2:
            out[new] = out.pop(k).t()
    return out


def adapt_card(args, src, command, n_domain, n_phrases, n_skipped, words, new, unspelt, n_replay, steps, history,
               seconds, model_dir) -> str:
    """ADAPT.md: what the model was adapted on, with which command, and how the run went."""
    from tasu.runtime import machine_summary

    losses = [h["loss"] for h in history if "loss" in h]
    # the last checkpoint is the step the weights are from (the history logs every log_interval)
    cks = sorted(int(c.stem[4:]) for c in (model_dir / "checkpoints").glob("step*.pt") if c.stem[4:].isdigit())
    done = max(cks[-1:] + [h["step"] for h in history if "step" in h], default=0)
    lines = [
        "# Adapted model (tasu-adapt)", "",
        f"- command: `{command}`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; {seconds / 60:.1f} min in all",
        f"- from: {args.model or 'the shipped model'} (weights sha256 {sha256(Path(src.model_file))[:16]})",
        f"- domain text: {args.text} ({n_domain - args.word_repeats * n_phrases} sentences kept, sha256 "
        f"{sha256(args.text)[:16] if args.text else '-'})" if args.text else "- domain text: none",
        f"- word list: {args.words} ({n_phrases} entries, each {args.word_repeats} times as a sentence)"
        if args.words else "- word list: none",
        f"- lines skipped: {n_skipped} (listed in the work dir's skipped.txt)",
        f"- words: {len(words)} distinct, {len(new)} new to the lexicon ({len(unspelt)} G2P could not spell); "
        "the new ones are in new_words.txt",
        f"- replay: {n_replay} sentences of the model's training text "
        f"({args.replay_text or 'its replay.txt.xz'}, ratio {args.replay_ratio:g}, seed {args.seed})",
        f"- training: {done} of {steps} steps"
        + (f" (time budget {args.max_minutes:g} min reached)" if done < steps else "")
        + (f", loss {losses[0]:.3f} -> {losses[-1]:.3f}" if losses else ""),
        f"- paired fine-tuning: {args.paired_data}, {args.paired_steps} steps" if args.paired_data else
        "- paired fine-tuning: none (text only)",
        f"- trained in: {model_dir.name}",
        f"- weights: {args.interpolate:g} x the adapted + {1 - args.interpolate:g} x the original's (--interpolate)"
        if args.interpolate < 1 else "- weights: the adapted ones",
        "", "Machine:", "", "```", machine_summary(), "```", "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
