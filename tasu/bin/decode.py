#!/usr/bin/env python3
"""Decode (stage 4): PSD posteriors of a set -> ``<outdir>/text`` with a trained model.

Reads ``<dump>/feats.scp`` (stage 1). Utterances skipped in stage 1 have no posteriors and
get no hypothesis line; scoring counts them as missing (all words deleted). With
``acoustic_weight`` > 0 in the decoding config, the beam's answers are rescored by how well
their units fit the posteriors (:mod:`tasu.rescore`) and ``<outdir>/nbest.json`` keeps them.
Every input (decoding config, feats, vocabulary, the exp dir's config, units and weights) is
checked before the LLM is loaded: a bad one stops the run with an error naming the file (exit 1).
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path

from tasu.config import DecodeConfig, check_rescoring, load_config
from tasu.fileio import atomic_write_text

log = logging.getLogger("tasu.decode")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--expdir", type=Path, required=True, help="training dir (config.yaml, units.txt, model.pt)")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--feats", type=Path, help="feats.scp of PSD posteriors")
    src.add_argument("--text_input", type=Path,
                     help="cascade baseline: a text file (e.g. ASR hypotheses) read in place of the speech")
    ap.add_argument("--no_adapters", action="store_true",
                    help="with --text_input: the bare LLM (LoRA adapters off), as a plain text cascade")
    ap.add_argument("--task", help="answer this registry task's prompt (default: the model's own prompt)")
    ap.add_argument("--tasks_file", type=Path,
                    help="task registry (default: the model config's tasks_file, else tasu/conf/tasks.yaml)")
    ap.add_argument("--data", type=Path,
                    help="the set's data dir: the prompt fields of a --task that has them ({question}: "
                         "<data>/question)")
    ap.add_argument("--outdir", type=Path, required=True, help="gets `text` and `decode_stats.json`")
    ap.add_argument("--config", type=Path, help="decoding YAML (conf/decode.yaml)")
    ap.add_argument("--checkpoint", default="model.pt")
    ap.add_argument("--ngpu", type=int, default=0)
    ap.add_argument("--vocabulary", type=Path,
                    help="word list (one per line): only these words can be recognised (overrides the config)")
    ap.add_argument("--lexicon", type=Path,
                    help="acoustic_weight > 0 with the hama encoder: the training lexicon, read only: the words "
                         "n-best expansion proposes, and the pronunciations rescoring starts from (copied to "
                         "<outdir>/lexicon_hyp.txt, where new words of the answers are added); default: the "
                         "one packed with the model, if any")
    ap.add_argument("--hotwords", type=Path,
                    help="words and phrases to favour (tasu.hotwords: one a line, an optional score after a tab)")
    ap.add_argument("--hotwords_per_utt", type=Path,
                    help="per-utterance hotword lists, `<utt-id> w1 w2 ...` (the biasing benchmark's shape)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    from tqdm import tqdm

    from tasu.constrain import read_word_list
    from tasu.data import read_posteriors, read_table_lines
    from tasu.inference import Speech2Text
    from tasu.runtime import device_from_ngpu
    from tasu.units import UnitInventory
    from tasu.zoo import ZooError, check_model_files

    # every input is checked before the LLM is loaded; each error names its file
    try:
        dcfg = load_config(args.config, DecodeConfig) if args.config else DecodeConfig()
        if args.feats is not None and not args.feats.is_file():
            raise ValueError(f"{args.feats}: missing; run stage 1 for this set first")
        if args.text_input is not None:
            from tasu.data import read_kv

            texts = read_kv(args.text_input, allow_empty_value=True)  # file:line errors
        task = None
        if args.task:
            from tasu.tasks import load_tasks

            tasks_file = args.tasks_file or load_config(args.expdir / "config.yaml").tasks_file
            task = load_tasks(tasks_file).get(args.task, where="--task")
        fields = None
        if task is not None and task.fields:
            if args.data is None:
                raise ValueError(f"task {task.name!r} fills {', '.join('{' + f + '}' for f in task.fields)} of its "
                                 "prompt from the data dir: give --data")
            fields = task.read_fields(args.data)
        vocab = args.vocabulary or dcfg.vocabulary
        words = None
        if vocab:
            read_table_lines(vocab)  # DataError "<file>:<line>: not valid UTF-8"
            words = read_word_list(vocab)
        check_rescoring(dcfg, dcfg.num_beams, args.config)
        if args.lexicon is not None and not args.lexicon.is_file():
            raise ValueError(f"{args.lexicon}: missing (--lexicon)")
        if args.lexicon is not None and dcfg.acoustic_weight > 0:  # read by rescoring and expansion
            from tasu.g2p import read_lexicon

            read_lexicon(args.lexicon)  # ValueError "<file>:<line>: expected ..." before the LLM is loaded
        check_model_files(args.expdir / "config.yaml", args.expdir / "units.txt", args.expdir / args.checkpoint)
        n_units = UnitInventory.from_file(args.expdir / "units.txt").size
        items = list(read_posteriors(args.feats).items()) if args.feats else []
        for uid, mat in items:
            if mat.ndim != 2 or mat.shape[1] != n_units:
                raise ValueError(f"{args.feats}: utterance {uid} has shape {mat.shape}, "
                                 f"the model expects [T, {n_units}]")
    except (ValueError, OSError, ZooError) as e:  # DataError is a ValueError
        log.error("%s", e)
        return 1
    try:  # the LLM the config names: a missing path, an unknown hub id, weights of another LLM
        lexicon = None
        if dcfg.acoustic_weight > 0 and args.lexicon is not None:  # the training lexicon is read, never written
            args.outdir.mkdir(parents=True, exist_ok=True)
            lexicon = args.outdir / "lexicon_hyp.txt"  # new words of the answers are added here
            shutil.copyfile(args.lexicon, lexicon)
        # the encoder only turns answers into units here (the speech is already posteriors): CPU
        s2t = Speech2Text.from_pretrained(args.expdir, device=device_from_ngpu(args.ngpu), decode_config=dcfg,
                                          checkpoint=args.checkpoint, task=task, vocabulary=words,
                                          lexicon=lexicon, training_lexicon=args.lexicon, encoder_device="cpu",
                                          hotwords=args.hotwords, hotwords_per_utt=args.hotwords_per_utt)
    except (ValueError, OSError, RuntimeError) as e:
        log.error("%s", e)
        return 1
    if words:
        log.info("closed vocabulary: %d words from %s", s2t.constraint.n_words, vocab)
    t0 = time.time()
    args.outdir.mkdir(parents=True, exist_ok=True)
    if task:
        log.info("task %s: prompt %r", task.name, task.prompt)
    if args.text_input is not None:
        log.info("cascade: %d texts from %s in place of the speech", len(texts), args.text_input)
        with tqdm(total=len(texts), desc="decode (text)", unit="utt", mininterval=5) as bar:
            hyps = s2t.decode_texts(texts, adapters=not args.no_adapters, progress=bar, fields=fields)
    else:
        try:
            if dcfg.acoustic_weight > 0:
                s2t.rescorer  # noqa: B018 - builds the encoder's text -> units now, so its errors come first
            if s2t.expander is not None:  # reads the training lexicon now: its errors come first too
                log.info("n-best expansion: up to %d lexicon words a span from %s", dcfg.expand_per_span,
                         s2t.training_lexicon)
        except (ValueError, OSError, ImportError) as e:
            log.error("acoustic rescoring: %s", e)
            return 1
        if s2t.biasing is not None:
            from tasu.hotwords import unknown_utterances

            b = s2t.biasing
            log.info("hotwords: %d global phrases, lists for %d utterances (score %g a word)", len(b.global_phrases),
                     len(b.per_utt), dcfg.hotword_score)
            unknown = unknown_utterances(b.per_utt, [u for u, _ in items])
            if unknown:
                log.warning("%s: %d lists name no utterance of %s (e.g. %r): not used", args.hotwords_per_utt,
                            len(unknown), args.feats, unknown[0])
        with tqdm(total=len(items), desc="decode", unit="utt", mininterval=5) as bar:
            answers = s2t.decode_posteriors(items, progress=bar, fields=fields)
        hyps = {u: a.text for u, a in answers.items()}
        nbest = {u: a.nbest for u, a in answers.items() if a.nbest}
        if nbest:
            changed = sum(hyps[u] != c[0][0] for u, c in nbest.items())
            log.info("acoustic rescoring (weight %g) of %d-best lists: %d of %d answers are not the beam's best",
                     dcfg.acoustic_weight, dcfg.num_beams, changed, len(nbest))
            if dcfg.expand_per_span > 0:
                new = sum(hyps[u] not in [t for t, _ in c[:dcfg.num_beams]] for u, c in nbest.items())
                added = sum(len(c) - dcfg.num_beams for c in nbest.values())
                log.info("n-best expansion: %d answers added (%.1f an input), %d chosen",
                         added, added / max(1, len(nbest)), new)
            atomic_write_text(args.outdir / "nbest.json", json.dumps(nbest, indent=0, ensure_ascii=False))
    el = time.time() - t0
    atomic_write_text(args.outdir / "text", "".join(f"{u} {h}\n".replace(" \n", "\n") for u, h in sorted(hyps.items())))
    stats = {"n_utts": len(hyps), "seconds": el, "utt_per_s": len(hyps) / max(el, 1e-9)}
    if s2t.timings:  # where decoding's time went
        stats["stage_seconds"] = {k: round(v, 2) for k, v in sorted(s2t.timings.items())}
        log.info("time by stage: %s", ", ".join(f"{k} {v:.1f} s" for k, v in stats["stage_seconds"].items()))
    atomic_write_text(args.outdir / "decode_stats.json", json.dumps(stats, indent=1))
    log.info("decoded %d utterances in %.1f s -> %s", len(hyps), el, args.outdir / "text")
    return 0


if __name__ == "__main__":
    sys.exit(main())
