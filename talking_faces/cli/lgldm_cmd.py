"""`talkface train lgldm`: LG-LDM's two stages on VOCASET or LG-LDM's 3D MEAD, resumable, DDP under torchrun."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from talking_faces.errors import TalkingFacesError

from .common import console, epoch_progress, train_app


@train_app.command("lgldm", help="Train LG-LDM: --stage vqvae (L1 + quantisation loss) or --stage diffusion (latent + vertex MSE), AdamW 1e-4.")
def train_lgldm_cmd(
    stage: str = typer.Option(..., help="vqvae (stage 1) or diffusion (stage 2, needs --vqvae)."),
    dataset: str = typer.Option(..., help="mead (LG-LDM's 3D MEAD layout, 25 fps) or vocaset (30 fps); upstream splits."),
    data_root: Path = typer.Option(..., help="Dataset folder, in the layout `talkface data` describes."),
    out: Path = typer.Option(..., help="Output folder: model-{epoch}.mpt and train_state.pt. An existing run there is resumed."),
    vqvae: Optional[Path] = typer.Option(None, help="Stage 2: the trained stage-1 file (model-N.mpt, or CodeTalker's model.pth.tar for VOCASET)."),
    hubert: Optional[Path] = typer.Option(None, help="Stage 2: local transformers folder with facebook/hubert-large-ls960-ft."),
    allow_random_audio_encoder: bool = typer.Option(False, help="Stage 2: start HuBERT from random weights when --hubert is not given."),
    epochs: int = typer.Option(100, min=1, help="Epochs (upstream: 400 for stage 1, 100 for stage 2)."),
    lr: float = typer.Option(1e-4, help="AdamW learning rate (upstream: 1e-4)."),
    save_every: int = typer.Option(5, min=1, help="Write a checkpoint every N epochs (and at the last)."),
    device: str = typer.Option("auto", help="auto, cpu or cuda (under torchrun: one GPU per rank)."),
    seed: int = typer.Option(0, help="Shuffling, timestep and dropout seed."),
) -> None:
    from talking_faces.adapters.lgldm_checkpoints import load_vqvae
    from talking_faces.adapters.lgldm_train import (
        DATASETS, STAGES, TrainOptions, new_denoiser, new_vqvae, resume_models, resume_or_none, speakers_for, train_lgldm,
    )
    from talking_faces.data import read_dataset
    from talking_faces.training import setup_distributed, teardown_distributed

    if stage not in STAGES:
        raise TalkingFacesError(f"Unknown --stage {stage!r}; use one of {', '.join(STAGES)}.")
    if dataset not in DATASETS:
        raise TalkingFacesError(f"Unknown --dataset {dataset!r}; use one of {', '.join(DATASETS)}.")
    ctx = setup_distributed(device)
    try:
        state = resume_or_none(out)
        if state is not None and state.get("stage") != stage:
            raise TalkingFacesError(f"{out} holds a --stage {state.get('stage')} run; pass another --out for --stage {stage}.")
        train = read_dataset(dataset, data_root, "train")
        denoiser = None
        if state is not None:
            model, denoiser = resume_models(out, state)
            speakers = tuple(state["speakers"])
            vqvae = Path(state["vqvae"]) if state.get("vqvae") else vqvae
            if ctx.is_main:
                console.print(f"resuming {out} after epoch {state['epoch']}")
        elif stage == "vqvae":
            model, speakers = new_vqvae(dataset, train[0].template.size), speakers_for(dataset, train)
        else:
            if vqvae is None:
                raise TalkingFacesError("--stage diffusion needs the trained stage 1: pass --vqvae model-N.mpt.")
            if hubert is None and not allow_random_audio_encoder:
                raise TalkingFacesError("A new stage-2 run needs HuBERT-large weights: pass --hubert DIR (a local transformers folder), "
                                        "or --allow-random-audio-encoder to start from random weights.")
            model, speakers = load_vqvae(vqvae), speakers_for(dataset, train)
            denoiser = new_denoiser(dataset, model, len(speakers), hubert)
        options = TrainOptions(epochs=epochs, lr=lr, save_every=save_every, seed=seed)
        with epoch_progress(epochs, ctx.is_main) as (on_step, on_epoch):
            last = train_lgldm(stage, model, train, out, ctx, speakers, options, denoiser=denoiser, vqvae_path=vqvae,
                               resume_state=state, on_step=on_step, on_epoch=on_epoch)
    finally:
        teardown_distributed(ctx)
    if ctx.is_main and last is not None:
        console.print(f"[green]done[/]: {last}")
