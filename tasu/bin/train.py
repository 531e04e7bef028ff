#!/usr/bin/env python3
"""TASU training: text-only alignment (stage 2) and paired fine-tuning (stage 3).

Stage 2 trains projector + LoRA on posteriors simulated from the stage-1 unit files
(``<dump>/<set>/units``) and the data dirs' ``text``. Stage 3 adds paired examples: the
real PSD posteriors of a data dir's audio (``--paired_feats``, stage 1) with its ``text``,
``paired_ratio`` of each batch, starting from ``--init`` (the stage-2 model) or from scratch.
Outputs in ``--expdir``: ``config.yaml``, ``units.txt``, ``checkpoints/``, ``model.pt``,
``loss.png``, ``history.json``, ``train.log``. A re-run resumes from the newest checkpoint.

Data-parallel training: launch with ``torchrun --nproc_per_node N -m tasu.bin.train ...``
(gloo on CPU; with ``--ngpu 1`` each rank takes ``cuda:<LOCAL_RANK>`` and NCCL). The global
batch is ``optim.batch_size`` whatever N is; rank 0 logs and writes the exp dir.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from tasu.config import load_config, parse_overrides
from tasu.data import DataDir, DataError, read_kv, read_posteriors

log = logging.getLogger("tasu.train")


def setup_logging(logfile: Path, rank: int = 0) -> None:
    """Rank 0 logs INFO to stderr and ``logfile``; other ranks log warnings to stderr only."""
    fmt = logging.Formatter(("" if rank == 0 else f"[rank {rank}] ") +
                            "%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    root = logging.getLogger()
    root.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if rank == 0:
        logfile.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(logfile))
    for h in handlers:
        h.setFormatter(fmt)
        root.addHandler(h)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, required=True, help="training YAML (see conf/train.yaml)")
    ap.add_argument("--train_data", type=Path, required=True, help="data dir with `text`")
    ap.add_argument("--train_units", type=Path, required=True, help="stage-1 `units` file of the train set")
    ap.add_argument("--dev_data", type=Path, help="data dir with `text`")
    ap.add_argument("--dev_units", type=Path, help="stage-1 `units` file of the dev set")
    ap.add_argument("--lexicon", type=Path,
                    help="the training lexicon (for projector.init=spelling and word_lists; hama)")
    ap.add_argument("--encoder", default=None, help="CTC encoder whose units the unit files hold: hama "
                    "(default), hf:<dir or hub id> (its inventory; not run)")
    ap.add_argument("--paired_data", type=Path, help="stage 3: data dir with the `text` of paired audio")
    ap.add_argument("--paired_feats", type=Path, help="stage 3: feats.scp of its PSD posteriors (stage 1)")
    ap.add_argument("--init", help="start from this model's trainable weights (exp dir, packed zip or dir); "
                    "same as --override init=PATH")
    ap.add_argument("--expdir", type=Path, required=True)
    ap.add_argument("--ngpu", type=int, default=0)
    ap.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config value, e.g. optim.max_steps=20 (repeatable)")
    args = ap.parse_args(argv)
    from tasu.dist import close_distributed, init_distributed

    ctx, device = init_distributed(args.ngpu)
    setup_logging(args.expdir / "train.log", ctx.rank)
    log.info("command: %s", " ".join(sys.argv))

    try:
        overrides = parse_overrides(args.override)
    except ValueError as e:
        ap.error(str(e))
    if args.init:
        overrides["init"] = args.init
    if args.encoder:
        overrides["encoder"] = args.encoder
    if (args.paired_data is None) != (args.paired_feats is None):
        ap.error("--paired_data and --paired_feats go together")
    try:
        cfg = load_config(args.config, overrides=overrides)
    except (FileNotFoundError, ValueError) as e:  # the message names the file
        log.error("%s", e)
        return 1
    import peft
    import transformers

    import tasu

    log.info("tasu %s, torch %s, transformers %s, peft %s; device %s, %d threads, %d rank(s); seed %d",
             tasu.__version__, torch.__version__, transformers.__version__, peft.__version__, device,
             torch.get_num_threads(), ctx.world_size, cfg.seed)

    from tasu.encoders import build_encoder
    from tasu.examples import check_units, make_examples, make_paired_examples
    from tasu.simulate import PosteriorSimulator
    from tasu.train import Trainer, prepare

    if cfg.shard_size < 0:
        log.error("shard_size must be 0 (the training text in memory) or a number of examples, got %d",
                  cfg.shard_size)
        return 1
    sharded = cfg.shard_size > 0  # the training text is streamed into shards (tasu.shards), not read whole
    if sharded and cfg.tasks:
        log.error("shard_size=%d: sharded training text is text-only transcription; multi-task training "
                  "(tasks: %s) reads its answer files whole: set shard_size: 0", cfg.shard_size, cfg.tasks)
        return 1
    try:
        train_text = {} if sharded else DataDir.load(args.train_data, require=("text",)).text
        dev_text = DataDir.load(args.dev_data, require=("text",)).text if args.dev_data else {}
        train_units = {} if sharded else read_kv(args.train_units)
        dev_units = read_kv(args.dev_units) if args.dev_units else {}
        paired_text = DataDir.load(args.paired_data, require=("text",)).text if args.paired_data else {}
        paired_feats = read_posteriors(args.paired_feats) if args.paired_feats else {}
    except DataError as e:
        log.error("%s", e)
        return 1
    try:
        enc = build_encoder(cfg.encoder)
    except (ValueError, ImportError, OSError, RuntimeError) as e:  # names the encoder dir or spec
        log.error("%s", e)
        return 1
    inv = enc.inventory
    try:  # every input is checked before the LLM is loaded
        check_units(train_units, train_text, inv, args.train_units)
        if args.dev_units:
            check_units(dev_units, dev_text, inv, args.dev_units)
        spellings = enc.spellings(args.lexicon) or None
        if cfg.projector.init == "spelling" and not cfg.init and not spellings:
            raise ValueError(f"projector.init=spelling needs unit spellings, and encoder {cfg.encoder} has none "
                             + ("(--lexicon with letters missing)" if cfg.encoder == "hama" else "(no letter units)")
                             + "; use projector.init: random (--override projector.init=random)")
        task_answers = []  # multi-task: (task, its answers in the training data dir)
        if cfg.tasks:
            from tasu.tasks import load_tasks

            registry = load_tasks(cfg.tasks_file)
            for name in cfg.tasks:
                task = registry.get(name, where=str(args.config))
                task_answers.append((task, task.read_targets(args.train_data, partial=True)))
    except UnicodeDecodeError as e:
        log.error("%s: not valid UTF-8 (%s)", args.lexicon, e)
        return 1
    except ValueError as e:
        log.error("%s", e)
        return 1
    try:
        model = prepare(cfg, inv, spellings, args.expdir, device, write=ctx.is_main)
    except (ValueError, FileNotFoundError) as e:  # e.g. an --init model that does not fit
        log.error("%s", e)
        return 1
    tok = model.tokenizer
    if task_answers:  # multi-task: one set of examples per task, from its target file
        from tasu.examples import make_task_examples

        train = []
        for task, answers in task_answers:
            if task.fields:  # prompt fields ({question}...): each utterance is asked its own prompts
                try:
                    fields = task.read_fields(args.train_data, [u for u in answers if u in train_units])
                except ValueError as e:
                    log.error("%s", e)
                    return 1
                templates = {u: task.templates(tok, v) for u, v in fields.items()}
            else:
                templates = task.templates(tok)
            exs = make_task_examples(train_units, answers, inv, tok, model.template.eos_id, templates,
                                     task.target, str(args.train_units))
            log.info("task %s: %d examples (answers from %s)", task.name, len(exs), args.train_data / task.target)
            train += exs
    elif sharded:
        from tasu.shards import ShardedExamples, build_shards

        shard_dir = args.expdir / "shards"
        try:
            if ctx.is_main:  # one rank converts; the others wait and read the same shards
                build_shards(args.train_units, args.train_data / "text", inv, tok, model.template.eos_id,
                             shard_dir, cfg.shard_size)
            ctx.barrier()
            train = ShardedExamples(shard_dir)
        except (DataError, ValueError) as e:
            log.error("%s", e)
            return 1
    else:
        train = make_examples(train_units, train_text, inv, tok, model.template.eos_id, str(args.train_units))
    dev = make_examples(dev_units, dev_text, inv, tok, model.template.eos_id, str(args.dev_units)) if dev_units else []
    paired = []
    if args.paired_feats:
        try:
            paired, unpaired = make_paired_examples(paired_feats, paired_text, inv.size, tok, model.template.eos_id,
                                                    str(args.paired_feats))
        except ValueError as e:
            log.error("%s", e)
            return 1
        log.info("%d paired utterances from %s (%d of %s without posteriors, skipped in stage 1: not used)",
                 len(paired), args.paired_feats, len(unpaired), args.paired_data / "text")
    word_lists = None
    if cfg.word_lists.share:  # random lexicon words beside the sentences (TrainConfig.word_lists)
        from tasu.examples import WordLists

        wl = cfg.word_lists
        if args.lexicon is None or not args.lexicon.is_file():
            log.error("word_lists.share=%g draws words from the training lexicon (--lexicon, the hama encoder's "
                      "lexicon.txt of stage 1), and there is none: %s", wl.share, args.lexicon)
            return 1
        try:
            word_lists = WordLists.from_lexicon(args.lexicon, inv, tok, model.template.eos_id, wl.min_words,
                                                wl.max_words)
        except (ValueError, UnicodeDecodeError) as e:
            log.error("%s: %s", args.lexicon, e)
            return 1
        log.info("word lists: %d words of %s, %d-%d a list, %.0f%% of each batch's text-only examples",
                 len(word_lists.words), args.lexicon, wl.min_words, wl.max_words, 100 * wl.share)
    used = train.active_units if sharded else {int(i) for e in train for i in e.unit_ids}
    active = sorted(used | (word_lists.units() if word_lists else set()))
    splits = None
    if cfg.simulation.wb_split > 0:  # word boundaries inside compound words, as the encoder writes them
        from tasu.g2p import read_lexicon
        from tasu.simulate import compound_splits

        if args.lexicon is None or not args.lexicon.is_file():
            log.error("simulation.wb_split=%g splits the words of the training lexicon (--lexicon, the hama "
                      "encoder's lexicon.txt of stage 1), and there is none: %s", cfg.simulation.wb_split, args.lexicon)
            return 1
        try:
            splits = compound_splits(*read_lexicon(args.lexicon), inv.index())
        except (ValueError, UnicodeDecodeError) as e:
            log.error("%s: %s", args.lexicon, e)
            return 1
        log.info("compound splits: %d pronunciations of %s take a <wb> inside (wb_split %g)", len(splits),
                 args.lexicon, cfg.simulation.wb_split)
    sim = PosteriorSimulator(inv.size, active, inv.units, inv.wb_id, cfg.simulation, splits)
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info("%d train / %d dev sentences, %d active units of %d, %.2fM trainable parameters",
             len(train), len(dev), len(active), inv.size, n_train / 1e6)
    try:
        Trainer(cfg, model, sim, train, dev, args.expdir, ctx, paired=paired, word_lists=word_lists).run()
    except (FloatingPointError, ValueError) as e:
        log.error("%s: training stopped: %s", args.expdir, e)
        return 1
    finally:
        close_distributed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
