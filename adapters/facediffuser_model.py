"""FaceDiffuser's denoiser (`FaceDiff` of uuembodiedsocialai/FaceDiffuser and ProbTalk3D's 3D-MEAD variant).

The network predicts x0 in absolute vertex coordinates (template + offsets) from a noisy sample,
a timestep and the speech. Upstream runs HuBERT inside every denoiser call; here the speech path
(`encode_audio`, then `audio_tokens`) runs once per audio and `denoise` runs once per step, which is
the same arithmetic because HuBERT's output depends on the audio alone.

Upstream quirks the weights depend on, reproduced:
- the timestep enters as the one-hot row `eye(D)[t]` through Linear + Mish, not a sinusoid;
- the input projection's Conv1d runs along the 2L feature axis with the frames as its batch;
- audio pairing: at 30 fps the 50 Hz HuBERT states are linearly interpolated (align_corners) to 2T
  frames, at 25 fps a trailing odd frame is dropped; consecutive pairs are concatenated (2H wide);
- the style vector multiplies the GRU output (VOCASET, BIWI) or the projected audio tokens (MEAD).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from talking_faces.errors import TalkingFacesError

from .audio_encoders import FEATURE_RATE, build_audio_encoder

StyleTarget = Literal["output", "audio"]


@dataclass(frozen=True)
class FaceDiffConfig:
    """Sizes of one FaceDiffuser network; all of them follow from the checkpoint's tensor shapes."""

    vertice_dim: int = 15069
    latent_dim: int = 256
    gru_dim: int = 256
    gru_layers: int = 2
    diffusion_steps: int = 1000
    num_conditions: int = 8
    style_target: StyleTarget = "output"  # "audio" for ProbTalk3D's 3D-MEAD variant
    fps: float = 30.0
    audio_encoder: dict[str, Any] = field(default_factory=dict)  # HubertConfig overrides

    @property
    def audio_pairing(self) -> int:
        """HuBERT frames per motion frame: ceil(50 / fps), 2 for both released rates."""
        return math.ceil(FEATURE_RATE / self.fps)


def pair_audio_frames(hidden: torch.Tensor, num_frames: int, fps: float) -> torch.Tensor:
    """Bring 50 Hz HuBERT states to the motion rate and concatenate consecutive pairs.

    Args:
        hidden: `(1, Na, H)` HuBERT states.
        num_frames: T motion frames.
    Returns:
        `(1, T', k*H)` with k = ceil(50 / fps) and T' = T, or T' = Na // 2 < T at 25 fps when the
        audio is shorter than 2T frames (upstream then cuts the motion to T').
    """
    factor = math.ceil(FEATURE_RATE / fps)
    if FEATURE_RATE % fps == 0 and factor == 2:
        length = hidden.shape[1] - hidden.shape[1] % 2
        hidden = hidden[:, : min(length, 2 * num_frames)]
    elif FEATURE_RATE > fps:
        hidden = F.interpolate(hidden.transpose(1, 2), size=num_frames * factor, mode="linear", align_corners=True).transpose(1, 2)
    else:
        raise TalkingFacesError(f"FaceDiffuser pairs 50 Hz audio states with motion at 25 or 30 fps, not {fps:g}; use a checkpoint trained at one of these.")
    return hidden.reshape(1, hidden.shape[1] // factor, hidden.shape[2] * factor)


class FaceDiff(nn.Module):
    """The denoiser; attribute names are upstream's, so official state_dicts load as they are."""

    def __init__(self, config: FaceDiffConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.audio_encoder = build_audio_encoder("hubert", **c.audio_encoder)
        audio_dim = self.audio_encoder.config.hidden_size * c.audio_pairing
        self.cond_projection = nn.Linear(audio_dim, c.latent_dim)
        self.input_projection = nn.Sequential(
            nn.Linear(c.vertice_dim, c.latent_dim * 2),
            nn.Conv1d(1, 1, kernel_size=9, padding="same"),
            nn.ReLU(),
            nn.MaxPool1d(kernel_size=2, stride=2),
            nn.ReLU(),
        )
        self.time_mlp = nn.Sequential(nn.Linear(c.diffusion_steps, c.latent_dim), nn.Mish())
        self.norm_cond = nn.LayerNorm(c.latent_dim * 3)
        self.gru = nn.GRU(c.latent_dim * 3, c.gru_dim, num_layers=c.gru_layers, batch_first=True, dropout=0.3 if c.gru_layers > 1 else 0.0)
        self.final_layer = nn.Linear(c.gru_dim, c.vertice_dim)
        nn.init.zeros_(self.final_layer.weight)
        nn.init.zeros_(self.final_layer.bias)
        self.obj_vector = nn.Linear(c.num_conditions, c.latent_dim, bias=False)
        self.freeze_pretrained_audio()

    def freeze_pretrained_audio(self) -> None:
        """Upstream trains HuBERT's transformer layers 2.. only: its CNN, projection and layers 0-1 stay frozen."""
        for name, param in self.audio_encoder.named_parameters():
            frozen_layer = name.startswith("encoder.layers.") and int(name.split(".")[2]) in (0, 1)
            if name.startswith(("feature_extractor.", "feature_projection.")) or frozen_layer:
                param.requires_grad = False

    def encode_audio(self, audio: torch.Tensor) -> torch.Tensor:
        """HuBERT's last hidden state, `(1, N)` normalised 16 kHz samples -> `(1, Na, H)` at 50 Hz.

        Na = floor((N - 400) / 320) + 1. Runs in whatever mode the module is in (eval draws nothing).
        """
        return self.audio_encoder(audio.reshape(1, -1)).last_hidden_state

    def audio_tokens(self, hidden: torch.Tensor, num_frames: int, condition: torch.Tensor) -> torch.Tensor:
        """The per-audio half of the network: pairing, `cond_projection`, and for MEAD the style product.

        Args:
            hidden: `(1, Na, H)` from `encode_audio`.
            condition: `(K,)` one-hot (or any weights) over the training conditions.
        Returns:
            `(1, T', L)` audio tokens, T' <= num_frames (see `pair_audio_frames`).
        """
        tokens = self.cond_projection(pair_audio_frames(hidden, num_frames, self.config.fps))
        if self.config.style_target == "audio":
            tokens = tokens * self.obj_vector(condition)
        return tokens

    def denoise(self, x: torch.Tensor, t: int, tokens: torch.Tensor, condition: torch.Tensor, template: torch.Tensor) -> torch.Tensor:
        """The per-step half: x0 estimate for the noisy sample x at timestep t.

        Args:
            x: `(B, T, V*3)` noisy absolute vertices.
            tokens: `(1, T', L)` from `audio_tokens`, shared by the B samples.
            condition: `(K,)` one-hot.
            template: `(V*3,)` neutral vertices.
        Returns:
            `(B, T', V*3)` absolute vertices.
        """
        return self.final_layer(self.hidden(self.input_projection[0](x), t, tokens, condition)) + template

    def hidden(self, projected: torch.Tensor, t: int, tokens: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """`denoise` between its two vertex-sized layers: `(B, T, 2L)` = input Linear(x) -> `(B, T', G)`,
        the input of `final_layer`. Both ends are affine in the vertices, which linear samplers exploit."""
        batch, frames = projected.shape[:2]
        used = min(frames, tokens.shape[1])
        one_hot = torch.zeros(self.config.diffusion_steps, device=projected.device)
        one_hot[t] = 1.0
        t_tokens = self.time_mlp(one_hot).expand(batch, used, -1)
        # Conv1d over the 2L features with each frame as its own batch item: (B*T, 1, 2L).
        features = projected.reshape(batch * frames, 1, -1)
        for layer in self.input_projection[1:]:
            features = layer(features)
        features = features.reshape(batch, frames, -1)[:, :used]
        hidden = torch.cat([tokens[:, :used].expand(batch, -1, -1), features, t_tokens], dim=-1)
        output, _ = self.gru(self.norm_cond(hidden))
        if self.config.style_target == "output":
            output = output * self.obj_vector(condition)
        return output

    def forward(self, x: torch.Tensor, t: int, audio: torch.Tensor, condition: torch.Tensor, template: torch.Tensor) -> torch.Tensor:
        """Upstream's whole call (HuBERT included): for training, where HuBERT is fine-tuned.

        Args:
            x: `(B, T, V*3)`; audio: `(1, N)` normalised samples. Returns `(B, T', V*3)`.
        """
        tokens = self.audio_tokens(self.encode_audio(audio), x.shape[1], condition)
        return self.denoise(x, t, tokens, condition, template)
