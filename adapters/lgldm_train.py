"""Training LG-LDM with the upstream recipes, both stages, on VOCASET or LG-LDM's 3D MEAD.

Stage 1 (`train_*_vqvae.py`): offsets from the template -> VQ-VAE; loss L1(reconstruction, motion) +
quantisation loss; AdamW (amsgrad) lr 1e-4, batch 1. Stage 2 (`train_diffusion_*.py`): x0 = the
frozen stage-1 encoding of the motion; t ~ U{0..999}; loss MSE(x0, x0_hat) + MSE(decoded
quant(x0_hat) + template, motion), gradients passing straight through the frozen codebook;
AdamW lr 1e-4, batch 1; HuBERT-large trained except its CNN. Checkpoints are upstream's files
(`model-{epoch}.mpt`; CodeTalker's `{'state_dict'}` for the VOCASET stage 1), loadable by the
adapter and by upstream's code; runs resume from `train_state.pt`; DDP under torchrun.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talking_faces.audio import load_audio
from talking_faces.data.common import MEAD_EMOTION_NAMES
from talking_faces.data.sequences import Sequence
from talking_faces.errors import TalkingFacesError
from talking_faces.schedulers import NoiseSchedule, add_noise
from talking_faces.schedulers.lucidrains import cosine_betas_clipped, lucidrains_buffers
from talking_faces.training import DistributedContext, EpochResult, TrainOptions, load_resume_state, run_epochs

from .audio_encoders import copy_pretrained, encoder_config_from_state, load_audio_encoder, normalize_audio
from .faceformer import VOCASET_SUBJECTS
from .faceformer_train import TrainingSample
from .lgldm import MEAD_SPEAKERS, NEUTRAL, NORMALIZE_EPS
from .lgldm_checkpoints import (
    diffusion_payload, load_denoiser, load_vqvae, save_payload, vqvae_payload,
)
from .lgldm_denoiser import DenoiserConfig, LatentDenoiser
from .lgldm_vqvae import EMOTIONS, MotionVQConfig, MotionVQVAE, vocaset_config

STAGES = ("vqvae", "diffusion")
DATASETS = ("mead", "vocaset")
NUM_TIMESTEPS = 1000


def speakers_for(dataset: str, sequences: list[Sequence]) -> tuple[str, ...]:
    """The official one-hot order when the training speakers belong to it (upstream's files stay
    interchangeable), else the sorted speakers present."""
    if not sequences:
        raise TalkingFacesError(f"No training sequences were found for {dataset}; check --data-root.")
    present = {s.subject for s in sequences}
    official = MEAD_SPEAKERS if dataset == "mead" else VOCASET_SUBJECTS
    return tuple(official) if present <= set(official) else tuple(sorted(present))


def emotion_one_hot(emotion: str | None) -> torch.Tensor:
    """`(1, 7)` in LG-LDM's order; neutral or unlabelled -> zeros, as upstream's loader."""
    vector = torch.zeros(1, len(EMOTIONS))
    name = MEAD_EMOTION_NAMES.get(emotion or NEUTRAL, emotion)
    if name in EMOTIONS:
        vector[0, EMOTIONS.index(name)] = 1.0
    return vector


def new_vqvae(dataset: str, vertex_dim: int, **overrides: int) -> MotionVQVAE:
    """A fresh stage 1 with upstream's sizes (`overrides` for small test models)."""
    if dataset == "mead":
        return MotionVQVAE(MotionVQConfig(vertex_dim=vertex_dim, **overrides))
    return MotionVQVAE(vocaset_config(vertex_dim=vertex_dim, **overrides))


def new_denoiser(
    dataset: str, vqvae: MotionVQVAE, num_speakers: int, hubert: str | Path | None, audio_config: dict | None = None,
    **overrides: int,
) -> LatentDenoiser:
    """A fresh FDM for `vqvae`'s latents; HuBERT-large weights from a local transformers folder
    (`facebook/hubert-large-ls960-ft`), or random ones with the `audio_config` architecture."""
    mead = dataset == "mead"
    pretrained = load_audio_encoder(hubert, "hubert") if hubert is not None else None
    audio = encoder_config_from_state({f"a.{k}": v for k, v in pretrained.state_dict().items()}, "a.") if pretrained is not None else dict(audio_config or {})
    width = vqvae.config.latent_width
    config = DenoiserConfig(**{
        "feature_dim": width, "n_head": 4 if mead else 8, "ffn_dim": 2 * width, "num_styles": num_speakers,
        "num_emotions": len(EMOTIONS) if mead else 0, "audio_steps_per_frame": 2 if mead else 1,
        "periodic_position": not mead, "fps": 25.0 if mead else 30.0, "audio_encoder": audio, **overrides,
    })
    model = LatentDenoiser(config)
    if pretrained is not None:
        copy_pretrained(model.audio_encoder, pretrained, hubert, "HuBERT")
    return model


class DiffusionLoss(nn.Module):
    """One stage-2 training step as a module (so DDP wraps it): denoising MSE + decoded-vertex MSE."""

    def __init__(self, denoiser: LatentDenoiser, vqvae: MotionVQVAE, schedule: NoiseSchedule) -> None:
        super().__init__()
        self.denoiser, self.vqvae, self.schedule = denoiser, vqvae, schedule
        self.vqvae.requires_grad_(False)

    def train(self, mode: bool = True) -> "DiffusionLoss":
        """Train the denoiser; the frozen stage 1 stays in eval mode."""
        super().train(mode)
        self.vqvae.eval()
        return self

    def forward(self, audio: torch.Tensor, motion: torch.Tensor, template: torch.Tensor,
                speaker: torch.Tensor, emotion: torch.Tensor | None, t: int) -> torch.Tensor:
        with torch.no_grad():
            x0 = self.vqvae.encode(motion - template, emotion)
        d = self.denoiser
        frames = motion.shape[1] if d.config.audio_steps_per_frame == 1 else None  # VOCASET: audio resampled to the motion
        tokens = d.audio_tokens(audio, frames)
        style, emotion_emb = d.condition(speaker, emotion)
        x_t = add_noise(self.schedule, x0, torch.randn_like(x0), t)
        x0_hat = d(x_t, t, tokens, style, emotion_emb)
        decoded = self.vqvae.decode(self.vqvae.quant(x0_hat, emotion).codes) + template
        return F.mse_loss(x0_hat, x0[:, : x0_hat.shape[1]]) + F.mse_loss(decoded, motion[:, : decoded.shape[1]])


def _samples(sequences: list[Sequence], speakers: tuple[str, ...], mead: bool) -> list[TrainingSample]:
    """Audio normalised once; condition = [speaker one-hot | emotion one-hot (MEAD)]."""
    samples = []
    for seq in sequences:
        speaker = torch.zeros(1, len(speakers))
        speaker[0, speakers.index(seq.subject)] = 1.0
        condition = torch.cat([speaker, emotion_one_hot(seq.emotion)], dim=1) if mead else speaker
        samples.append(TrainingSample(seq, normalize_audio(load_audio(seq.audio_path), NORMALIZE_EPS), condition))
    return samples


def resume_or_none(out: str | Path) -> dict | None:
    """The resume state of an interrupted run in `out` (with its stage, files and speakers), if any."""
    return load_resume_state(out)


def resume_models(out: str | Path, state: dict) -> tuple[MotionVQVAE, LatentDenoiser | None]:
    """The models of an interrupted run: its last checkpoint, plus the stage-1 file for stage 2."""
    checkpoint = Path(out) / state["checkpoint"]
    if state["stage"] == "vqvae":
        return load_vqvae(checkpoint), None
    denoiser, _ = load_denoiser(checkpoint)
    return load_vqvae(state["vqvae"]), denoiser


def train_lgldm(
    stage: str,
    vqvae: MotionVQVAE,
    train: list[Sequence],
    out: str | Path,
    ctx: DistributedContext,
    speakers: tuple[str, ...],
    options: TrainOptions = TrainOptions(),
    denoiser: LatentDenoiser | None = None,
    vqvae_path: str | Path | None = None,
    resume_state: dict | None = None,
    on_step: Callable[[int, int, int, float], None] | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
) -> Path | None:
    """Train one stage; write `out/model-{epoch}.mpt` every `save_every` epochs and at the last.

    Runs the shared loop (`training.run_epochs`) with upstream's AdamW (amsgrad for stage 1).
    Returns the last checkpoint written. Only rank 0 writes; each rank trains on its shard.
    """
    if stage not in STAGES:
        raise TalkingFacesError(f"Unknown --stage {stage!r}; use one of {', '.join(STAGES)}.")
    mead = vqvae.emotional
    fps = 25.0 if mead else 30.0
    if stage == "vqvae":
        trained: nn.Module = vqvae.to(ctx.device)
        optimizer = torch.optim.AdamW(vqvae.parameters(), lr=options.lr, amsgrad=True)
    else:
        if denoiser is None or vqvae_path is None:
            raise TalkingFacesError("Stage 2 needs the denoiser and the stage-1 file (--vqvae).")
        buffers = lucidrains_buffers(cosine_betas_clipped(denoiser.config.num_timesteps))
        trained = DiffusionLoss(denoiser, vqvae, NoiseSchedule.from_buffers(buffers)).to(ctx.device)
        optimizer = torch.optim.AdamW([p for p in denoiser.parameters() if p.requires_grad], lr=options.lr)

    def step_loss(step_model: nn.Module, sample: TrainingSample) -> torch.Tensor:
        motion = sample.vertices(fps).to(ctx.device)
        template = torch.from_numpy(np.asarray(sample.sequence.template, dtype=np.float32).reshape(1, 1, -1)).to(ctx.device)
        condition = sample.condition.to(ctx.device)
        emotion = condition[:, len(speakers):] if mead else None
        if stage == "vqvae":
            decoded, quantized = step_model(motion - template, emotion)
            return F.l1_loss(decoded + template, motion) + quantized.loss
        t = int(torch.randint(0, NUM_TIMESTEPS, ()))  # upstream: t ~ U{0..999}, seeded per epoch and rank
        return step_model(sample.audio.to(ctx.device), motion, template, condition[:, : len(speakers)], emotion, t)

    def write(checkpoint: Path) -> None:
        epoch, opt = int(checkpoint.stem.split("-")[-1]), optimizer.state_dict()
        save_payload(vqvae_payload(vqvae, epoch, opt) if stage == "vqvae" else diffusion_payload(denoiser, buffers, epoch, opt), checkpoint)

    return run_epochs(
        trained, _samples(train, speakers, mead), step_loss, write, out, ctx, options, resume_state=resume_state,
        on_step=on_step, on_epoch=on_epoch, optimizer=optimizer, checkpoint_name="model-{epoch}.mpt",
        resume_extra={"stage": stage, "speakers": list(speakers), "vqvae": str(vqvae_path) if vqvae_path else ""},
    )
