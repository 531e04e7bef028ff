#!/usr/bin/env python3
"""Benchmark (not a test): training throughput, decoding real-time factor, peak memory.

Prints
- training, for each computation path on the same batches (``--compare``: the plain path, then
  the exp config's; ``--compile``: also with compiled decoder layers): sentences/s, tokens/s
  (prompt, speech and answer positions through the LLM, padding left out) and effective
  GFLOP/s: the FLOPs of the plain path's step (``torch.utils.flop_counter``: forward and
  backward matmuls) over the path's time, so work a path saves (a shared prompt prefix) shows
  as speed, and that rate as a share of this machine's matmul peak in the dtype training
  computes in (measured here: the best of a few square matmuls of inputs made in that dtype).
  Each path is warmed up on the first two batches, then timed over ``--train_steps`` batches,
  ``--rounds`` times in turn (the best round counts: the other process noise is what varies);
- decoding (with ``--test_data``): real-time factor of audio -> the model's encoder -> PSD -> LLM
  text on ``--n_utts`` utterances of a data dir (processing seconds / audio seconds);
- peak resident memory of the process.
"""
from __future__ import annotations

import argparse
import random
import resource
import time
from pathlib import Path

import numpy as np
import torch


def matmul_peak(dtype, n: int = 2048, reps: int = 5, device: torch.device | str = "cpu") -> float:
    """Best GFLOP/s of an ``[n, n] @ [n, n]`` product in ``dtype`` (None: float32) on ``device``
    (on CUDA timed after a synchronize; take n >= 8192 there to pass launch overhead). The inputs
    are made in ``dtype``: the casts autocast would add are not part of the peak."""
    device = torch.device(device)
    a, b = (torch.randn(n, n, device=device, dtype=dtype or torch.float32) for _ in range(2))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    best = float("inf")
    a @ b
    sync()
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


PLAIN = {"attention": "sdpa", "fused_lora": False, "share_prefix": False}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--expdir", type=Path, required=True, help="trained exp dir (config.yaml, model.pt)")
    ap.add_argument("--train_data", type=Path, required=True, help="data dir with `text`")
    ap.add_argument("--train_units", type=Path, required=True)
    ap.add_argument("--test_data", type=Path, help="data dir with wav.scp (none: no decoding benchmark)")
    ap.add_argument("--train_steps", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=2, help="timed passes over the batches per path")
    ap.add_argument("--compare", action="store_true",
                    help="also time the plain path (sdpa attention, peft's LoRA forward, no shared prefix)")
    ap.add_argument("--compile", action="store_true", help="also time the config's path with compiled layers")
    ap.add_argument("--n_utts", type=int, default=48)
    ap.add_argument("--batch_size", type=int, default=16, help="decoding batch size")
    ap.add_argument("--merge_lora", type=int, choices=(0, 1), default=1,
                    help="1: fold LoRA into the LLM's weights before decoding, as Speech2Text does (merge_lora)")
    args = ap.parse_args(argv)
    from torch.utils.flop_counter import FlopCounterMode

    from tasu.audio import load_audio
    from tasu.data import DataDir, read_kv
    from tasu.decode import decode_posteriors
    from tasu.encoders import build_encoder
    from tasu.examples import length_batches, make_examples
    from tasu.kernels import compile_layers, set_compute_path
    from tasu.modelio import load_model
    from tasu.psd import psd_compress
    from tasu.simulate import PosteriorSimulator

    dev = torch.device("cpu")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    model, cfg, inv, _ = load_model(args.expdir, dev)
    tok = model.tokenizer
    text = DataDir.load(args.train_data, require=("text",)).text
    ex = make_examples(read_kv(args.train_units), text, inv, tok, model.template.eos_id)
    sim = PosteriorSimulator(inv.size, sorted({int(i) for e in ex for i in e.unit_ids}), inv.units, inv.wb_id,
                             cfg.simulation)
    rng = np.random.default_rng(0)
    draw = length_batches(ex, cfg.optim.batch_size, random.Random(0))
    batches = [next(draw) for _ in range(args.train_steps + 2)]
    data = [([torch.from_numpy(sim(e.unit_ids, rng)) for e in b], [e.answer_ids for e in b]) for b in batches]
    prompt = len(model.template.prefix) + len(model.template.suffix)
    tokens = sum(prompt + len(f) + len(a) for feats, ans in data[2:] for f, a in zip(feats, ans))
    sents = sum(len(b) for b in batches[2:])
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5)
    model.train()

    def step(feats, ans):
        loss, _ = model(feats, ans)
        opt.zero_grad()
        loss.backward()
        opt.step()

    config_path = {"attention": cfg.attention, "fused_lora": cfg.fused_lora, "share_prefix": cfg.share_prefix}
    paths = ([("plain", PLAIN)] if args.compare else []) + [("config", config_path)]
    set_compute_path(model, **PLAIN)
    with FlopCounterMode(display=False) as fc:
        for feats, ans in data[2:]:
            step(feats, ans)
    flops = fc.get_total_flops()
    peak = matmul_peak(model.amp_dtype)
    best: dict[str, float] = {}

    def timed(name: str, path: dict) -> None:
        set_compute_path(model, **path)
        for feats, ans in data[:2]:  # warm-up
            step(feats, ans)
        t0 = time.perf_counter()
        for feats, ans in data[2:]:
            step(feats, ans)
        best[name] = min(best.get(name, float("inf")), time.perf_counter() - t0)

    for _ in range(args.rounds):
        for name, path in paths:
            timed(name, path)
    if args.compile:
        t0 = time.perf_counter()
        compile_layers(model.llm)
        timed("config+compile", config_path)
        print(f"compile: compiling the layers and the warm-up steps took {time.perf_counter() - t0:.0f} s")
        for _ in range(args.rounds - 1):
            timed("config+compile", config_path)
    print(f"training: batch {cfg.optim.batch_size}, {args.train_steps} steps ({sents} sentences, {tokens} tokens), "
          f"{flops / sents / 1e9:.1f} GFLOP per sentence on the plain path, autocast {model.amp_dtype or 'none'}, "
          f"matmul peak {peak:.1f} GFLOP/s in {model.amp_dtype or torch.float32}")
    for name, el in best.items():
        path = config_path if name.startswith("config") else PLAIN
        print(f"  {name:15s} {', '.join(f'{k} {v}' for k, v in path.items())}: {sents / el:.2f} sentences/s, "
              f"{tokens / el:.0f} tokens/s, {el / args.train_steps:.2f} s/step, {flops / el / 1e9:.1f} effective "
              f"GFLOP/s = {100 * flops / el / 1e9 / peak:.0f} % of the peak"
              + (f"; {best['plain'] / el:.2f}x the plain path" if "plain" in best and name != "plain" else ""))
    if args.test_data is None:
        print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
        return 0

    model.eval()
    if args.merge_lora:  # after the training steps: a merged model must not train
        from tasu.llm import merge_adapters

        print(f"merge_lora: {merge_adapters(model.llm)} LoRA layers folded into the LLM's weights")
    dd = DataDir.load(args.test_data)
    uids = dd.utt_ids[:args.n_utts]
    enc = build_encoder(cfg.encoder)  # the encoder the model was trained with
    t0 = time.perf_counter()
    audio_s, items = 0.0, []
    for u in uids:
        wave, sr = load_audio(dd, u)
        audio_s += len(wave) / sr
        items.append((u, psd_compress(enc.log_posteriors(wave, sr), inv.blank_id)))
    t_enc = time.perf_counter() - t0
    hyps = decode_posteriors(model, items, args.batch_size)
    t_all = time.perf_counter() - t0
    print(f"decoding: {len(hyps)} utts, {audio_s:.1f} s of audio, RTF {t_all / audio_s:.3f} "
          f"(encoder+PSD {t_enc / audio_s:.3f}, LLM {(t_all - t_enc) / audio_s:.3f}), batch {args.batch_size}")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
