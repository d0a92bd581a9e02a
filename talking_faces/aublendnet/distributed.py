"""DDP pieces of the AUBlendNet training loop; the torchrun context itself is `talking_faces.training`."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler, SequentialSampler

from ..training import DistributedContext


def make_loader(dataset: Dataset, batch_size: int, ctx: DistributedContext, seed: int, shuffle: bool = True) -> DataLoader:
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


def global_mean(total: float, count: int, ctx: DistributedContext) -> float:
    """Mean of a sum over all ranks."""
    if not ctx.distributed:
        return total / max(count, 1)
    values = torch.tensor([total, float(count)], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(values)
    return float(values[0] / values[1].clamp(min=1))


def barrier(ctx: DistributedContext) -> None:
    """Wait for every rank (after rank 0 writes files)."""
    if ctx.distributed:
        dist.barrier()
