"""Distributed data parallel (DDP) for `torchrun --nproc_per_node=N rdfer train ...`: set-up and
every collective the package uses (the engine's gathers of per-sample results, the loss's
gather of per-sample rows for its global ranking).

Without torchrun (no RANK/WORLD_SIZE in the environment) everything here is a
no-op and the code runs in one process.
"""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device_kind: str) -> DistInfo:
    """Start the process group when launched by torchrun (NCCL on GPU, gloo on CPU)."""
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_kind == "cuda" else "gloo")
    info = DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    if device_kind == "cuda":
        torch.cuda.set_device(info.local_rank)
    return info


def shutdown_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def world() -> tuple[int, int]:
    """(rank, world size) of the initialised process group; (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_objects(obj, info: DistInfo) -> list:
    """Every rank's picklable `obj`, in rank order (a one-element list without DDP)."""
    if not info.enabled:
        return [obj]
    gathered = [None] * info.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def gather_rows(rows: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Every rank's rows (B_r, K) concatenated in rank order, and where this rank's start.

    A tensor collective (no pickling, on the rows' device), for the loss inside the
    training step; `gather_objects` is for results after a loop. Uses
    `dist.all_gather` with lists of equal-sized tensors (gloo supports it); batches
    of unequal size are padded, then trimmed.
    """
    rank, size_of_world = world()
    if size_of_world == 1:
        return rows, 0
    size = torch.tensor([rows.shape[0]], dtype=torch.long, device=rows.device)
    sizes = [torch.zeros_like(size) for _ in range(size_of_world)]
    dist.all_gather(sizes, size)
    sizes = [int(s.item()) for s in sizes]
    padded = rows.new_zeros((max(sizes), rows.shape[1]))
    padded[: rows.shape[0]] = rows
    gathered = [torch.zeros_like(padded) for _ in range(size_of_world)]
    dist.all_gather(gathered, padded)
    everything = torch.cat([g[:n] for g, n in zip(gathered, sizes)])  # (sum B_r, K)
    return everything, sum(sizes[:rank])


def broadcast_object(obj, info: DistInfo):
    """Rank 0's `obj` on every rank."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()
