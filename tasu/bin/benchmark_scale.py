#!/usr/bin/env python3
"""Benchmark (not a test): training steps and decoding of a recipe's model at its real size,
with random weights, on the device you have (a GPU with --ngpu 1).

For a GPU recipe whose weights are not at hand (no hub access, or before downloading them). The
recipe's training config (``--config``, with ``--override``s) is built as stage 2 builds it, except:
- its LLM is a randomly initialised network of the architecture in ``--llm_config`` (a HF
  ``config.json``, e.g. ``egs/librispeech/conf/llm/qwen2.5-1.5b-instruct.json``; saved once under
  ``--llm_dir`` with the tokenizer of ``--tokenizer``, whose vocabulary must fit the config's);
- its encoder's units are ``--n_units`` stand-ins (SenseVoiceSmall: 25 055; the projector is then
  its real size), and each answer token gets ``--units_per_token`` simulated rows of random units
  (BPE units and LLM tokens are about one for one);
- the sentences are real text (``--text``, one a line, ``uid text`` or plain, ``.xz`` read as
  such), consecutive lines joined to lengths drawn uniformly around ``--words`` words
  (LibriSpeech's 960 h transcripts: 33.4 on average).

Training runs the trainer's own update (``Trainer.update``: gradients, clipping, AdamW, schedule)
for ``--steps`` timed steps after ``--warmup`` untimed ones, on batches drawn from a fixed pool of
``--pool`` sentences (the same batches whatever ``--steps`` is), and prints: seconds a step,
sentences and LLM positions a second, peak device memory of the timed steps, FLOPs (counted by
``torch.utils.flop_counter`` on one more batch, per padded position, applied to the timed batches'
positions) and that rate as a share of the device's matmul peak measured in the dtype training
computes in. The stand-in tokenizer sets the prompt's and answers' lengths, not the LLM's own.
Decoding: ``--decode_utts`` utterances in batches of ``--decode_batch`` with the decode config's
beam and new-token limit, after training's gradients and optimiser state are freed; with random
weights answers run to the limit unless the end token comes, so this is a worst case.
``--json`` writes the numbers and the arguments, ``--profile`` where a step's time goes.
"""
from __future__ import annotations

import argparse
import json
import lzma
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml


def random_llm_dir(config_json: Path, tokenizer: Path, out: Path, device: torch.device) -> Path:
    """``out``: a HF dir of a random network with ``config_json``'s architecture and ``tokenizer``
    (made once; an existing one is reused)."""
    import transformers as tr

    if (out / "config.json").is_file():
        return out
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out}: not empty and no config.json in it; give an empty or new --llm_dir")
    spec = {k: v for k, v in json.loads(config_json.read_text()).items() if not k.startswith("_")}
    kind = spec.pop("model_type")
    for k in ("architectures", "torch_dtype", "dtype", "transformers_version"):  # a hub config.json's extras
        spec.pop(k, None)
    tok = tr.AutoTokenizer.from_pretrained(tokenizer)
    if len(tok) > spec["vocab_size"]:
        raise ValueError(f"{tokenizer}: {len(tok)} tokens do not fit {config_json}'s vocab_size {spec['vocab_size']}")
    eos = tok.eos_token_id  # the stand-in tokenizer's special tokens replace the config's
    spec.update(bos_token_id=tok.bos_token_id, eos_token_id=eos,
                pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else eos)
    conf = tr.AutoConfig.for_model(kind, **spec)
    torch.manual_seed(0)
    with torch.device(device):  # initialised where it will run (1.5 B parameters: seconds on a GPU)
        model = tr.AutoModelForCausalLM.from_config(conf, dtype=torch.bfloat16)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)  # a killed run's leftover
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    if out.exists():
        out.rmdir()
    tmp.rename(out)
    return out


def read_lines(path: Path) -> list[str]:
    """Text lines of ``path`` (``.xz`` decompressed); a leading ``uid`` (a token with a digit) dropped."""
    opener = lzma.open if path.suffix == ".xz" else open
    out = []
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            parts = line.split(maxsplit=1)
            text = parts[1] if len(parts) == 2 and any(c.isdigit() for c in parts[0]) else line
            if text.strip():
                out.append(text.strip())
    return out


def joined_sentences(lines: list[str], words: float, n: int, seed: int) -> list[str]:
    """``n`` texts of consecutive lines joined up to a length drawn from U(0.4, 1.6) x ``words``."""
    rng = random.Random(seed)
    out, i = [], rng.randrange(len(lines))
    while len(out) < n:
        target, cur = rng.uniform(0.4 * words, 1.6 * words), []
        while len(cur) < target:
            cur += lines[i % len(lines)].split()
            i += 1
        out.append(" ".join(cur[:max(1, round(target))]))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, required=True, help="the recipe's training YAML")
    ap.add_argument("--override", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--llm_config", type=Path, required=True, help="HF config.json of the LLM's architecture")
    ap.add_argument("--tokenizer", type=Path, required=True, help="HF tokenizer dir for the random LLM")
    ap.add_argument("--llm_dir", type=Path, help="where the random LLM is saved / reused (default: a temp dir)")
    ap.add_argument("--n_units", type=int, default=25055, help="encoder units, blank included")
    ap.add_argument("--units_per_token", type=float, default=1.0)
    ap.add_argument("--text", type=Path, required=True)
    ap.add_argument("--words", type=float, default=33.4, help="mean words a training sentence")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--pool", type=int, default=2048, help="sentences drawn (at least the steps' need): "
                    "batches are drawn from the pool by length, the same ones whatever --steps is")
    ap.add_argument("--decode_config", type=Path, help="decode YAML (num_beams, max_new_tokens); none: no decoding")
    ap.add_argument("--decode_utts", type=int, default=64)
    ap.add_argument("--decode_batch", type=int, default=16)
    ap.add_argument("--ngpu", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write the numbers here")
    ap.add_argument("--profile", type=Path, help="write torch.profiler's table of two more training steps here "
                    "(operators by device and by CPU time)")
    args = ap.parse_args(argv)
    from tasu.config import parse_overrides
    from tasu.runtime import device_from_ngpu

    device = device_from_ngpu(args.ngpu)
    try:
        overrides = parse_overrides(args.override)
    except ValueError as e:
        ap.error(str(e))
    work = Path(tempfile.mkdtemp(prefix="tasu_scale_"))  # the exp dir, and the random LLM without --llm_dir
    try:
        return run(args, work, overrides, device)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path, overrides: dict, device: torch.device) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    from tasu.bin.benchmark import matmul_peak
    from tasu.config import load_config
    from tasu.examples import TextExample, answer_ids
    from tasu.modelio import build_model
    from tasu.simulate import PosteriorSimulator
    from tasu.train import Trainer
    from tasu.units import UnitInventory

    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    t0 = time.perf_counter()
    overrides["llm"] = str(random_llm_dir(args.llm_config, args.tokenizer, args.llm_dir or work / "llm", device))
    cfg = load_config(args.config, overrides=overrides)
    t_llm = time.perf_counter() - t0
    inv = UnitInventory(("<blank>",) + tuple(f"u{i}" for i in range(1, args.n_units)), word_boundary=None)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, inv, device)
    tok = model.tokenizer
    o = cfg.optim
    # a fixed pool, so that the same seed draws the same batches whatever --steps and --warmup are
    need = (args.warmup + args.steps + 1 + (2 if args.profile else 0)) * o.batch_size
    texts = joined_sentences(read_lines(args.text), args.words, max(args.pool, need, args.decode_utts), cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    answers = answer_ids(tok, texts, model.template.eos_id)
    examples = [TextExample(f"s{i}", rng.integers(1, args.n_units, max(1, round(args.units_per_token * (len(a) - 1)))),
                            a, t) for i, (t, a) in enumerate(zip(texts, answers))]
    sim = PosteriorSimulator(inv.size, list(range(1, args.n_units)), inv.units, inv.wb_id, cfg.simulation)
    trainer = Trainer(cfg, model, sim, examples, [], work / "exp")
    params = [p for p in model.parameters() if p.requires_grad]
    masks: list[tuple[int, torch.Tensor]] = []

    def count(_mod, _args, kwargs):  # the LLM's positions (prompt + speech rows + answer), summed
        x, m = kwargs["inputs_embeds"], kwargs.get("attention_mask")
        if m is None:  # a shared prompt prefix (SpeechLLM.share_prefix): computed once, unpadded
            masks.append((x.shape[0] * x.shape[1], torch.tensor(x.shape[0] * x.shape[1])))
            return
        m = m[:, -x.shape[1]:]  # the rows after a cached prefix; on the device: no sync inside a timed step
        masks.append((m.numel(), m.sum()))

    hook = model.base.base_model.register_forward_pre_hook(count, with_kwargs=True)

    def step(batch) -> bool:  # the trainer's own update (Trainer.run's, without its logging)
        updated = trainer.update(batch, params)[2]
        sync()
        return updated

    def positions() -> tuple[int, int]:  # (padded, real) since the last call
        out = sum(n for n, _ in masks), sum(int(m) for _, m in masks)
        masks.clear()
        return out

    model.train()
    batches = trainer.batches()
    for _ in range(args.warmup):
        step(next(batches))
    # FLOPs counted on one batch, per padded position (the LLM computes over the padding too),
    # then applied to the timed batches' positions: batches differ in length
    positions()
    with FlopCounterMode(display=False) as fc:
        step(next(batches))
    flops_per_position = fc.get_total_flops() / positions()[0]
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    t0, sents, skipped = time.perf_counter(), 0, 0
    for _ in range(args.steps):
        b = next(batches)
        skipped += not step(b)
        sents += len(b)
    el = time.perf_counter() - t0
    padded, real = positions()
    peak_mem = torch.cuda.max_memory_allocated(device) / 2 ** 30 if cuda else None
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with profile(activities=acts) as prof:
            t1 = time.perf_counter()
            for _ in range(2):
                step(next(batches))
            prof_s = time.perf_counter() - t1
        pp, pr = positions()
        table = prof.key_averages()
        args.profile.write_text(
            f"2 steps, {prof_s:.3f} s under the profiler, {pr} LLM positions ({pp} padded)\n" + "".join(
                f"== sorted by {key} ==\n{table.table(sort_by=key, row_limit=30, max_name_column_width=60)}\n"
                for key in (["cuda_time_total"] if cuda else []) + ["cpu_time_total", "self_cpu_time_total"]))
    hook.remove()
    peak = matmul_peak(model.amp_dtype, n=8192 if cuda else 2048, device=device)
    flops = flops_per_position * padded
    eff = flops / el / 1e9
    n_lora = sum(p.numel() for n, p in model.llm.named_parameters() if "lora_" in n)
    res = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "device": torch.cuda.get_device_name(device) if cuda else "cpu", "torch": torch.__version__,
        "finetune": cfg.finetune,
        "llm_parameters_M": round((sum(p.numel() for p in model.llm.parameters()) - n_lora) / 1e6, 1),
        "lora_parameters": n_lora,
        "trainable_parameters_M": round(sum(p.numel() for p in params) / 1e6, 2),
        "trainable_parameters": sum(p.numel() for p in params),
        "n_units": args.n_units, "batch_size": o.batch_size, "steps": args.steps, "skipped_steps": skipped,
        "autocast": str(model.amp_dtype), "s_per_step": el / args.steps, "sentences_per_s": sents / el,
        "positions_per_step": real / args.steps, "padded_positions_per_step": padded / args.steps,
        "gflop_per_padded_position": flops_per_position / 1e9, "gflop_per_sentence": flops / sents / 1e9,
        "effective_tflops": eff / 1e3, "matmul_peak_tflops": peak / 1e3, "share_of_peak": eff / peak,
        "random_llm_s": t_llm,
    }
    if cuda:
        res["peak_memory_gib"] = peak_mem
    print(f"training ({args.config.name}, {cfg.finetune}): batch {o.batch_size}, {args.steps} steps, "
          f"{res['s_per_step']:.3f} s/step, {res['sentences_per_s']:.1f} sentences/s, "
          f"{res['positions_per_step']:.0f} LLM positions a step ({res['padded_positions_per_step']:.0f} padded), "
          f"{eff / 1e3:.1f} effective TFLOP/s = {100 * eff / peak:.0f} % of the {peak / 1e3:.1f} TFLOP/s matmul "
          f"peak in {model.amp_dtype or torch.float32}" + (f", peak memory {peak_mem:.1f} GiB" if cuda else ""))
    if args.decode_config:
        dc = yaml.safe_load(args.decode_config.read_text()) or {}
        beams, max_new = int(dc.get("num_beams", 1)), int(dc.get("max_new_tokens", 64))
        model.eval()
        trainer.opt.state.clear()  # decoding's memory without training's gradients and optimiser state
        model.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.empty_cache()
        feats = [sim(e.unit_ids, rng, sparse=trainer.sparse_inputs) for e in examples[:args.decode_utts]]
        feats = [f if trainer.sparse_inputs else torch.from_numpy(f) for f in feats]
        model.generate(feats[:args.decode_batch], max_new_tokens=4, num_beams=beams)  # warm-up
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        t0, n_tok = time.perf_counter(), 0
        for i in range(0, len(feats), args.decode_batch):
            n_tok += sum(len(h) for h in model.generate(feats[i:i + args.decode_batch], max_new_tokens=max_new,
                                                        num_beams=beams))
        sync()
        el = time.perf_counter() - t0
        res.update(decode_utts=len(feats), decode_batch=args.decode_batch, num_beams=beams, max_new_tokens=max_new,
                   decode_s=el, decode_utts_per_s=len(feats) / el, decode_tokens=n_tok,
                   decode_tokens_per_s=n_tok / el)
        if cuda:
            res["decode_peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2 ** 30
        print(f"decoding: {len(feats)} utterances, batch {args.decode_batch}, beam {beams}, up to {max_new} new "
              f"tokens: {el:.1f} s, {len(feats) / el:.2f} utterances/s, {n_tok} answer tokens ({n_tok / el:.0f}/s)" +
              (f", peak memory {res['decode_peak_memory_gib']:.1f} GiB" if cuda else ""))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
