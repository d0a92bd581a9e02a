"""torch.distributed (DDP) for training under `torchrun`; a single process when not launched by it."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler, SequentialSampler

from ..devices import resolve_device


@dataclass(frozen=True)
class DistContext:
    """Where this process sits: rank among world_size processes, and its device."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Only the main process writes files and reports progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str | torch.device = "auto") -> DistContext:
    """Join the process group `torchrun` describes (env RANK, WORLD_SIZE, LOCAL_RANK), or run alone.

    Under torchrun each process takes GPU LOCAL_RANK (NCCL) when CUDA is there, else the CPU (gloo).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext(rank=0, world_size=1, device=resolve_device(device))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size(), device=dev)


def wrap_model(model: nn.Module, ctx: DistContext) -> nn.Module:
    """The model for the training step: DDP-wrapped when distributed."""
    if not ctx.distributed:
        return model
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def make_loader(dataset: Dataset, batch_size: int, ctx: DistContext, seed: int, shuffle: bool = True) -> DataLoader:
    """Batches of this rank's share of the dataset; call `set_epoch` on its sampler every epoch."""
    if ctx.distributed:
        sampler = DistributedSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=shuffle, seed=seed)
    elif shuffle:
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
    else:
        sampler = SequentialSampler(dataset)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler)


def set_epoch(loader: DataLoader, epoch: int, seed: int) -> None:
    """Reshuffle for `epoch`, identically across ranks and across resumes."""
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)
    elif isinstance(loader.sampler, RandomSampler):
        loader.sampler.generator.manual_seed(seed + epoch)


def global_mean(total: float, count: int, ctx: DistContext) -> float:
    """Mean of a sum over all ranks."""
    if not ctx.distributed:
        return total / max(count, 1)
    values = torch.tensor([total, float(count)], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(values)
    return float(values[0] / values[1].clamp(min=1))


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (after rank 0 writes files)."""
    if ctx.distributed:
        dist.barrier()


def shutdown(ctx: DistContext) -> None:
    """Leave the process group."""
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()
