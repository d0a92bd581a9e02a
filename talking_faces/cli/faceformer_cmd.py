"""`talkface train faceformer`: the upstream FaceFormer recipe on VOCASET or 3D MEAD, resumable, DDP under torchrun."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import console, epoch_progress, speech_training_run, train_app


@train_app.command("faceformer", help="Train FaceFormer (Adam 1e-4, MSE, autoregressive loop, frozen CNN) on VOCASET or 3D MEAD.")
def train_faceformer_cmd(
    dataset: str = typer.Option(..., help="vocaset or mead (upstream splits)."),
    data_root: Path = typer.Option(..., help="Dataset folder, in the layout `talkface data` describes."),
    out: Path = typer.Option(..., help="Output folder: {epoch}_model.pth (+ .json sidecar) and train_state.pt. An existing run there is resumed."),
    audio_encoder: Optional[Path] = typer.Option(None, help="Local transformers folder with wav2vec2-base weights (e.g. wav2vec2-base-960h)."),
    allow_random_audio_encoder: bool = typer.Option(False, "--allow-random-audio-encoder", help="Start from a randomly initialised wav2vec2 when --audio-encoder is not given."),
    epochs: int = typer.Option(100, min=1, help="Epochs (upstream: 100)."),
    lr: float = typer.Option(1e-4, help="Adam learning rate (upstream: 1e-4)."),
    condition: str = typer.Option("subject", help="One-hot condition: subject, or subject+emotion (MEAD's one-hot-emotion baseline)."),
    save_every: int = typer.Option(25, min=1, help="Write a checkpoint every N epochs (and at the last)."),
    device: str = typer.Option("auto", help="auto, cpu or cuda (under torchrun: one GPU per rank)."),
    seed: int = typer.Option(0, help="Shuffling and dropout seed."),
) -> None:
    from talking_faces.adapters.faceformer_train import (
        TrainOptions, make_conditioning, new_model, resume_or_none, train_faceformer,
    )

    with speech_training_run("FaceFormer", "wav2vec2", dataset, data_root, out, device, audio_encoder,
                             allow_random_audio_encoder, resume_or_none) as (ctx, train, val, resumed):
        if resumed is not None:
            model, conditioning, state = resumed
        else:
            conditioning = make_conditioning(dataset, train, condition)
            fps = train[0].fps if dataset == "mead" else None
            model = new_model(dataset, conditioning, train[0].template.size, audio_encoder, fps=fps)
            state = None
        options = TrainOptions(epochs=epochs, lr=lr, save_every=save_every, seed=seed)
        with epoch_progress(epochs, ctx.is_main) as (on_step, on_epoch):
            last = train_faceformer(model, conditioning, train, out, ctx, options, val=val, resume_state=state, on_step=on_step, on_epoch=on_epoch)
    if ctx.is_main and last is not None:
        console.print(f"[green]done[/]: {last}")
