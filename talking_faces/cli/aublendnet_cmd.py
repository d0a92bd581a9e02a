"""`talkface bases`, `talkface train aublendnet` and `talkface eval aublendnet`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from talking_faces.errors import TalkingFacesError

from .common import app, console, eval_app, train_app

REPORT_SCALE = 1e-7  # tables print MSE in units of 1e-7 m²


def _progress() -> Progress:
    # under torchrun only rank 0 reports
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=os.environ.get("RANK", "0") != "0")


@app.command(help="Predict an identity's 32 AU-blendshape targets with AUBlendNet and write them as AUBlendSet (33, V*3).")
def bases(
    identity: Path = typer.Option(..., help="Neutral FLAME-topology mesh (OBJ, PLY, NPY, NPZ)."),
    aublendnet: Path = typer.Option(..., help="AUBlendNet stage-2 checkpoint (model.pth.tar)."),
    codebook: Path = typer.Option(..., help="AU codebook stage-1 checkpoint (model.pth.tar)."),
    out: Path = typer.Option(..., help="Output .npy: row 0 the predicted neutral, rows 1..32 the predicted AU targets (upstream's output)."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
) -> None:
    import numpy as np

    from talking_faces.aublendnet.bases import predict_aublendset_cached
    from talking_faces.atomic import atomic_write
    from talking_faces.identity import load_identity

    with console.status("Predicting AU bases"):
        rows = predict_aublendset_cached(load_identity(identity), aublendnet, codebook, device=device)
    atomic_write(out, lambda tmp: np.save(tmp, rows))
    console.print(f"[green]wrote[/] {out} {rows.shape}")


@train_app.command("aublendnet", help="Train AUBlendNet: --stage codebook (stage 1), then --stage predictor (stage 2). "
                   "Resumes from --out. Multi-GPU / multi-node: launch under torchrun.")
def train_aublendnet(
    stage: str = typer.Option(..., help="codebook or predictor."),
    data_root: Path = typer.Option(..., help="AUBlendSet root: one folder per identity (template.npy, new_AU_vertice32.npy)."),
    out: Path = typer.Option(..., help="Output folder: model.pth.tar (official format) and train_state.pt."),
    codebook: Optional[Path] = typer.Option(None, help="Stage-1 checkpoint, required for --stage predictor."),
    epochs: Optional[int] = typer.Option(None, min=1, help="Epochs (default 200 codebook, 100 predictor)."),
    lr: Optional[float] = typer.Option(None, help="Learning rate (default 1e-4 codebook, 1e-5 predictor)."),
    batch_size: int = typer.Option(1, min=1, help="Identities per step (per process)."),
    hidden_size: Optional[int] = typer.Option(None, help="Width of a fresh model (default 1024)."),
    num_layers: Optional[int] = typer.Option(None, help="Transformer layers of a fresh model (default 6 codebook, 8 predictor)."),
    num_heads: int = typer.Option(8, help="Attention heads (not stored in checkpoints; 8 upstream)."),
    num_codes: int = typer.Option(256, help="Codebook entries of a fresh codebook."),
    code_dim: int = typer.Option(64, help="Codebook vector width of a fresh codebook."),
    device: str = typer.Option("auto", help="auto, cpu or cuda (under torchrun: GPU LOCAL_RANK)."),
) -> None:
    from talking_faces.aublendnet import train as training
    from talking_faces.aublendnet.codebook import CodebookConfig
    from talking_faces.aublendnet.predictor import PredictorConfig

    if stage not in ("codebook", "predictor"):
        raise TalkingFacesError(f"Unknown --stage {stage!r}; use codebook or predictor.")
    if stage == "predictor" and codebook is None:
        raise TalkingFacesError("--stage predictor needs the trained stage-1 file: add --codebook STAGE1.")
    defaults = training.CODEBOOK_SETTINGS if stage == "codebook" else training.PREDICTOR_SETTINGS
    settings = training.TrainSettings(epochs=epochs or defaults.epochs, lr=lr or defaults.lr, batch_size=batch_size)
    with _progress() as progress:
        epoch_task = progress.add_task("epochs", total=settings.epochs, info="")
        step_task = progress.add_task("steps", total=None, info="")

        def on_progress(p: training.TrainProgress) -> None:
            if p.epoch_loss is None:
                progress.update(step_task, total=p.steps, completed=p.step, info=f"loss {p.loss:.4g}")
            else:
                progress.update(epoch_task, completed=p.epoch, info=f"epoch {p.epoch} loss {p.epoch_loss:.4g}")

        if stage == "codebook":
            d = CodebookConfig()
            hidden = hidden_size or d.hidden
            config = CodebookConfig(hidden=hidden, num_layers=num_layers or d.num_layers, num_heads=num_heads,
                                    intermediate=hidden * d.intermediate // d.hidden, num_codes=num_codes, code_dim=code_dim)
            result = training.train_codebook(data_root, out, config, settings, device, on_progress)
        else:
            d = PredictorConfig()
            feature = hidden_size or d.feature_dim
            config = PredictorConfig(feature_dim=feature, num_layers=num_layers or d.num_layers, num_heads=num_heads,
                                     mlp_hidden=2 * feature)
            result = training.train_predictor(data_root, out, codebook, config, settings, device, num_heads, on_progress)
    if result.epoch_losses:
        console.print(f"[green]wrote[/] {result.checkpoint} (epochs {result.start_epoch + 1}..{result.start_epoch + len(result.epoch_losses)}, "
                      f"last loss {result.epoch_losses[-1]:.4g})")
    else:
        console.print(f"{result.checkpoint} has already finished all {settings.epochs} epochs; raise --epochs to train on.")


@eval_app.command("aublendnet", help="Score predicted bases on AUBlendSet: MSE_S (single AUs) and MSE_M (the 7 EMFACS emotions).")
def eval_aublendnet(
    data_root: Path = typer.Option(..., help="AUBlendSet root: one folder per identity."),
    aublendnet: Path = typer.Option(..., help="AUBlendNet stage-2 checkpoint."),
    codebook: Path = typer.Option(..., help="AU codebook stage-1 checkpoint."),
    split: str = typer.Option("test", help="test (sorted folders 450..499), val (400..449), train (0..399) or all."),
    out: Path = typer.Option(Path("aublendnet_eval.json"), help="JSON report."),
    num_heads: int = typer.Option(8, help="Attention heads of both checkpoints (8 upstream)."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
) -> None:
    from dataclasses import asdict

    from talking_faces.aublendnet.checkpoints import load_predictor
    from talking_faces.aublendnet.data import AUBlendSetDataset
    from talking_faces.aublendnet.evaluate import evaluate_predictor
    from talking_faces.aublendnet.metrics import __doc__ as formulas
    from talking_faces.devices import resolve_device
    from talking_faces.training import atomic_write_json

    dataset = AUBlendSetDataset(data_root, split)
    with console.status("Loading AUBlendNet"):
        model = load_predictor(aublendnet, codebook, num_heads).to(resolve_device(device))
    with _progress() as progress:
        task = progress.add_task(f"{split} identities", total=len(dataset), info="")
        scores = evaluate_predictor(model, dataset, on_identity=lambda name: progress.advance(task))
    report = {"units": "m^2 per coordinate", "formulas": formulas.strip(), "data_root": str(data_root),
              "aublendnet": str(aublendnet), "codebook": str(codebook), **asdict(scores)}
    atomic_write_json(report, out)
    table = Table(title=f"AUBlendNet on {split} ({len(dataset)} identities)")
    table.add_column("metric")
    table.add_column(f"×{REPORT_SCALE:.0e} m²", justify="right")
    table.add_row("MSE_S (single AU)", f"{scores.mse_s / REPORT_SCALE:.4f}")
    table.add_row("MSE_M (multi AU)", f"{scores.mse_m / REPORT_SCALE:.4f}")
    console.print(table)
    console.print(f"[green]wrote[/] {out}")
