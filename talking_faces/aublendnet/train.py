"""Training both stages on AUBlendSet with the upstream losses and optimiser settings.

Stage 1 (codebook): L1(recon, rows) over all 33 rows + VQ loss (beta 0.25); AdamW lr 1e-4 with
PyTorch's default weight decay 0.01 (upstream's configured 0.002 never reaches AdamW); StepLR 20 / 0.5;
200 epochs; batch 1.
Stage 2 (predictor): MSE(rows, GT rows) + MSE(features, sg(GT codes of the frozen codebook)); Adam
lr 1e-5 over the predictor only; 100 epochs; batch 1.

`out_dir/model.pth.tar` is the official-format checkpoint, rewritten after every epoch; the sidecar
`out_dir/train_state.pt` holds optimiser, scheduler, epoch and architecture, so a rerun resumes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import TalkingFacesError
from .bases import file_digest
from ..training import (
    DistributedContext,
    load_resume_state,
    save_resume_state,
    setup_distributed,
    teardown_distributed,
    wrap_model,
)
from .checkpoints import (
    DEFAULT_HEADS,
    codebook_state_dict,
    load_codebook,
    load_predictor,
    predictor_state_dict,
    save_checkpoint,
)
from .codebook import AUCodebook, CodebookConfig
from .data import AUBlendSetDataset
from .distributed import barrier, global_mean, make_loader, set_epoch
from .predictor import PredictorConfig, StyleBlendNet

CHECKPOINT_NAME = "model.pth.tar"
LR_STEP_EPOCHS = 20
LR_GAMMA = 0.5


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings; the stage defaults below are upstream's."""

    epochs: int
    lr: float
    batch_size: int = 1
    seed: int = 131


CODEBOOK_SETTINGS = TrainSettings(epochs=200, lr=1e-4)
PREDICTOR_SETTINGS = TrainSettings(epochs=100, lr=1e-5)


@dataclass(frozen=True)
class TrainProgress:
    """One report: after each step (`epoch_loss` None) and after each epoch (`epoch_loss` the mean over ranks)."""

    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float
    epoch_loss: float | None = None


@dataclass
class TrainResult:
    """Attributes: checkpoint written, first epoch run by this call (0-based), mean loss of each epoch run."""

    checkpoint: Path
    start_epoch: int
    epoch_losses: list[float]


def codebook_loss(model: nn.Module, rows: torch.Tensor, template: torch.Tensor) -> torch.Tensor:
    """Stage-1 loss of a batch: rows `(B, 33, D)`, template `(B, D)`."""
    out = model(rows, template)
    return F.l1_loss(out.rows, rows) + out.quantized.loss


def predictor_loss(model: nn.Module, rows: torch.Tensor, template: torch.Tensor) -> torch.Tensor:
    """Stage-2 loss of a batch: rows `(B, 33, D)`, template `(B, D)`."""
    codebook = (model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model).autoencoder
    with torch.no_grad():
        gt_codes = codebook.quantize_rows(rows, template).codes
    out = model(template)
    return F.mse_loss(out.rows, rows) + F.mse_loss(out.features, gt_codes)


def _read_train_state(out_dir: Path, stage: str) -> dict | None:
    state = load_resume_state(out_dir)
    if state is None:
        return None
    if not (out_dir / CHECKPOINT_NAME).is_file():
        raise TalkingFacesError(f"{out_dir} has a resume state but no {CHECKPOINT_NAME}; delete its train_state.pt to start afresh.")
    if state.get("stage") != stage:
        raise TalkingFacesError(f"{out_dir} holds a {state.get('stage')} run, not {stage}; choose another --out.")
    return state


def _fit(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    dataset: AUBlendSetDataset,
    settings: TrainSettings,
    ctx: DistributedContext,
    out_dir: Path,
    train_state: dict,
    official_state: Callable[[], dict[str, torch.Tensor]],
    on_progress: Callable[[TrainProgress], None] | None,
) -> TrainResult:
    start = int(train_state.get("epoch", 0))
    wrapped = wrap_model(model, ctx)
    loader = make_loader(dataset, settings.batch_size, ctx, settings.seed)
    report = on_progress if (on_progress is not None and ctx.is_main) else (lambda _: None)
    losses: list[float] = []
    for epoch in range(start, settings.epochs):
        set_epoch(loader, epoch, settings.seed)
        wrapped.train()
        total, count = 0.0, 0
        for step, (rows, template) in enumerate(loader, 1):
            rows, template = rows.to(ctx.device), template.to(ctx.device)
            loss = loss_fn(wrapped, rows, template)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, count = total + loss.item() * rows.shape[0], count + rows.shape[0]
            report(TrainProgress(epoch + 1, settings.epochs, step, len(loader), total / count))
        if scheduler is not None:
            scheduler.step()
        losses.append(global_mean(total, count, ctx))
        if ctx.is_main:
            save_checkpoint(official_state(), out_dir / CHECKPOINT_NAME)
            train_state["losses"] = list(train_state.get("losses", [])) + [losses[-1]]
            train_state["scheduler"] = None if scheduler is None else scheduler.state_dict()
            extra = {k: v for k, v in train_state.items() if k not in ("epoch", "optimizer", "checkpoint")}
            save_resume_state(out_dir, epoch + 1, optimizer, CHECKPOINT_NAME, **extra)
        barrier(ctx)
        report(TrainProgress(epoch + 1, settings.epochs, len(loader), len(loader), losses[-1], epoch_loss=losses[-1]))
    return TrainResult(out_dir / CHECKPOINT_NAME, start, losses)


def train_codebook(
    data_root: str | Path,
    out_dir: str | Path,
    config: CodebookConfig | None = None,
    settings: TrainSettings = CODEBOOK_SETTINGS,
    device: str | torch.device = "auto",
    on_progress: Callable[[TrainProgress], None] | None = None,
) -> TrainResult:
    """Train (or resume) the stage-1 AU codebook on the train split of `data_root`.

    `config` sets the architecture of a fresh run (default: official dims; V*3 always comes from the
    data); a resumed run takes it from `out_dir/model.pth.tar`.
    """
    out_dir = Path(out_dir)
    ctx = setup_distributed(device)
    try:
        dataset = AUBlendSetDataset(data_root, "train")
        state = _read_train_state(out_dir, "codebook")
        if state is None:
            config = replace(config or CodebookConfig(), vertex_dim=dataset.vertex_dim)
            torch.manual_seed(settings.seed)
            model = AUCodebook(config)
            state = {"stage": "codebook", "config": asdict(config), "settings": asdict(settings)}
        else:
            model = load_codebook(out_dir / CHECKPOINT_NAME, int(state["config"]["num_heads"]))
        _check_vertex_dim(model.config.vertex_dim, dataset)
        model.to(ctx.device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr)  # weight_decay: torch default 0.01
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=LR_STEP_EPOCHS, gamma=LR_GAMMA)
        if "optimizer" in state:
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
        return _fit(model, codebook_loss, optimizer, scheduler, dataset, settings, ctx, out_dir, state,
                    lambda: codebook_state_dict(model), on_progress)
    finally:
        teardown_distributed(ctx)


def train_predictor(
    data_root: str | Path,
    out_dir: str | Path,
    codebook_path: str | Path,
    config: PredictorConfig | None = None,
    settings: TrainSettings = PREDICTOR_SETTINGS,
    device: str | torch.device = "auto",
    codebook_heads: int = DEFAULT_HEADS,
    on_progress: Callable[[TrainProgress], None] | None = None,
) -> TrainResult:
    """Train (or resume) the stage-2 predictor against a frozen stage-1 codebook file.

    `config` sets the architecture of a fresh run (default: official dims); its vertex_dim and
    code_width always come from the codebook.
    """
    out_dir = Path(out_dir)
    ctx = setup_distributed(device)
    try:
        dataset = AUBlendSetDataset(data_root, "train")
        codebook = load_codebook(codebook_path, codebook_heads)
        digest = file_digest(codebook_path)
        state = _read_train_state(out_dir, "predictor")
        if state is None:
            cb = codebook.config
            config = replace(config or PredictorConfig(), vertex_dim=cb.vertex_dim, code_width=cb.hidden)
            torch.manual_seed(settings.seed)
            model = StyleBlendNet(config, codebook)
            state = {"stage": "predictor", "config": asdict(config), "settings": asdict(settings),
                     "codebook_sha256": digest, "codebook_heads": codebook_heads}
        elif state["codebook_sha256"] != digest:
            raise TalkingFacesError(f"{out_dir} was trained with another codebook file than {codebook_path}; pass that one or another --out.")
        else:
            model = load_predictor(out_dir / CHECKPOINT_NAME, codebook, int(state["config"]["num_heads"]))
        _check_vertex_dim(model.config.vertex_dim, dataset)
        model.to(ctx.device)
        optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=settings.lr)
        if "optimizer" in state:
            optimizer.load_state_dict(state["optimizer"])
        return _fit(model, predictor_loss, optimizer, None, dataset, settings, ctx, out_dir, state,
                    lambda: predictor_state_dict(model), on_progress)
    finally:
        teardown_distributed(ctx)


def _check_vertex_dim(vertex_dim: int, dataset: AUBlendSetDataset) -> None:
    if dataset.vertex_dim != vertex_dim:
        raise TalkingFacesError(
            f"{dataset.root} has meshes of {dataset.vertex_dim // 3} vertices but the model expects {vertex_dim // 3}; "
            "train on data of one topology."
        )
