"""`talkface train facediffuser`: the upstream FaceDiffuser recipe on VOCASET or 3D MEAD, resumable, DDP under torchrun."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import console, epoch_progress, speech_training_run, train_app


@train_app.command("facediffuser", help="Train FaceDiffuser (Huber loss on x0, uniform t, Adam 1e-4, HuBERT layers 0-1 frozen) on VOCASET or 3D MEAD.")
def train_facediffuser_cmd(
    dataset: str = typer.Option(..., help="vocaset or mead (upstream splits)."),
    data_root: Path = typer.Option(..., help="Dataset folder, in the layout `talkface data` describes."),
    out: Path = typer.Option(..., help="Output folder: {epoch}_model.pth (+ .json sidecar) and train_state.pt. An existing run there is resumed."),
    audio_encoder: Optional[Path] = typer.Option(None, help="Local transformers folder with hubert-base-ls960 weights."),
    allow_random_audio_encoder: bool = typer.Option(False, help="Start from a randomly initialised HuBERT when --audio-encoder is not given."),
    epochs: int = typer.Option(50, min=1, help="Epochs (upstream: 50)."),
    lr: float = typer.Option(1e-4, help="Adam learning rate (upstream: 1e-4)."),
    diffusion_steps: int = typer.Option(1000, min=2, help="Diffusion steps D (upstream: 1000; BIWI 500)."),
    save_every: int = typer.Option(25, min=1, help="Write a checkpoint every N epochs (and at the last)."),
    device: str = typer.Option("auto", help="auto, cpu or cuda (under torchrun: one GPU per rank)."),
    seed: int = typer.Option(0, help="Shuffling, timestep and noise seed."),
) -> None:
    from talking_faces.adapters.facediffuser_train import make_variant, new_model, resume_or_none, train_facediffuser
    from talking_faces.training import TrainOptions

    with speech_training_run("FaceDiffuser", "HuBERT (hubert-base-ls960)", dataset, data_root, out, device, audio_encoder,
                             allow_random_audio_encoder, resume_or_none) as (ctx, train, val, resumed):
        if resumed is not None:
            model, variant, state = resumed
        else:
            variant = make_variant(dataset, train)
            model, state = new_model(variant, train[0].template.size, audio_encoder, diffusion_steps), None
        options = TrainOptions(epochs=epochs, lr=lr, save_every=save_every, seed=seed)
        with epoch_progress(epochs, ctx.is_main) as (on_step, on_epoch):
            last = train_facediffuser(model, variant, train, out, ctx, options, val=val, resume_state=state, on_step=on_step, on_epoch=on_epoch)
    if ctx.is_main and last is not None:
        console.print(f"[green]done[/]: {last}")
