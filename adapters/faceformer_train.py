"""Training FaceFormer with the upstream recipe, on any `list[Sequence]` (VOCASET, BIWI, 3D MEAD).

Recipe (upstream `main.py`): batch size 1, Adam at lr 1e-4 over trainable parameters, MSE on
absolute vertices, the autoregressive loop without teacher forcing (as the released models were
trained), frozen CNN feature encoder, SpecAugment and LayerDrop inside wav2vec2, a checkpoint every
25 epochs and at the last one. The loop is computed with the key/value cache; with dropout active
each frame's output is drawn once instead of being redrawn in each of upstream's T passes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from talking_faces.audio import load_audio
from talking_faces.errors import TalkingFacesError
from talking_faces.data.sequences import Sequence
from talking_faces.retime import retime
from talking_faces.training import (
    DistributedContext,
    EpochResult,
    TrainOptions,
    atomic_torch_save,
    atomic_write_json,
    resume_with,
    run_epochs,
)

from .audio_encoders import copy_pretrained, encoder_config, load_audio_encoder, normalize_audio
from .faceformer import DATASETS, Conditioning, load_faceformer, sidecar_dict, upstream_state_dict
from .faceformer_model import FaceFormer, FaceFormerConfig

CONDITIONS = ("subject", "subject+emotion")
# Canonical emotion names of data.sequences, in the order their one-hot slots take.
EMOTIONS = ("neutral", "happy", "sad", "surprise", "fear", "angry", "disgust", "contempt")


def make_conditioning(dataset: str, sequences: list[Sequence], condition: str = "subject") -> Conditioning:
    """One-hot names: the official subject order when the training subjects are the official ones
    (so checkpoints stay interchangeable with upstream's), else sorted subjects; then emotions present."""
    if condition not in CONDITIONS:
        raise TalkingFacesError(f"Unknown --condition {condition!r}; use one of {', '.join(CONDITIONS)}.")
    if not sequences:
        raise TalkingFacesError(f"No training sequences were found for {dataset}; check --data-root.")
    present = sorted({s.subject for s in sequences})
    official = list(DATASETS[dataset].subjects)
    subjects = official if set(present) == set(official) else present
    emotions = []
    if condition == "subject+emotion":
        emotions = [e for e in EMOTIONS if any(s.emotion == e for s in sequences)]
        if not emotions:
            raise TalkingFacesError("--condition subject+emotion needs sequences with emotion labels (e.g. --dataset mead).")
    default = DATASETS[dataset].default_style if DATASETS[dataset].default_style in subjects else subjects[0]
    return Conditioning(dataset, subjects, emotions, default)


def new_model(
    dataset: str,
    conditioning: Conditioning,
    vertice_dim: int,
    audio_encoder: str | Path | None,
    fps: float | None = None,
    feature_dim: int | None = None,
    audio_config: dict | None = None,
) -> FaceFormer:
    """A fresh FaceFormer; wav2vec2 weights from the local folder `audio_encoder`.

    `fps` defaults to the dataset's animation rate (VOCASET 30, BIWI 25); give the sequences'
    rate for MEAD. `audio_encoder=None` gives a randomly initialised encoder (`audio_config`
    overrides its architecture); callers must only allow that on explicit request.
    """
    conventions = DATASETS[dataset]
    fps = float(fps or conventions.fps)
    steps = 2 if fps == 25 else 1  # 50 Hz audio pairs exactly with 25 fps; other rates are interpolated
    config = FaceFormerConfig(
        vertice_dim=vertice_dim,
        feature_dim=feature_dim or (64 if vertice_dim <= 15069 else 128),  # upstream: 64 for FLAME, 128 for BIWI
        num_styles=len(conditioning.subjects) + len(conditioning.emotions),
        period=conventions.period if fps == conventions.fps else int(round(fps)),
        fps=fps,
        audio_steps_per_frame=steps,
        audio_encoder=dict(audio_config or {}),
    )
    if audio_encoder is None:
        return FaceFormer(config)
    pretrained = load_audio_encoder(audio_encoder)
    model = FaceFormer(FaceFormerConfig(**{**config.__dict__, "audio_encoder": encoder_config(pretrained)}))
    copy_pretrained(model.audio_encoder, pretrained, audio_encoder, "wav2vec2")
    return model


@dataclass
class TrainingSample:
    """A sequence ready for the model: normalised audio cached, vertices loaded per step."""

    sequence: Sequence
    audio: torch.Tensor  # (1, N)
    condition: torch.Tensor  # (1, K)

    def vertices(self, fps: float) -> torch.Tensor:
        """`(1, T, V*3)` ground truth at the model's frame rate."""
        return ground_truth_frames(self.sequence, fps)


def ground_truth_frames(sequence: Sequence, fps: float) -> torch.Tensor:
    """`(1, T, V*3)` float32 absolute vertices of `sequence` at `fps`."""
    frames = torch.from_numpy(np.asarray(sequence.load_vertices(), dtype=np.float32))
    src = sequence.fps
    if src != fps:
        ratio = src / fps
        # Upstream takes every 2nd frame of 60 fps VOCASET; retime at an integer ratio is exactly that.
        count = -(-frames.shape[0] // int(ratio)) if ratio.is_integer() else int(round(frames.shape[0] / ratio))
        frames = retime(frames, src, fps, count)
    return frames.reshape(1, frames.shape[0], -1)


def _prepare(sequences: list[Sequence], conditioning: Conditioning) -> list[TrainingSample]:
    samples = []
    for seq in sequences:
        style = seq.subject if not conditioning.emotions else f"{seq.subject},{seq.emotion or 'neutral'}"
        samples.append(TrainingSample(seq, normalize_audio(load_audio(seq.audio_path)), conditioning.one_hot(style)))
    return samples


def _loss(model: torch.nn.Module, sample: TrainingSample, fps: float, device: torch.device) -> torch.Tensor:
    gt = sample.vertices(fps).to(device)
    template = torch.from_numpy(sample.sequence.template.reshape(1, 1, -1)).to(device)
    displacement = model(sample.audio.to(device), sample.condition.to(device), gt.shape[1])
    # Paired audio may cover fewer frames than the mesh; upstream cuts the ground truth to match.
    return F.mse_loss(displacement + template, gt[:, : displacement.shape[1]])


def resume_or_none(out: str | Path) -> tuple[FaceFormer, Conditioning, dict] | None:
    """The model, conditioning and resume state of an interrupted run in `out`, if any."""
    return resume_with(out, load_faceformer)


def train_faceformer(
    model: FaceFormer,
    conditioning: Conditioning,
    train: list[Sequence],
    out: str | Path,
    ctx: DistributedContext,
    options: TrainOptions = TrainOptions(),
    val: list[Sequence] | None = None,
    resume_state: dict | None = None,
    on_step: Callable[[int, int, int, float], None] | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
) -> Path | None:
    """Train and write `out/{epoch}_model.pth` (upstream key format) + `.json` sidecar, resumably.

    `on_step(epoch, step, steps, loss)` and `on_epoch(result)` report progress. Under torchrun each
    rank trains on its shard with DDP; only rank 0 writes. Returns the last checkpoint written.
    """
    fps = model.config.fps
    train_samples, val_samples = _prepare(train, conditioning), _prepare(val or [], conditioning)

    def write(checkpoint: Path) -> None:
        atomic_torch_save(upstream_state_dict(model), checkpoint)
        atomic_write_json(sidecar_dict(model, conditioning), checkpoint.with_suffix(".json"))

    return run_epochs(
        model, train_samples, lambda step_model, sample: _loss(step_model, sample, fps, ctx.device), write, out, ctx, options,
        validate=(lambda: _validate(model, val_samples, fps, ctx.device)) if val_samples else None,
        resume_state=resume_state, on_step=on_step, on_epoch=on_epoch,
    )


@torch.no_grad()
def _validate(model: FaceFormer, samples: list[TrainingSample], fps: float, device: torch.device) -> float:
    """Mean autoregressive (inference-mode) MSE over `samples`."""
    model.eval()
    losses = [_loss(model, s, fps, device).item() for s in samples]
    model.train()
    return float(np.mean(losses))
