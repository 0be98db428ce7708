"""torchrun / DDP support: one process per GPU (or CPU process with gloo), rank 0 writes.

Launch: ``torchrun --nproc_per_node N -m segrt train --config ...``. ``batch_size`` is per
process, so the global batch is ``N x batch_size``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    local_rank: int = 0
    world: int = 1

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup() -> Dist:
    """Joins the process group when started by torchrun (WORLD_SIZE > 1); no-op otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    d = Dist(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")), world)
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(d.local_rank)
        dist.init_process_group(backend)
    return d


def teardown(d: Dist) -> None:
    if d.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def wrap(net: torch.nn.Module, d: Dist, device: torch.device) -> torch.nn.Module:
    """DDP-wrapped ``net`` (SyncBatchNorm on CUDA, so BN sees the global batch)."""
    if not d.enabled:
        return net
    if device.type == "cuda":
        net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
        return torch.nn.parallel.DistributedDataParallel(net, device_ids=[device.index])
    return torch.nn.parallel.DistributedDataParallel(net)
