"""LG-LDM speech adapter (wangxuanx/Face-Diffusion-Model, TVCG 2024): latent diffusion over a motion VQ-VAE.

Two checkpoints: the stage-2 diffusion file (`--checkpoint`) and the stage-1 VQ-VAE (`--vqvae`).
Speech goes through HuBERT-large once; the FDM denoises stage-1 latents from Gaussian noise on the
shared schedulers; the sample is snapped to the stage-1 codebook (the emotion's slice for MEAD),
decoded to per-frame offsets, and returned as offsets from the identity's neutral mesh.

Default samplers are upstream's sample scripts: MEAD ancestral DDPM over all 1000 steps with no draw
at t = 0; VOCASET DDIM (eta 0) over linspace(-1, 999, 101) that returns the latent at t = 9 (the
last pair, 9 -> -1, is skipped upstream; its discarded model call is not made here).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from talking_faces.data.common import MEAD_EMOTION_NAMES
from talking_faces.errors import TalkingFacesError
from talking_faces.schedulers import (
    SAMPLERS, AncestralDDPMScheduler, DDIMScheduler, NoiseSchedule, draw_noise, make_scheduler,
)

from .audio_encoders import normalize_audio
from .base import SpeechAdapter, SpeechOutput, SpeechRequest
from .faceformer import VOCASET_SUBJECTS
from .lgldm_checkpoints import check_pair, load_denoiser, load_vqvae
from .lgldm_denoiser import LatentDenoiser
from .lgldm_vqvae import EMOTIONS, MotionVQVAE

# Speaker one-hot order of LG-LDM's 3D MEAD loader (datasets/data_loader_mead.py).
MEAD_SPEAKERS = tuple(
    "M003 M005 M007 M009 M011 M012 M013 M019 M022 M023 M024 M025 M026 M027 M028 M029 M030 M031 M032 M033 M034 "
    "M035 M037 M039 M040".split()
)
NEUTRAL = "neutral"
# transformers 4.32's Wav2Vec2 processor (LG-LDM's pin) normalises with variance epsilon 1e-7.
NORMALIZE_EPS = 1e-7
# VOCASET's sample script: ddim_sample(..., steps=100) over linspace(-1, 999, 101), stopping at t = 9.
VOCASET_DDIM_STEPS = 100


@dataclass(frozen=True)
class Conditioning:
    """Names behind the one-hots: speakers (MEAD) or subjects (VOCASET), and MEAD's emotions."""

    speakers: tuple[str, ...]
    emotions: tuple[str, ...]
    default_speaker: str

    def parse(self, style: str | int | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`SPEAKER[,EMOTION]` (names or indices) -> `(1, S)` speaker and `(1, E)` emotion one-hots.

        `neutral` (the default emotion) is the all-zero vector, as upstream's loader makes it.
        """
        speaker, _, emotion = str(style if style is not None else self.default_speaker).partition(",")
        style_vec = torch.zeros(1, len(self.speakers))
        style_vec[0, self._index(speaker.strip() or self.default_speaker, self.speakers, "speaker")] = 1.0
        emotion = emotion.strip().lower()
        emotion = MEAD_EMOTION_NAMES.get(emotion, emotion)
        if not self.emotions:
            if emotion:
                raise TalkingFacesError(f"This LG-LDM (VOCASET) has no emotion input; pass --style SUBJECT without ',{emotion}'.")
            return style_vec, None
        emotion_vec = torch.zeros(1, len(self.emotions))
        if emotion and emotion != NEUTRAL:
            emotion_vec[0, self._index(emotion, self.emotions, "emotion")] = 1.0
        return style_vec, emotion_vec

    @staticmethod
    def _index(name: str, names: tuple[str, ...], what: str) -> int:
        if name in names:
            return names.index(name)
        if name.isdigit() and int(name) < len(names):
            return int(name)
        extra = f", {NEUTRAL} (all-zero)" if what == "emotion" else ""
        shown = ", ".join(f"{i}={n}" for i, n in enumerate(names)) + extra
        raise TalkingFacesError(f"Unknown LG-LDM {what} {name!r} for --style; choose a name or index: {shown}.")


def conditioning_for(denoiser: LatentDenoiser) -> Conditioning:
    """Upstream's orders when the widths match them (25 speakers + 7 emotions, or 8 VOCASET subjects)."""
    c = denoiser.config
    known = MEAD_SPEAKERS if c.num_emotions else VOCASET_SUBJECTS
    speakers = known if len(known) == c.num_styles else tuple(f"speaker{i}" for i in range(c.num_styles))
    emotions = (EMOTIONS if c.num_emotions == len(EMOTIONS) else tuple(f"emotion{i}" for i in range(c.num_emotions))) if c.num_emotions else ()
    # MEAD: upstream's demo speaker M003; VOCASET: index 5, FaceTalk_170913_03279_TA (as FaceFormer and FaceDiffuser).
    default = speakers[0] if c.num_emotions else speakers[min(5, len(speakers) - 1)]
    return Conditioning(speakers, emotions, default)


def vocaset_ddim_timesteps(num_train: int = 1000, steps: int = VOCASET_DDIM_STEPS) -> list[int]:
    """`reversed(linspace(-1, T - 1, steps + 1).astype(int32))` without the final -1: 999, 989, ..., 9."""
    grid = np.linspace(-1, num_train - 1, steps + 1).astype(np.int32).tolist()[::-1]
    return [t for t in grid if t >= 0]


class LGLDMAdapter(SpeechAdapter):
    """LG-LDM re-implemented: MEAD (emotion-conditioned, 25 fps) and VOCASET (30 fps) checkpoints.

    Conditioning `style`: MEAD `SPEAKER,EMOTION` (e.g. `M003,happy`; default `M003,neutral`, the
    all-zero emotion); VOCASET a training subject by name or index (default index 5).
    """

    name = "lgldm"
    accepts = frozenset({"style", "generator", "num_samples"})

    def __init__(
        self, denoiser: LatentDenoiser, vqvae: MotionVQVAE, schedule: NoiseSchedule,
        sampler: str | None = None, steps: int | None = None, device: torch.device | str = "cpu",
    ) -> None:
        super().__init__(device)
        if sampler is not None and sampler not in SAMPLERS:
            raise TalkingFacesError(f"Unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}.")
        if steps is not None and sampler is None:
            raise TalkingFacesError("--steps applies to a chosen sampler; pass --sampler ddim or dpmpp with it (the default is upstream's).")
        self.denoiser = denoiser.to(self.device).eval()
        self.vqvae = vqvae.to(self.device).eval()
        self.schedule = schedule
        self.sampler, self.steps = sampler, steps
        self.conditioning = conditioning_for(denoiser)
        self.fps = denoiser.config.fps
        self.topology = vqvae.config.vertex_dim // 3
        self.styles = self.conditioning.speakers
        self.emotional = bool(denoiser.config.num_emotions)
        if sampler is not None:
            make_scheduler(sampler, schedule, steps)  # reject a bad --steps now, before any audio is processed

    @classmethod
    def from_checkpoint(
        cls, path: str | Path | None, device: torch.device | str = "cpu", vqvae: str | Path | None = None,
        sampler: str | None = None, steps: int | None = None, **options: Any,
    ) -> "LGLDMAdapter":
        """Load the stage-2 diffusion file `path` and its stage-1 VQ-VAE `vqvae`, strictly."""
        if options:
            raise TalkingFacesError(f"Unknown LG-LDM option(s) {', '.join(options)}; the options are vqvae=, sampler= and steps=.")
        if path is None or vqvae is None:
            raise TalkingFacesError("The lgldm model needs both stages: --checkpoint STAGE2.mpt (diffusion) and --vqvae STAGE1 (VQ-VAE).")
        denoiser, buffers = load_denoiser(path)
        autoencoder = load_vqvae(vqvae)
        check_pair(denoiser, autoencoder, path, vqvae)
        return cls(denoiser, autoencoder, NoiseSchedule.from_buffers(buffers), sampler, steps, device)

    # ----- sampling ----------------------------------------------------------------------------
    def scheduler(self) -> tuple[Any, list[int]]:
        """The scheduler and the timesteps at which the denoiser is called."""
        if self.sampler == "ddpm" or (self.sampler is None and self.emotional):
            scheduler = AncestralDDPMScheduler(self.schedule, draw_at_last_step=False)  # lucidrains: no draw at t = 0
            scheduler.set_timesteps(device=self.device)
            return scheduler, [int(t) for t in scheduler.timesteps]
        if self.sampler is None:
            scheduler = DDIMScheduler(self.schedule, eta=0.0, draw_every_step=True)
            grid = vocaset_ddim_timesteps(self.schedule.num_train_timesteps)
            scheduler.set_timesteps(device=self.device, timesteps=grid)
            return scheduler, grid[:-1]  # upstream returns x at the last grid step, t = 9
        scheduler = make_scheduler(self.sampler, self.schedule, self.steps, device=self.device)
        return scheduler, [int(t) for t in scheduler.timesteps]

    @torch.inference_mode()
    def sample(
        self, audio: np.ndarray, style: str | int | None = None, generator: torch.Generator | None = None, num_samples: int = 1,
    ) -> torch.Tensor:
        """Offsets `(S, T, V*3)` from the template for `(N,)` 16 kHz audio.

        With a CPU `generator` seeded S (S = 1), the draws are upstream's after `torch.manual_seed(S)`:
        the initial latent noise, then one tensor per step in upstream's order.
        """
        style_vec, emotion_vec = self.conditioning.parse(style)
        style_vec = style_vec.to(self.device)
        emotion_vec = emotion_vec.to(self.device) if emotion_vec is not None else None
        tokens = self.denoiser.audio_tokens(normalize_audio(audio, NORMALIZE_EPS).to(self.device))
        style_emb, emotion_emb = self.denoiser.condition(style_vec, emotion_vec)
        frames, v = tokens.shape[1], self.vqvae.config
        scheduler, timesteps = self.scheduler()
        shape = (num_samples, frames * v.tokens_per_frame, v.code_dim)
        x = scheduler.initial_sample(draw_noise(shape, generator, self.device))
        for t in timesteps:
            x0 = self.denoiser(x, t, tokens, style_emb, emotion_emb)
            x = scheduler.step(x0, t, x, generator).prev_sample
        emotion = emotion_vec.expand(num_samples, -1) if emotion_vec is not None else None
        return self.vqvae.decode(self.vqvae.quant(x, emotion).codes)

    def speak(self, request: SpeechRequest) -> SpeechOutput:
        """`(S, T, V, 3)` offsets from the identity's neutral at `self.fps` (MEAD 25, VOCASET 30)."""
        offsets = self.sample(request.audio, request.style, request.generator, request.num_samples)
        return SpeechOutput(fps=self.fps, offsets=offsets.reshape(*offsets.shape[:2], -1, 3).float())
