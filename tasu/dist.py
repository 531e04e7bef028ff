"""Data-parallel context: which process this is, and the few collectives the trainer needs.

Runs under ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` in the environment; NCCL on
CUDA, gloo on CPU) or as a plain single process, where every collective is a no-op.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs, evaluates and writes checkpoints."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def all_reduce_sum(self, tensors: Sequence[torch.Tensor]) -> None:
        """Sum ``tensors`` in place over all ranks, as one flat buffer (one collective call)."""
        if not self.enabled or not tensors:
            return
        import torch.distributed as dist

        flat = torch.cat([t.reshape(-1) for t in tensors])
        dist.all_reduce(flat)
        offset = 0
        for t in tensors:
            t.copy_(flat[offset:offset + t.numel()].view_as(t))
            offset += t.numel()

    def broadcast_(self, tensors: Sequence[torch.Tensor]) -> None:
        """Copy rank 0's values of ``tensors`` to every rank."""
        if not self.enabled:
            return
        import torch.distributed as dist

        for t in tensors:
            dist.broadcast(t, src=0)

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()


def init_distributed(ngpu: int) -> tuple[DistContext, torch.device]:
    """Set up the process group when launched by ``torchrun`` and pick this rank's device.

    ``ngpu`` > 0: CUDA, one device per rank (``cuda:<LOCAL_RANK>``), NCCL; 0: CPU, gloo.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    ctx = DistContext(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))
    if ngpu > 0:
        if not torch.cuda.is_available():
            raise SystemExit(f"--ngpu {ngpu} but torch sees no CUDA device (torch {torch.__version__})")
        if ctx.local_rank >= torch.cuda.device_count():
            raise SystemExit(f"rank {ctx.rank}: LOCAL_RANK {ctx.local_rank} but only "
                             f"{torch.cuda.device_count()} CUDA devices are visible")
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if ctx.enabled:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return ctx, device


def close_distributed() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
