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
import random
import time
import warnings
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import torch

from tasu.config import TrainConfig, save_config
from tasu.dist import DistContext
from tasu.examples import TextExample, WordLists, length_batches, shuffle_words
from tasu.fileio import atomic_torch_save
from tasu.kernels import compile_layers
from tasu.model import SpeechLLM
from tasu.modelio import build_model, load_init, trainable_state
from tasu.plot import plot_history
from tasu.projector import fit_projector, spelling_targets
from tasu.simulate import PosteriorSimulator
from tasu.sparse import upgrade_optimizer_state
from tasu.units import UnitInventory

log = logging.getLogger(__name__)


def _lr_lambda(warmup: int, total: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup)))) * 0.95 + 0.05
    return f


def micro_batches(batch: Sequence, n: int) -> list[list]:
    """Cut a batch into ``n`` interleaved parts (sizes differ by at most one; some may be empty)."""
    return [list(batch[j::n]) for j in range(n)]


class Trainer:
    def __init__(self, cfg: TrainConfig, model: SpeechLLM, simulator: PosteriorSimulator,
                 train: Sequence[TextExample], dev: list[TextExample], expdir: Path,
                 dist: DistContext | None = None, paired: Sequence[TextExample] = (),
                 word_lists: WordLists | None = None) -> None:
        self.cfg, self.model, self.sim = cfg, model, simulator
        self.word_lists = word_lists
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
            raise ValueError(f"paired_ratio={cfg.paired_ratio} but no paired examples were given "
                             "(--paired_data/--paired_feats)")
        if not 0.0 <= cfg.word_lists.share <= 1.0:
            raise ValueError(f"word_lists.share must lie in [0, 1], got {cfg.word_lists.share}")
        if cfg.word_lists.share and word_lists is None:
            raise ValueError(f"word_lists.share={cfg.word_lists.share} but no lexicon was given to draw words from")
        if o.max_batch_positions < 0:
            raise ValueError(f"optim.max_batch_positions must be >= 0, got {o.max_batch_positions}")
        if o.max_batch_positions and (self.n_paired or cfg.word_lists.share):
            raise ValueError("optim.max_batch_positions bounds batches of text-only sentences; with paired_ratio "
                             "or word_lists each batch holds a fixed number of those: set it to 0")
        if self.n_paired + self.n_word_lists < o.batch_size and not train:
            raise ValueError(f"paired_ratio={cfg.paired_ratio} leaves text-only examples in each batch, "
                             "but there are none")
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
        self.stopped_early = False  # the time budget (max_minutes) ended the run before max_steps
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
        n_lists = self.n_word_lists
        n_sent = n_text - n_lists
        text = None
        if n_sent:  # in memory, or a ShardedExamples (tasu.shards) that draws shard by shard
            draw = getattr(self.train_set, "batches", None)
            text = (draw or partial(length_batches, self.train_set))(n_sent, random.Random(seed),
                                                                      max_positions=o.max_batch_positions)
        paired = length_batches(self.paired, self.n_paired, random.Random(seed + 1)) if self.n_paired else None
        lists_rng = random.Random(seed + 2)
        while True:
            yield ((next(text) if text else []) + (self.word_lists.draw(lists_rng, n_lists) if n_lists else [])
                   + (next(paired) if paired else []))

    @property
    def n_word_lists(self) -> int:
        """Word lists in each batch (``word_lists.share`` of its text-only examples)."""
        share = self.cfg.word_lists.share
        if not share:
            return 0
        n_text = self.cfg.optim.batch_size - self.n_paired
        return min(n_text, max(1, round(share * n_text)))

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

    def update(self, batch: Sequence[TextExample], params: list[torch.nn.Parameter]
               ) -> tuple[float, bool, bool, torch.Tensor]:
        """One optimiser update on ``batch``: gradients, clipping, AdamW, the schedule's step.

        The update is skipped (gradients dropped) when the loss or the gradient norm is not
        finite; the schedule advances either way, so that a resumed run stays in step. Returns
        ``(mean loss, loss finite, updated, gradient norm)`` (tasu.bin.benchmark_scale times this).
        """
        loss, finite = self._forward_backward(batch, params)
        gnorm = torch.tensor(float("nan"))
        if finite:
            gnorm = torch.nn.utils.clip_grad_norm_(params, self.cfg.optim.grad_clip)
        updated = finite and bool(torch.isfinite(gnorm))
        if updated:
            self.opt.step()
        else:
            self.opt.zero_grad(set_to_none=True)
        with warnings.catch_warnings():
            # torch warns when the schedule steps before the first optimizer.step() (a skipped update)
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)` before")
            self.sched.step()
        return loss, finite, updated, gnorm

    def _out_of_time(self, t0: float) -> bool:
        """Whether ``max_minutes`` have passed since ``t0``: rank 0's clock decides for every rank."""
        flag = torch.tensor([float(time.time() - t0 >= 60 * self.cfg.max_minutes)],
                            device=next(self.model.parameters()).device)  # NCCL broadcasts CUDA tensors
        self.dist.broadcast_([flag])
        return bool(flag.item())

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
            loss, finite, updated, gnorm = self.update(batch, params)
            if updated:
                bad_in_row = 0
            else:  # no update; the batch still counts as a step so a resumed run stays in step
                self.bad_steps += 1
                bad_in_row += 1
                log.warning("step %d: non-finite %s, update skipped (%d in a row, %d in all)", self.step + 1,
                            "loss" if not finite else "gradient", bad_in_row, self.bad_steps)
                if bad_in_row >= cfg.max_bad_steps:
                    raise FloatingPointError(
                        f"{bad_in_row} non-finite losses/gradients in a row up to step {self.step + 1} "
                        f"(max_bad_steps={cfg.max_bad_steps}); lower optim.lr, or check the training data")
            self.step += 1
            sents += len(batch)
            toks += sum(len(e.answer_ids) for e in batch)
            if finite:
                win.append(loss)
            bar.update(1)
            if self.step % cfg.log_interval == 0 or self.step == o.max_steps:
                el = time.time() - t0
                rec = {"step": self.step, "loss": sum(win) / len(win) if win else float("nan"),
                       "lr": self.sched.get_last_lr()[-1], "grad_norm": float(gnorm), "sent_per_s": sents / el}
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
            out_of_time = cfg.max_minutes > 0 and self._out_of_time(t0)
            if self.step % cfg.save_interval == 0 or self.step == o.max_steps or out_of_time:
                self.save()
            if out_of_time and self.step < o.max_steps:
                self.stopped_early = True
                if self.dist.is_main:
                    log.warning("time budget of %g min reached after step %d of %d: stopped, model.pt is that "
                                "step's weights (a re-run resumes towards step %d)", cfg.max_minutes, self.step,
                                o.max_steps, o.max_steps)
                break
        bar.close()
        if not self.dist.is_main:
            return
        atomic_torch_save(trainable_state(self.model), self.expdir / "model.pt")
        plot_history(self.history, self.expdir / "loss.png")
        (self.expdir / "history.json").write_text(json.dumps(self.history, indent=1))
        log.info("done: %d steps (%d skipped for non-finite loss/gradient), model at %s", self.step,
                 self.bad_steps, self.expdir / "model.pt")


def prepare(cfg: TrainConfig, inventory: UnitInventory, spellings: dict[str, dict[str, int]] | None,
            expdir: Path, device: torch.device, write: bool = True) -> SpeechLLM:
    """Build the model, warm-start the projector, and record config + units in ``expdir``
    (``write``: only one rank of a data-parallel run does)."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, inventory, device)
    if cfg.init:
        load_init(model, cfg.init, inventory, cfg.llm, cfg.seed)
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
    if cfg.compile:
        log.info("compile: %d decoder layers (torch.compile, dynamic shapes; compiled at the first step)",
                 compile_layers(model.llm))
    expdir.mkdir(parents=True, exist_ok=True)
    if write:
        save_config(cfg, expdir / "config.yaml")
        inventory.to_file(expdir / "units.txt")
    return model
