"""Training FaceDiffuser with the upstream recipe, on any `list[Sequence]` (VOCASET, BIWI, 3D MEAD).

Recipe (upstream `main.py` and guided-diffusion's `training_losses`): batch size 1; t ~ U{0..D-1};
x_t = q_sample(x0, t, eps) on absolute vertices; Huber loss (delta 1, mean) between x0 and the
x0 prediction, both cut to a common length; Adam at lr 1e-4 over the trainable parameters
(HuBERT's CNN, feature projection and layers 0-1 frozen); HuBERT in training mode (SpecAugment,
LayerDrop); a checkpoint every 25 epochs and at the last, in upstream's bare state_dict format.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from talking_faces.audio import load_audio
from talking_faces.data.common import MEAD_EMOTION_NAMES
from talking_faces.data.sequences import Sequence
from talking_faces.errors import TalkingFacesError
from talking_faces.schedulers import NoiseSchedule, add_noise
from talking_faces.training import (
    DistributedContext, EpochResult, TrainOptions, atomic_torch_save, atomic_write_json, resume_with, run_epochs,
)

from .audio_encoders import copy_pretrained, encoder_config, load_audio_encoder, normalize_audio
from .facediffuser import VARIANTS, Variant, condition_vector, load_facediffuser, official_state_dict, sidecar_dict
from .facediffuser_model import FaceDiff, FaceDiffConfig
from .faceformer_train import ground_truth_frames


def make_variant(dataset: str, sequences: list[Sequence]) -> Variant:
    """The conditions of a new model: the official subject order when the training subjects are
    the official ones (checkpoints stay interchangeable with upstream's), else the sorted subjects."""
    if dataset not in VARIANTS:
        raise TalkingFacesError(f"Unknown dataset {dataset!r}; use one of {', '.join(VARIANTS)}.")
    if not sequences:
        raise TalkingFacesError(f"No training sequences were found for {dataset}; check --data-root.")
    variant = VARIANTS[dataset]
    present = sorted({s.subject for s in sequences})
    subjects = variant.subjects if set(present) <= set(variant.subjects) else tuple(present)
    default = variant.default_style if variant.default_style.split(",")[0] in subjects else subjects[0]
    return replace(variant, subjects=subjects, default_style=default, fps=float(sequences[0].fps if dataset == "mead" else variant.fps))


def sequence_style(variant: Variant, sequence: Sequence) -> str:
    """The style string of a training sequence (`SUBJECT`, or `SPEAKER,EMOTION,LEVEL` for MEAD)."""
    if not variant.emotions:
        return sequence.subject
    emotion = sequence.emotion or "neutral"
    return f"{sequence.subject},{MEAD_EMOTION_NAMES.get(emotion, emotion)},{sequence.intensity or 1}"


def new_model(variant: Variant, vertice_dim: int, audio_encoder: str | Path | None, diffusion_steps: int = 1000,
              latent_dim: int = 256, audio_config: dict | None = None) -> FaceDiff:
    """A fresh FaceDiff with HuBERT weights from the local folder `audio_encoder` (hubert-base-ls960).

    `audio_encoder=None` gives a randomly initialised HuBERT (`audio_config` overrides its
    architecture); callers must only allow that on explicit request.
    """
    config = FaceDiffConfig(
        vertice_dim=vertice_dim, latent_dim=latent_dim, gru_dim=latent_dim, diffusion_steps=diffusion_steps,
        num_conditions=variant.width, style_target="audio" if variant.emotions else "output", fps=variant.fps,
        audio_encoder=dict(audio_config or {}),
    )
    if audio_encoder is None:
        return FaceDiff(config)
    pretrained = load_audio_encoder(audio_encoder, "hubert")
    model = FaceDiff(replace(config, audio_encoder=encoder_config(pretrained)))
    copy_pretrained(model.audio_encoder, pretrained, audio_encoder, "HuBERT")
    return model


@dataclass
class _Sample:
    sequence: Sequence
    audio: torch.Tensor  # (1, N) normalised
    condition: torch.Tensor  # (K,)


def _prepare(sequences: list[Sequence], variant: Variant) -> list[_Sample]:
    return [_Sample(s, normalize_audio(load_audio(s.audio_path)), condition_vector(variant, sequence_style(variant, s))) for s in sequences]


def diffusion_loss(model: torch.nn.Module, schedule: NoiseSchedule, sample: _Sample, device: torch.device) -> torch.Tensor:
    """Huber(x0, model(q_sample(x0, t, eps), t)) at a uniform random t (upstream's training_losses)."""
    x0 = ground_truth_frames(sample.sequence, model_fps(model)).to(device)
    t = int(torch.randint(schedule.num_train_timesteps, ()))
    x_t = add_noise(schedule, x0, torch.randn_like(x0), t)
    template = torch.from_numpy(sample.sequence.template.reshape(-1).astype(np.float32)).to(device)
    predicted = model(x_t, t, sample.audio.to(device), sample.condition.to(device), template)
    length = min(predicted.shape[1], x0.shape[1])
    return torch.nn.functional.huber_loss(predicted[:, :length], x0[:, :length])


def model_fps(model: torch.nn.Module) -> float:
    return (model.module if hasattr(model, "module") else model).config.fps


def resume_or_none(out: str | Path) -> tuple[FaceDiff, Variant, dict] | None:
    """The model, variant and resume state of an interrupted run in `out`, if any."""
    return resume_with(out, load_facediffuser)


def train_facediffuser(
    model: FaceDiff,
    variant: Variant,
    train: list[Sequence],
    out: str | Path,
    ctx: DistributedContext,
    options: TrainOptions = TrainOptions(epochs=50),
    val: list[Sequence] | None = None,
    resume_state: dict | None = None,
    on_step: Callable[[int, int, int, float], None] | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
) -> Path | None:
    """Train and write `out/{epoch}_model.pth` (upstream format) + `.json` sidecar, resumably.

    Under torchrun each rank trains on its shard with DDP; only rank 0 writes. Returns the last checkpoint.
    """
    schedule = NoiseSchedule.guided_cosine(model.config.diffusion_steps)
    train_samples, val_samples = _prepare(train, variant), _prepare(val or [], variant)

    def write(checkpoint: Path) -> None:
        atomic_torch_save(official_state_dict(model), checkpoint)
        atomic_write_json(sidecar_dict(variant, model), checkpoint.with_suffix(".json"))

    return run_epochs(
        model, train_samples, lambda step_model, sample: diffusion_loss(step_model, schedule, sample, ctx.device), write, out, ctx,
        options, validate=(lambda: _validate(model, schedule, val_samples, ctx.device)) if val_samples else None,
        resume_state=resume_state, on_step=on_step, on_epoch=on_epoch,
    )


@torch.no_grad()
def _validate(model: FaceDiff, schedule: NoiseSchedule, samples: list[_Sample], device: torch.device) -> float:
    """Mean denoising loss over `samples` in eval mode (t drawn as in training)."""
    model.eval()
    losses = [diffusion_loss(model, schedule, s, device).item() for s in samples]
    model.train()
    return float(np.mean(losses))
