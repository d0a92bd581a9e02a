"""Plumbing shared by the training loops: torchrun/DDP context, sharding, atomic checkpoint files, resume state."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch

from .atomic import atomic_write
from .checkpoints import load_weights_only
from .devices import resolve_device
from .errors import TalkingFacesError

T = TypeVar("T")
RESUME_STATE = "train_state.pt"


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in a (possibly single-process) training run."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Only the main process writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup_distributed(device: str | torch.device = "auto") -> DistributedContext:
    """Join the process group when launched by torchrun (RANK / WORLD_SIZE set); else a single process.

    Under torchrun each rank uses `cuda:LOCAL_RANK` when CUDA is available (NCCL), else the CPU (gloo).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext(0, 1, resolve_device(device))
    import torch.distributed as dist

    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and str(device) != "cpu"
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return DistributedContext(rank, world_size, torch.device(f"cuda:{local_rank}" if use_cuda else "cpu"))


def teardown_distributed(ctx: DistributedContext) -> None:
    """Leave the process group (no-op for a single process)."""
    if ctx.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def wrap_model(model: torch.nn.Module, ctx: DistributedContext, find_unused_parameters: bool = False) -> torch.nn.Module:
    """The model for the training step: DDP-wrapped when distributed, else `model` itself."""
    if not ctx.distributed:
        return model
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused_parameters)


def shard(items: Sequence[T], ctx: DistributedContext) -> list[T]:
    """This rank's items (every world_size-th), padded by wrapping so all ranks take the same number of steps."""
    if not ctx.distributed:
        return list(items)
    per_rank = -(-len(items) // ctx.world_size)
    padded = [items[i % len(items)] for i in range(per_rank * ctx.world_size)]
    return padded[ctx.rank :: ctx.world_size]


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """torch.save to a temporary file in the same folder, then rename over `path`."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def atomic_write_json(data: Any, path: str | Path) -> None:
    """Write JSON atomically (same-folder temporary file, then rename)."""
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2)))


def save_resume_state(out: str | Path, epoch: int, optimizer: torch.optim.Optimizer, checkpoint: str | Path, **extra: Any) -> None:
    """Record in `out/train_state.pt` the last finished epoch, optimizer state and checkpoint file name."""
    state = {"epoch": epoch, "optimizer": optimizer.state_dict(), "checkpoint": Path(checkpoint).name, **extra}
    atomic_torch_save(state, Path(out) / RESUME_STATE)


def load_resume_state(out: str | Path) -> dict[str, Any] | None:
    """The resume state in `out`, or None when the folder holds no run to continue."""
    path = Path(out) / RESUME_STATE
    if not path.is_file():
        return None
    try:
        return load_weights_only(path, "resume state")
    except TalkingFacesError as exc:
        raise TalkingFacesError(f"{exc} Or delete {path} to start over.") from None


def resume_with(out: str | Path, load: Callable[[Path], tuple]) -> tuple | None:
    """`(*load(checkpoint), state)` of an interrupted run in `out` (its resume state names the checkpoint
    that `load` reads, e.g. the model and its conditioning), or None when there is none."""
    state = load_resume_state(out)
    if state is None:
        return None
    return (*load(Path(out) / state["checkpoint"]), state)


@dataclass(frozen=True)
class TrainOptions:
    """Hyper-parameters of the upstream recipes (FaceFormer's defaults; FaceDiffuser runs 50 epochs)."""

    epochs: int = 100
    lr: float = 1e-4
    save_every: int = 25
    seed: int = 0


@dataclass(frozen=True)
class EpochResult:
    epoch: int
    train_loss: float
    val_loss: float | None
    checkpoint: Path | None


def run_epochs(
    model: torch.nn.Module,
    samples: Sequence[Any],
    step_loss: Callable[[torch.nn.Module, Any], torch.Tensor],
    write_checkpoint: Callable[[Path], None],
    out: str | Path,
    ctx: DistributedContext,
    options: TrainOptions,
    validate: Callable[[], float] | None = None,
    resume_state: dict | None = None,
    on_step: Callable[[int, int, int, float], None] | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    checkpoint_name: str = "{epoch}_model.pth",
    resume_extra: dict[str, Any] | None = None,
) -> Path | None:
    """The upstream speech-model loop: batch 1, Adam over the trainable parameters, resumable.

    `optimizer` replaces the default Adam (e.g. LG-LDM's AdamW); `checkpoint_name` formats the file
    name from `epoch`; `resume_extra` is stored in the resume state too.

    Each epoch shuffles `samples` (the same permutation on every rank), takes this rank's shard,
    and steps on `step_loss(step_model, sample)` with the DDP-wrapped model (unused parameters
    allowed: LayerDrop skips layers). Every `save_every` epochs and at the last, rank 0 calls
    `write_checkpoint(out / checkpoint_name.format(epoch=epoch))` and records the resume state. Returns the last
    checkpoint path.
    """
    out = Path(out)
    model = model.to(ctx.device).train()
    optimizer = optimizer or torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=options.lr)
    start = 1
    if resume_state is not None:
        optimizer.load_state_dict(resume_state["optimizer"])
        start = int(resume_state["epoch"]) + 1
    step_model = wrap_model(model, ctx, find_unused_parameters=True)
    last: Path | None = None
    for epoch in range(start, options.epochs + 1):
        torch.manual_seed(options.seed * 100003 + epoch * 101 + ctx.rank)
        order = list(range(len(samples)))
        random.Random(options.seed * 100003 + epoch).shuffle(order)  # same permutation on every rank
        mine = shard(order, ctx)
        model.train()
        total = 0.0
        for step, index in enumerate(mine, 1):
            loss = step_loss(step_model, samples[index])
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            total += loss.item()
            if on_step:
                on_step(epoch, step, len(mine), loss.item())
        val_loss = validate() if validate else None
        model.train()
        checkpoint = None
        if epoch % options.save_every == 0 or epoch == options.epochs:
            checkpoint = out / checkpoint_name.format(epoch=epoch)
            if ctx.is_main:
                write_checkpoint(checkpoint)
                save_resume_state(out, epoch, optimizer, checkpoint, **(resume_extra or {}))
            last = checkpoint
        if on_epoch:
            on_epoch(EpochResult(epoch, total / max(1, len(mine)), val_loss, checkpoint))
    return last
