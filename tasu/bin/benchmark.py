#!/usr/bin/env python3
"""Benchmark (not a test): training throughput, decoding real-time factor, peak memory.

Prints
- training: sentences/s and effective GFLOP/s over ``--train_steps`` steps of the exp's
  config (FLOPs of one step counted by ``torch.utils.flop_counter``: forward + backward
  matmuls actually executed), on simulated posteriors of the given units file, and that rate
  as a share of this machine's matmul peak in the dtype training computes in (measured here:
  the best of a few square matmuls of inputs made in that dtype);
- decoding: real-time factor of audio -> the model's encoder -> PSD -> LLM text on
  ``--n_utts`` utterances of a data dir (processing seconds / audio seconds);
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--expdir", type=Path, required=True, help="trained exp dir (config.yaml, model.pt)")
    ap.add_argument("--train_data", type=Path, required=True, help="data dir with `text`")
    ap.add_argument("--train_units", type=Path, required=True)
    ap.add_argument("--test_data", type=Path, required=True, help="data dir with wav.scp")
    ap.add_argument("--train_steps", type=int, default=10)
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
    batches = length_batches(ex, cfg.optim.batch_size, random.Random(0))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5)
    model.train()

    def step(batch):
        loss, _ = model([torch.from_numpy(sim(e.unit_ids, rng)) for e in batch], [e.answer_ids for e in batch])
        opt.zero_grad()
        loss.backward()
        opt.step()

    step(next(batches))  # warm-up
    with FlopCounterMode(display=False) as fc:
        b = next(batches)
        step(b)
    flops_per_sent = fc.get_total_flops() / len(b)
    t0, n = time.perf_counter(), 0
    for _ in range(args.train_steps):
        b = next(batches)
        step(b)
        n += len(b)
    el = time.perf_counter() - t0
    peak = matmul_peak(model.amp_dtype)
    eff = flops_per_sent * n / el / 1e9
    print(f"training: batch {cfg.optim.batch_size}, {args.train_steps} steps, {n / el:.2f} sentences/s, "
          f"{el / args.train_steps:.2f} s/step, {eff:.1f} effective GFLOP/s "
          f"({flops_per_sent / 1e9:.1f} GFLOP per sentence, autocast {model.amp_dtype or 'none'}); "
          f"matmul peak {peak:.1f} GFLOP/s in {model.amp_dtype or torch.float32}: {100 * eff / peak:.0f} % of it")

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
