"""torch.distributed support: ``torchrun --nproc-per-node N -m tokbench run ...``.

Work is sharded by whole batches (the same batches a single process forms, so every tokenizer call sees
identical inputs and rows match a one-process run exactly); each rank writes its finished items to the
shared cache, and rows plus metric states are gathered to rank 0, which alone writes the report.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owned: bool = False  # tokbench created the process group (and destroys it at the end)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def setup(device: str) -> DistContext:
    """Join the process group torchrun describes in the environment (no-op for a single process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    owned = not dist.is_initialized()
    if owned:
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local)
        dist.init_process_group(backend=backend)
    return DistContext(dist.get_rank(), dist.get_world_size(), local, owned)


def rank_device(device: str, ctx: DistContext) -> str:
    """Each rank on its own GPU: ``cuda`` becomes ``cuda:LOCAL_RANK``."""
    if ctx.active and device == "cuda":
        return f"cuda:{ctx.local_rank}"
    return device


def gather(obj: Any, ctx: DistContext) -> Optional[list]:
    """Every rank's ``obj`` on rank 0 (in rank order); None elsewhere."""
    if not ctx.active:
        return [obj]
    out = [None] * ctx.world_size if ctx.is_main else None
    dist.gather_object(obj, out, dst=0)
    return out


def broadcast(obj: Any, ctx: DistContext) -> Any:
    if not ctx.active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(ctx: DistContext) -> None:
    if ctx.active:
        dist.barrier()


def teardown(ctx: DistContext) -> None:
    """Destroy the process group tokbench created: left to interpreter exit, a rank's gloo/NCCL threads can
    abort the process after the report is written (a non-zero torchrun exit for a finished run)."""
    if ctx.owned and dist.is_initialized():
        dist.destroy_process_group()
