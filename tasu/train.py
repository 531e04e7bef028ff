"""Text-only TASU training: simulated posteriors -> projector (+ LoRA) -> LLM loss.

The trainer owns the loop (batching, optimiser, schedule, checkpoints, logs); model details
stay in :mod:`tasu.model`. Checkpoints hold the trainable weights (projector + adapters),
the optimiser, scheduler and RNG states and the step, written atomically; a re-run resumes
from the newest one.

Data parallelism (``torchrun``, see :mod:`tasu.dist`): ``optim.batch_size`` is the global
batch. Every rank draws the same global batch and simulates its posteriors with the same
seeded generators (cheap next to the LLM), then runs forward/backward on its own share
only: the batch is cut into ``ranks x grad_accum`` micro-batches, rank ``r`` takes
micro-batches ``r*grad_accum ... (r+1)*grad_accum - 1``. Each micro-batch loss is weighted by
its share of the batch's answer tokens, gradients are summed over ranks (one all-reduce),
so an update equals the single-process update of the same global batch, whatever the
number of ranks. Rank 0 alone logs, evaluates and writes checkpoints.
"""
from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from tasu.config import TrainConfig, save_config
from tasu.dist import DistContext
from tasu.llm import PromptTemplate, load_llm, set_template_mode, torch_dtype
from tasu.model import SpeechLLM
from tasu.projector import build_projector, fit_projector, projector_options, spelling_targets
from tasu.simulate import PosteriorSimulator
from tasu.sparse import upgrade_optimizer_state, upgrade_state_dict
from tasu.units import UnitInventory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TextExample:
    """One training example: units to simulate posteriors from (text-only), or real posteriors (paired)."""
    uid: str
    unit_ids: np.ndarray     # encoder unit ids, <wb> between words (empty for a paired example)
    answer_ids: tuple[int, ...]  # answer tokens + end token
    text: str = ""
    feats: np.ndarray | None = None  # paired: PSD-compressed posteriors [T', V] of the utterance's audio
    template: PromptTemplate | None = None  # the prompt of its task (None: the model's own, ASR)
    target: str = "text"     # the data-dir file the answer comes from (word shuffling: `text` only)

    @property
    def length(self) -> int:
        """Rows the projector gets: units to simulate, or real posterior frames."""
        return len(self.unit_ids) if self.feats is None else self.feats.shape[0]


def shuffle_words(ex: TextExample, wb_id: int | None, tokenizer, eos_id: int,
                  rng: np.random.Generator) -> TextExample:
    """The same words in a random order, in both the units and the answer.

    Returns ``ex`` unchanged when its unit groups and words do not pair up one to one
    (a word without pronunciation) or it has no word boundaries.
    """
    words = ex.text.split()
    if wb_id is None or len(words) < 2 or ex.feats is not None or ex.target != "text":
        return ex
    groups = np.split(ex.unit_ids, np.flatnonzero(ex.unit_ids == wb_id))
    groups = [g[g != wb_id] for g in groups]
    if len(groups) != len(words):
        return ex
    order = rng.permutation(len(words))
    ids = np.concatenate([np.r_[groups[i], wb_id] for i in order])[:-1]
    text = " ".join(words[i] for i in order)
    ans = tuple(tokenizer(text, add_special_tokens=False)["input_ids"]) + (eos_id,)
    return TextExample(ex.uid, ids, ans, text, template=ex.template)


def check_units(units: dict[str, str], text: dict[str, str], inventory: UnitInventory, path: Path) -> None:
    """Every utterance of a units file has a transcript and only inventory units; errors say
    ``file:line`` (checked before the LLM is loaded)."""
    from tasu.data import read_table_lines

    index = inventory.index()
    lines = {t.key: t.line for t in read_table_lines(path) if t.key}
    for uid, u in units.items():
        if uid not in text:
            raise ValueError(f"{path}:{lines.get(uid, '?')}: utterance {uid!r} has units but no transcript")
        bad = next((x for x in u.split() if x not in index), None)
        if bad is not None:
            raise ValueError(f"{path}:{lines.get(uid, '?')}: utterance {uid!r}: unit {bad!r} is not in the "
                             f"inventory of the encoder ({inventory.size} units)")


def make_examples(units: dict[str, str], text: dict[str, str], inventory: UnitInventory,
                  tokenizer, eos_id: int, source: str = "units") -> list[TextExample]:
    """Pair unit strings with answer tokens; unknown units are an error naming the utterance."""
    index = inventory.index()
    out = []
    for uid, u in units.items():
        if uid not in text:
            raise ValueError(f"{source}: utterance {uid} has units but no transcript")
        try:
            ids = np.array([index[x] for x in u.split()], dtype=np.int64)
        except KeyError as e:
            raise ValueError(f"{source}: utterance {uid}: unit {e.args[0]!r} is not in the inventory") from None
        ans = tuple(tokenizer(text[uid], add_special_tokens=False)["input_ids"]) + (eos_id,)
        out.append(TextExample(uid, ids, ans, text[uid]))
    return out


def make_paired_examples(feats: dict[str, np.ndarray], text: dict[str, str], n_units: int,
                         tokenizer, eos_id: int, source: str = "feats.scp") -> tuple[list[TextExample], list[str]]:
    """Pair real PSD posteriors (stage 1) with answer tokens.

    Returns the examples and the ids of ``text`` without posteriors (skipped in stage 1:
    the caller logs their count). Posteriors of another width than the inventory, or
    without a transcript, are errors naming the utterance.
    """
    out = []
    for uid, m in feats.items():
        if uid not in text:
            raise ValueError(f"{source}: utterance {uid} has posteriors but no transcript")
        if m.ndim != 2 or m.shape[1] != n_units or m.shape[0] == 0:
            raise ValueError(f"{source}: utterance {uid}: posteriors of shape {tuple(m.shape)}, "
                             f"expected [frames > 0, {n_units}] (the encoder's inventory)")
        ans = tuple(tokenizer(text[uid], add_special_tokens=False)["input_ids"]) + (eos_id,)
        out.append(TextExample(uid, np.zeros(0, dtype=np.int64), ans, text[uid], np.asarray(m, dtype=np.float32)))
    return out, sorted(set(text) - set(feats))


def make_task_examples(units: dict[str, str], answers: dict[str, str], inventory: UnitInventory, tokenizer,
                       eos_id: int, templates: Sequence[PromptTemplate], target: str,
                       source: str = "units") -> list[TextExample]:
    """Text-only examples of one task: the units of each utterance with a ``target`` answer,
    asked with the task's prompts in turn (example ``i`` gets prompt ``i mod #prompts``)."""
    exs = make_examples({u: units[u] for u in answers if u in units}, answers, inventory, tokenizer, eos_id, source)
    return [TextExample(e.uid, e.unit_ids, e.answer_ids, e.text, template=templates[i % len(templates)], target=target)
            for i, e in enumerate(exs)]


def length_batches(examples: Sequence[TextExample], batch_size: int, rng: random.Random,
                   bucket: int = 50) -> Iterator[list[TextExample]]:
    """Endless shuffled batches of similar length (little padding), epoch after epoch."""
    if not examples:
        raise ValueError("no examples to draw batches from")
    while True:
        order = list(examples)
        rng.shuffle(order)
        batches = []
        for i in range(0, len(order), batch_size * bucket):
            chunk = sorted(order[i:i + batch_size * bucket], key=lambda e: e.length)
            batches += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
        rng.shuffle(batches)
        yield from batches


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.named_parameters() if v.requires_grad}


def atomic_torch_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def fast_bf16(device: torch.device) -> bool:
    """Whether ``device`` has native bfloat16 matmul kernels.

    CUDA: what ``torch.cuda.is_bf16_supported`` says. CPU: AVX512-BF16 or AMX; without them
    (AVX2-only x86 such as AMD Zen 3, many cloud VMs) torch emulates bf16 matmuls about 50-100x
    slower than float32 (0.8 against 158 GFLOP/s measured on a 2-core EPYC), so autocast there
    would make training and decoding crawl.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return any(getattr(torch.cpu, probe, lambda: False)()
                   for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return False


AMP_CHOICES = ("auto", "bf16", "none")


def llm_dtypes(cfg: TrainConfig, device: torch.device) -> tuple[torch.dtype | None, torch.dtype]:
    """``(autocast dtype or None, dtype of the frozen LLM weights)`` from ``amp`` and ``llm_dtype``.

    ``amp: auto`` is bf16 autocast where the device has native bf16 kernels (:func:`fast_bf16`)
    and none elsewhere; ``amp: bf16`` forces it (with a warning where it is slow).
    ``llm_dtype: auto`` keeps the frozen weights in bf16 under bf16 autocast (no per-step casts)
    and in float32 otherwise. float16 weights need a GPU and no bf16 autocast.
    """
    if cfg.amp not in AMP_CHOICES:
        raise ValueError(f"amp must be one of {', '.join(AMP_CHOICES)}, got {cfg.amp!r}")
    fast = cfg.amp != "none" and fast_bf16(device)
    if cfg.amp == "bf16" and not fast:
        log.warning("amp: bf16 on a %s without native bf16 kernels: the LLM will run many times slower than "
                    "in float32; use amp: auto (bf16 only where it is fast) or amp: none", device.type)
    amp = torch.bfloat16 if cfg.amp == "bf16" or (cfg.amp == "auto" and fast) else None
    log.info("amp: %s on %s -> %s autocast", cfg.amp, device.type, "bf16" if amp is not None else "no")
    if cfg.llm_dtype == "auto":
        return amp, torch.bfloat16 if amp is not None else torch.float32
    weights = torch_dtype(cfg.llm_dtype)
    if weights == torch.float16 and device.type == "cpu":
        raise ValueError("llm_dtype: float16 needs a GPU (--ngpu 1): CPU half-precision kernels are slow or "
                         "missing; on the CPU use bfloat16 or float32")
    if weights == torch.float16 and amp is not None:
        raise ValueError("llm_dtype: float16 with amp: bf16 mixes two 16-bit types; use amp: none "
                         "(the LLM computes in float16) or llm_dtype: bfloat16")
    return amp, weights


# config fields of LLMs whose forward changes the LM head's logits (SpeechLLM.forward, which
# computes logits at the answer positions only, would train on other logits than they decode with)
LOGIT_TRANSFORMS = {"final_logit_softcapping": None, "logit_scale": 1.0, "logits_scaling": 1.0}


def check_plain_logits(config, name: str) -> None:
    """An error for LLMs that soft-cap or scale their logits (Gemma-2/3, Cohere, Granite)."""
    for key, neutral in LOGIT_TRANSFORMS.items():
        value = getattr(config, key, neutral)
        if value is not None and value != neutral:
            raise ValueError(f"LLM {name!r}: its config sets {key}={value}, a change of the logits that "
                             "tasu's training loss does not apply; this model family is not supported")


def build_model(cfg: TrainConfig, inventory: UnitInventory, device: torch.device) -> SpeechLLM:
    """LLM (+ LoRA) and a freshly initialised projector, assembled into a SpeechLLM."""
    if cfg.finetune not in ("lora", "full", "none"):
        raise ValueError(f"finetune must be lora, full or none, got {cfg.finetune!r}")
    amp, weights = llm_dtypes(cfg, device)
    llm, tok = load_llm(cfg.llm, cfg.lora if cfg.finetune == "lora" else None, weights, full=cfg.finetune == "full")
    check_plain_logits(llm.config, cfg.llm)
    set_template_mode(tok, cfg.template, cfg.llm)  # plain: task prompts are plain too
    emb = llm.get_input_embeddings().weight  # the projector writes vectors of its size; some kinds read it
    proj = build_projector(cfg.projector.kind, inventory.size, emb.shape[1], embedding=emb,
                           **projector_options(cfg.projector, inventory.units, tok))
    template = PromptTemplate.build(tok, cfg.task_prompt, cfg.system_prompt, mode=cfg.template)
    pad = tok.pad_token_id if tok.pad_token_id is not None else template.eos_id  # GPT-2 style: no pad token
    model = SpeechLLM(llm, proj, template, pad, amp).to(device)
    model.tokenizer = tok
    return model


def load_trained_files(config: Path, units: Path, weights: Path, device: torch.device,
                       base: Path | None = None) -> tuple[SpeechLLM, TrainConfig, UnitInventory]:
    """Rebuild a trained SpeechLLM from its config, unit inventory and trainable weights.

    A relative ``llm`` path in the config that exists under ``base`` (an unpacked model
    dir holding its LLM) is taken from there.
    """
    from tasu.config import load_config

    for path in (config, units, weights):
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: missing")
    cfg = load_config(config)
    if base is not None and not Path(cfg.llm).is_absolute() and (Path(base) / cfg.llm).exists():
        cfg.llm = str(Path(base) / cfg.llm)
    inventory = UnitInventory.from_file(units)
    if cfg.amp == "bf16":
        # precision at inference is the machine's choice, not the model's (its trainable weights
        # are float32): bf16 where the device is fast at it, float32 elsewhere (llm_dtypes)
        cfg.amp = "auto"
    model = build_model(cfg, inventory, device)
    state = torch.load(weights, map_location=device)
    state = upgrade_state_dict(state.get("model", state), model)
    check_weights_fit(model, state, str(weights), cfg.llm)
    missing = set(trainable_state(model)) - set(state)
    if missing:
        raise RuntimeError(f"{weights}: lacks {len(missing)} trainable tensors, e.g. {sorted(missing)[0]}")
    model.load_state_dict(state, strict=False)  # copies (and casts 16-bit packed weights)
    model.eval()
    return model, cfg, inventory


def load_trained(expdir: Path, device: torch.device, checkpoint: str = "model.pt") -> tuple[SpeechLLM, TrainConfig, UnitInventory]:
    """Rebuild a trained SpeechLLM from an exp dir (config.yaml, units.txt, model.pt)."""
    for name in ("config.yaml", "units.txt", checkpoint):
        if not (expdir / name).is_file():
            raise FileNotFoundError(f"{expdir / name}: missing; is {expdir} a finished training dir?")
    return load_trained_files(expdir / "config.yaml", expdir / "units.txt", expdir / checkpoint, device)


def _lr_lambda(warmup: int, total: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup)))) * 0.95 + 0.05
    return f


def plot_history(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    tr = [h for h in history if "loss" in h]
    ax.plot([h["step"] for h in tr], [h["loss"] for h in tr], label="train")
    dv = [h for h in history if "dev_loss" in h]
    if dv:
        ax.plot([h["step"] for h in dv], [h["dev_loss"] for h in dv], "o-", label="dev")
    ax.set_xlabel("step")
    ax.set_ylabel("answer-token cross-entropy")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


def micro_batches(batch: Sequence, n: int) -> list[list]:
    """Cut a batch into ``n`` interleaved parts (sizes differ by at most one; some may be empty)."""
    return [list(batch[j::n]) for j in range(n)]


class Trainer:
    def __init__(self, cfg: TrainConfig, model: SpeechLLM, simulator: PosteriorSimulator,
                 train: list[TextExample], dev: list[TextExample], expdir: Path,
                 dist: DistContext | None = None, paired: Sequence[TextExample] = ()) -> None:
        self.cfg, self.model, self.sim = cfg, model, simulator
        self.train_set, self.dev_set, self.expdir = train, dev, expdir
        self.paired = list(paired)
        self.dist = dist or DistContext()
        self.ckdir = expdir / "checkpoints"
        self.ckdir.mkdir(parents=True, exist_ok=True)
        o = cfg.optim
        parts = self.dist.world_size * o.grad_accum
        if o.grad_accum < 1 or o.batch_size % parts:
            raise ValueError(f"optim.batch_size={o.batch_size} must be a multiple of ranks x optim.grad_accum "
                             f"= {self.dist.world_size} x {o.grad_accum}")
        self.n_paired = round(o.batch_size * cfg.paired_ratio)
        if not 0.0 <= cfg.paired_ratio <= 1.0:
            raise ValueError(f"paired_ratio must lie in [0, 1], got {cfg.paired_ratio}")
        if self.n_paired and not self.paired:
            raise ValueError(f"paired_ratio={cfg.paired_ratio} but no paired examples were given (--paired_data/--paired_feats)")
        if self.n_paired < o.batch_size and not train:
            raise ValueError(f"paired_ratio={cfg.paired_ratio} leaves text-only examples in each batch, but there are none")
        # every rank starts from rank 0's trainable weights (as DistributedDataParallel does)
        self.dist.broadcast_([p.data for p in model.parameters() if p.requires_grad])
        groups = [
            {"params": [p for p in model.projector.parameters()], "lr": o.projector_lr},
            {"params": [p for n, p in model.llm.named_parameters() if p.requires_grad], "lr": o.lr},
        ]
        self.opt = torch.optim.AdamW([g for g in groups if g["params"]], weight_decay=o.weight_decay)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, _lr_lambda(o.warmup_steps, o.max_steps))
        self.step = 0
        self.bad_steps = 0  # steps whose update was skipped (non-finite loss or gradient)
        self.history: list[dict] = []
        self.py_rng = random.Random(cfg.seed)
        self.np_rng = np.random.default_rng(cfg.seed)
        self.sparse_inputs = self._use_sparse()

    # -- checkpoints --------------------------------------------------------------------
    def save(self) -> Path | None:
        """Write ``checkpoints/step<N>.pt`` (rank 0 only) and keep the newest ``keep_checkpoints``."""
        if not self.dist.is_main:
            return None
        path = self.ckdir / f"step{self.step:07d}.pt"
        atomic_torch_save({
            "model": trainable_state(self.model), "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(), "step": self.step, "history": self.history,
            "bad_steps": self.bad_steps,
            "py_rng": self.py_rng.getstate(), "np_rng": self.np_rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
        }, path)
        old = sorted(self.ckdir.glob("step*.pt"))[:-self.cfg.keep_checkpoints]
        for p in old:
            p.unlink()
        return path

    def _newest_checkpoint(self) -> tuple[Path, dict] | None:
        """The newest readable checkpoint; damaged ones (a disk full, a copy cut short) are
        logged and passed over, and if every one is damaged that is an error."""
        cks = sorted(self.ckdir.glob("step*.pt"))
        for path in reversed(cks):
            try:
                ck = torch.load(path, map_location="cpu", weights_only=False)
                if not isinstance(ck, dict) or not {"model", "optimizer", "scheduler", "step"} <= set(ck):
                    raise ValueError("not a tasu training checkpoint")
                return path, ck
            except Exception as e:  # torch.load raises many kinds on damaged files
                log.warning("%s: damaged checkpoint, passed over (%s: %s)", path, type(e).__name__, e)
        if cks:
            raise ValueError(f"{self.ckdir}: every checkpoint is damaged ({', '.join(p.name for p in cks)}); "
                             "delete them to train from the start")
        return None

    def maybe_resume(self) -> bool:
        t0 = time.time()
        found = self._newest_checkpoint()
        if found is None:
            return False
        path, ck = found
        self.model.load_state_dict(ck["model"], strict=False)
        self.opt.load_state_dict(ck["optimizer"])
        upgrade_optimizer_state(self.opt, ck["model"], self.model)  # checkpoints from before UnitLinear
        self.sched.load_state_dict(ck["scheduler"])
        self.step, self.history = ck["step"], ck["history"]
        self.bad_steps = ck.get("bad_steps", 0)
        self.py_rng.setstate(ck["py_rng"])
        self.np_rng.bit_generator.state = ck["np_rng"]
        torch.set_rng_state(ck["torch_rng"])
        log.info("resumed from %s (step %d) in %.2f s", path, self.step, time.time() - t0)
        return True

    # -- loop ---------------------------------------------------------------------------
    def _use_sparse(self) -> bool:
        """Whether simulated rows go to the projector sparse (``sim_format``; see TrainConfig)."""
        fmt = self.cfg.sim_format
        if fmt not in ("auto", "dense", "sparse"):
            raise ValueError(f"sim_format must be auto, dense or sparse, got {fmt!r}")
        takes = getattr(self.model.projector, "accepts_sparse", False)
        if fmt == "sparse" and not takes:
            raise ValueError(f"sim_format=sparse, but projector {self.cfg.projector.kind!r} takes dense rows only")
        return takes and (fmt == "sparse" or (fmt == "auto" and self.sim.V > 1024))

    def _feats(self, batch: Sequence[TextExample], rng: np.random.Generator) -> list:
        """Projector inputs: real posteriors of paired examples, simulated ones of the others."""
        if self.sparse_inputs:
            return [torch.from_numpy(e.feats) if e.feats is not None else self.sim(e.unit_ids, rng, sparse=True)
                    for e in batch]
        return [torch.from_numpy(e.feats if e.feats is not None else self.sim(e.unit_ids, rng)) for e in batch]

    def batches(self) -> Iterator[list[TextExample]]:
        """Global batches: ``batch_size - n_paired`` text-only examples then ``n_paired`` paired
        ones, each part from its own seeded stream (text-only runs keep their exact stream)."""
        o, seed = self.cfg.optim, self.cfg.seed
        n_text = o.batch_size - self.n_paired
        text = length_batches(self.train_set, n_text, random.Random(seed)) if n_text else None
        paired = length_batches(self.paired, self.n_paired, random.Random(seed + 1)) if self.n_paired else None
        while True:
            yield (next(text) if text else []) + (next(paired) if paired else [])

    @torch.no_grad()
    def dev_loss(self) -> float:
        """Answer-token loss on the dev sentences with full simulation noise (fixed seed)."""
        self.model.eval()
        scale, self.sim.scale = self.sim.scale, 1.0
        rng = np.random.default_rng(12345)
        tot, n = 0.0, 0
        dev = self.dev_set[:self.cfg.dev_utts]
        for i in range(0, len(dev), self.cfg.optim.batch_size):
            b = dev[i:i + self.cfg.optim.batch_size]
            loss, k = self.model(self._feats(b, rng), [e.answer_ids for e in b])
            tot, n = tot + float(loss) * k, n + k
        self.sim.scale = scale
        self.model.train()
        return tot / max(n, 1)

    def _forward_backward(self, batch: Sequence[TextExample], params: list[torch.nn.Parameter]) -> tuple[float, bool]:
        """This rank's share of one update: gradients of the global mean answer-token loss.

        Returns the batch's mean loss and whether it was finite on every rank. All ranks
        simulate the whole batch (same generator, same draws), then keep their own share.
        """
        o, d = self.cfg.optim, self.dist
        feats = self._feats(batch, self.np_rng)
        n = d.world_size * o.grad_accum
        mine = range(d.rank * o.grad_accum, (d.rank + 1) * o.grad_accum)
        ex_parts, feat_parts = micro_batches(batch, n), micro_batches(feats, n)
        total_tok = sum(len(e.answer_ids) for e in batch)
        self.opt.zero_grad(set_to_none=True)
        loss_sum, finite = 0.0, True
        for j in mine:
            if not ex_parts[j]:
                continue
            tpls = [e.template for e in ex_parts[j]]  # all None (one task): the model's own prompt
            loss, ntok = self.model(feat_parts[j], [e.answer_ids for e in ex_parts[j]],
                                    templates=None if all(t is None for t in tpls) else
                                    [t or self.model.template for t in tpls])
            if not torch.isfinite(loss):
                finite = False
                break
            (loss * (ntok / total_tok) if n > 1 else loss).backward()
            loss_sum += float(loss.detach()) * ntok
        if d.enabled:  # sum loss, finiteness and gradients over ranks: one collective
            grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
            stats = torch.tensor([loss_sum, float(not finite)], dtype=grads[0].dtype, device=grads[0].device)
            d.all_reduce_sum([stats] + grads)
            for p, g in zip(params, grads):
                p.grad = g
            loss_sum, finite = float(stats[0]), bool(stats[1] == 0)
        return loss_sum / max(total_tok, 1), finite

    def run(self) -> None:
        from tqdm import tqdm

        cfg, o = self.cfg, self.cfg.optim
        self.maybe_resume()
        # fast-forward the batch stream so a resumed run sees the batches it would have seen
        batches = self.batches()
        for _ in range(self.step):
            next(batches)
        self.model.train()
        params = [p for p in self.model.parameters() if p.requires_grad]
        bar = tqdm(total=o.max_steps, initial=self.step, desc="train", unit="step", mininterval=10,
                   disable=not self.dist.is_main)
        bad_in_row = 0
        t0, sents, toks, win = time.time(), 0, 0, []
        while self.step < o.max_steps:
            batch = next(batches)
            if cfg.noise_warmup_steps > 0:
                self.sim.scale = min(1.0, self.step / cfg.noise_warmup_steps)
            if cfg.shuffle_words > 0:
                batch = [shuffle_words(e, self.sim.wb_id, self.model.tokenizer, self.model.template.eos_id,
                                       self.np_rng) if e.feats is None and self.np_rng.random() < cfg.shuffle_words
                         else e for e in batch]
            loss, finite = self._forward_backward(batch, params)
            gnorm = torch.tensor(float("nan"))
            if finite:
                gnorm = torch.nn.utils.clip_grad_norm_(params, o.grad_clip)
            if finite and torch.isfinite(gnorm):
                self.opt.step()
                bad_in_row = 0
            else:  # no update; the batch still counts as a step so a resumed run stays in step
                self.bad_steps += 1
                bad_in_row += 1
                log.warning("step %d: non-finite %s, update skipped (%d in a row, %d in all)", self.step + 1,
                            "loss" if not finite else "gradient", bad_in_row, self.bad_steps)
                self.opt.zero_grad(set_to_none=True)
                if bad_in_row >= cfg.max_bad_steps:
                    raise FloatingPointError(
                        f"{bad_in_row} non-finite losses/gradients in a row up to step {self.step + 1} "
                        f"(max_bad_steps={cfg.max_bad_steps}); lower optim.lr, or check the training data")
            self.sched.step()
            self.step += 1
            sents += len(batch)
            toks += sum(len(e.answer_ids) for e in batch)
            if finite:
                win.append(loss)
            bar.update(1)
            if self.step % cfg.log_interval == 0 or self.step == o.max_steps:
                el = time.time() - t0
                rec = {"step": self.step, "loss": sum(win) / len(win) if win else float("nan"), "lr": self.sched.get_last_lr()[-1],
                       "grad_norm": float(gnorm), "sent_per_s": sents / el}
                self.history.append(rec)
                if self.dist.is_main:
                        log.info("step %d loss %.4f lr %.2e gnorm %.2f %.2f sent/s", self.step, rec["loss"],
                             rec["lr"], rec["grad_norm"], rec["sent_per_s"])
                win = []
            if self.dev_set and self.dist.is_main and (self.step % cfg.dev_interval == 0 or self.step == o.max_steps):
                d = self.dev_loss()
                self.history.append({"step": self.step, "dev_loss": d})
                log.info("step %d dev_loss %.4f", self.step, d)
                plot_history(self.history, self.expdir / "loss.png")
            if self.step % cfg.save_interval == 0 or self.step == o.max_steps:
                self.save()
        bar.close()
        if not self.dist.is_main:
            return
        atomic_torch_save(trainable_state(self.model), self.expdir / "model.pt")
        plot_history(self.history, self.expdir / "loss.png")
        (self.expdir / "history.json").write_text(json.dumps(self.history, indent=1))
        log.info("done: %d steps (%d skipped for non-finite loss/gradient), model at %s", self.step,
                 self.bad_steps, self.expdir / "model.pt")


def check_weights_fit(model: SpeechLLM, state: dict[str, torch.Tensor], where: str, llm: str) -> None:
    """Trained weights whose projector output size is not the LLM's embedding size (weights of a
    model built on another LLM) are an error saying so, before ``load_state_dict`` fails obscurely."""
    dim = model.base.get_input_embeddings().weight.shape[1]
    for k, p in sorted(model.named_parameters(), key=lambda kv: not kv[0].startswith("projector.")):
        theirs = state.get(k)
        if not p.requires_grad or not isinstance(theirs, torch.Tensor) or theirs.shape == p.shape:
            continue
        if theirs.dim() == p.dim():
            sizes = {int(b) for a, b in zip(p.shape, theirs.shape) if a == dim and b != dim}
            if sizes:
                kind = "projector output" if k.startswith("projector.") else "LoRA adapter"
                raise ValueError(f"{where}: {kind} size {sizes.pop()} does not match the embedding size {dim} "
                                 f"of the LLM {llm!r} ({k}: {tuple(theirs.shape)}, this model {tuple(p.shape)}); "
                                 "the weights were trained with another LLM: set llm: to that one")


def load_init(model: SpeechLLM, source: str, inventory: UnitInventory, llm: str = "") -> None:
    """Start from another model's trainable weights (an exp dir, a packed zip or dir).

    Its unit inventory must be this one, and it must hold every trainable tensor of
    ``model`` with the same shape (same projector and LoRA settings).
    """
    from tasu.zoo import ZooError, read_weights, unpack

    try:
        src = unpack(source)
        state = upgrade_state_dict(read_weights(src.model_file), model)
    except ZooError as e:
        raise ValueError(f"init {source}: {e}") from None
    theirs = UnitInventory.from_file(src.units_file)
    if theirs.units != inventory.units:
        raise ValueError(f"init {source}: its unit inventory ({src.units_file}, {theirs.size} units) "
                         f"differs from this encoder's ({inventory.size} units)")
    check_weights_fit(model, state, f"init {src.model_file}", llm)
    mine = trainable_state(model)
    missing = sorted(set(mine) - set(state))
    if missing:
        raise ValueError(f"init {src.model_file}: lacks {len(missing)} trainable tensors, e.g. {missing[0]} "
                         "(another projector or LoRA setting?)")
    for k, v in mine.items():
        if state[k].shape != v.shape:
            raise ValueError(f"init {src.model_file}: {k} has shape {tuple(state[k].shape)}, this model "
                             f"{tuple(v.shape)} (another projector or LoRA setting?)")
    model.load_state_dict({k: state[k] for k in mine}, strict=False)
    log.info("initialised %d trainable tensors from %s", len(mine), src.model_file)


def prepare(cfg: TrainConfig, inventory: UnitInventory, spellings: dict[str, dict[str, int]] | None,
            expdir: Path, device: torch.device, write: bool = True) -> SpeechLLM:
    """Build the model, warm-start the projector, and record config + units in ``expdir``
    (``write``: only one rank of a data-parallel run does)."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, inventory, device)
    if cfg.init:
        load_init(model, cfg.init, inventory, cfg.llm)
    elif cfg.projector.init == "spelling":
        if not spellings:
            raise ValueError("projector.init=spelling needs unit spellings (a lexicon with letters)")
        emb = model.base.get_input_embeddings().weight.detach().cpu()
        targets, has = spelling_targets(inventory.units, spellings, model.tokenizer, emb,
                                        inventory.word_boundary)
        rel = fit_projector(model.projector.cpu(), targets, has, steps=cfg.projector.init_steps, seed=cfg.seed)
        model.projector.to(device)
        log.info("projector warm start: %d units with spelling targets, relative MSE %.3f", int(has.sum()), rel)
    elif cfg.projector.init != "random":
        raise ValueError(f"projector.init must be 'spelling' or 'random', got {cfg.projector.init!r}")
    expdir.mkdir(parents=True, exist_ok=True)
    if write:
        save_config(cfg, expdir / "config.yaml")
        inventory.to_file(expdir / "units.txt")
    return model
