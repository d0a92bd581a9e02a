"""LG-LDM stage 2: the FDM denoiser, which predicts clean stage-1 latents from noisy ones and speech.

Upstream (`models/fdm_vqvae_mead.py`, `models/fdm_vocaset.py`) re-runs HuBERT-large inside every
call. Here the audio path is split off: `audio_tokens` runs HuBERT and `audio_extract` once per
clip, and `forward` takes those tokens. Every per-step operation is upstream's, in its order, so
the result is bit-identical (the audio part depends on nothing that changes between steps).

Per frame, the noisy latent's `tokens_per_frame` codes are concatenated to one `feature_dim`
vector ("global"); the decoder attends to it with FaceFormer's ALiBi mask (period 30) and to its
own audio frame only (the diagonal memory mask); the audio tokens carry the one-hot timestep
embedding. Masks and positional tables are rebuilt for any length (upstream stops at 600 frames).

In eval mode the cross-attention is computed as what the diagonal mask leaves of it: softmax over a
single unmasked key is exactly 1, so frame i receives exactly out_proj(v_i); the query and key
projections are skipped. The result equals `nn.TransformerDecoder`'s bit for bit (tested); training
keeps the full module, whose attention dropout acts on that weight.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from talking_faces.aublendnet.layers import sinusoid_table

from .audio_encoders import build_audio_encoder, encode_frames
from .faceformer_model import alignment_mask, biased_mask, periodic_encoding


@dataclass(frozen=True)
class DenoiserConfig:
    """FDM dimensions and conventions. Defaults: the MEAD model.

    Attributes:
        feature_dim: width F of one frame (= tokens_per_frame * code_dim of stage 1): MEAD 512, VOCASET 1024.
        n_head: decoder heads (not stored in checkpoints): MEAD 4, VOCASET 8.
        num_layers: post-LN decoder layers (8).
        ffn_dim: decoder feed-forward width (2F).
        num_styles: speaker one-hot width (MEAD 25, VOCASET 8).
        num_emotions: emotion one-hot width (MEAD 7, VOCASET 0 = none).
        num_timesteps: diffusion steps (one-hot timestep width, 1000).
        audio_steps_per_frame: 2 = pairs of 50 Hz HuBERT frames (MEAD, 25 fps); 1 = CNN features
            resampled to `fps` before the transformer (VOCASET, 30 fps).
        periodic_position: True = FaceFormer's periodic encoding (VOCASET); False = plain sinusoids (MEAD).
        period: period of the ALiBi mask and of the periodic encoding (30 for both).
        fps: frame rate of the motion.
        audio_encoder: overrides of transformers' HubertConfig (empty = hubert-base architecture).
    """

    feature_dim: int = 512
    n_head: int = 4
    num_layers: int = 8
    ffn_dim: int = 1024
    num_styles: int = 25
    num_emotions: int = 7
    num_timesteps: int = 1000
    audio_steps_per_frame: int = 2
    periodic_position: bool = False
    period: int = 30
    fps: float = 25.0
    audio_encoder: dict[str, Any] = field(default_factory=dict)


class LatentDenoiser(nn.Module):
    """The FDM. Submodule names are upstream's (`denoise_fn.*` in the stage-2 checkpoint)."""

    def __init__(self, config: DenoiserConfig) -> None:
        super().__init__()
        self.config = config
        self._tables_key: tuple | None = None  # see _frame_tables
        self._tables: tuple[torch.Tensor, torch.Tensor] | None = None
        f = config.feature_dim
        self.audio_encoder = build_audio_encoder("hubert", **config.audio_encoder)
        self.audio_encoder.feature_extractor._freeze_parameters()  # upstream trains the rest of HuBERT
        hidden = self.audio_encoder.config.hidden_size
        self.audio_extract = nn.Sequential(nn.Linear(hidden * config.audio_steps_per_frame, f), nn.Mish(), nn.Linear(f, f))
        self.time_embedd = nn.Sequential(nn.Linear(config.num_timesteps, f), nn.Mish())
        self.emotion_embedd = nn.Linear(config.num_emotions, f) if config.num_emotions else None
        self.style_embedd = nn.Linear(config.num_styles, f)
        self.latent_encoder = nn.Sequential(nn.Linear(f, f), nn.Mish())
        self.position_dropout = nn.Dropout(0.1)
        layer = nn.TransformerDecoderLayer(f, config.n_head, dim_feedforward=config.ffn_dim, batch_first=True)
        self.transformer_decoder = nn.TransformerDecoder(layer, num_layers=config.num_layers)
        self.latent_decoder = nn.Linear(f, f)
        nn.init.zeros_(self.latent_decoder.weight)
        nn.init.zeros_(self.latent_decoder.bias)

    # ----- once per clip -----------------------------------------------------------------------
    def audio_features(self, audio: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """HuBERT states per motion frame.

        Args:
            audio: `(B, N)` normalised 16 kHz samples.
            num_frames: frame count to resample to (VOCASET training); None derives it from the audio.
        Returns:
            `(B, T, H * audio_steps_per_frame)`; MEAD: T = L // 2 of the L 50 Hz frames, pairs
            concatenated; VOCASET: T = int(L / 50 * 30).
        """
        c = self.config
        # Upstream's MEAD encoder sees all (even) frames and cuts afterwards, so no num_frames there.
        frames_arg = num_frames if c.audio_steps_per_frame == 1 else None
        hidden, frames = encode_frames(self.audio_encoder, audio, c.fps, c.audio_steps_per_frame, frames_arg)
        return hidden.reshape(hidden.shape[0], frames, -1)

    def audio_tokens(self, audio: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """`audio_extract(audio_features)`: `(B, T, F)`, constant over the denoising steps."""
        return self.audio_extract(self.audio_features(audio, num_frames))

    def condition(self, style: torch.Tensor, emotion: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Speaker `(B, S)` and emotion `(B, E)` one-hots -> their `(B, 1, F)` embeddings (emotion None for VOCASET)."""
        style_vec = self.style_embedd(style)[:, None]
        if self.emotion_embedd is None:
            return style_vec, None
        return style_vec, self.emotion_embedd(emotion)[:, None]

    # ----- every step --------------------------------------------------------------------------
    def time_embedding(self, t: int, like: torch.Tensor) -> torch.Tensor:
        """`time_embedd` of the one-hot of step t: `(F,)` (upstream feeds a float32 row of eye(1000))."""
        one_hot = torch.zeros(self.config.num_timesteps, dtype=like.dtype, device=like.device)
        one_hot[t] = 1.0
        return self.time_embedd(one_hot)

    def positions(self, length: int, like: torch.Tensor) -> torch.Tensor:
        """`(length, F)` positional table at any length (upstream buffers hold 5000 or 630 rows)."""
        c = self.config
        table = periodic_encoding(length, c.feature_dim, c.period) if c.periodic_position else sinusoid_table(length, c.feature_dim)
        return table.to(like)

    def _frame_tables(self, frames: int, batch: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The positional table `(frames, F)` and the self-attention bias `(batch * n_head, frames, frames)`,
        kept for the next call of the same shapes: a sampler calls the denoiser up to 1000 times a clip."""
        key = (frames, batch, like.dtype, like.device)
        if self._tables_key != key:
            c = self.config
            self._tables = (self.positions(frames, like), biased_mask(c.n_head, frames, c.period).to(like).repeat(batch, 1, 1))
            self._tables_key = key
        return self._tables

    def forward(
        self,
        latents: torch.Tensor,
        t: int,
        audio_tokens: torch.Tensor,
        style: torch.Tensor,
        emotion: torch.Tensor | None = None,
        reference: bool = False,
    ) -> torch.Tensor:
        """x0 prediction.

        Args:
            latents: `(B, T * Q, code_dim)` noisy latents at step t (Q codes per frame).
            t: the diffusion step (one for the whole batch, as in sampling and upstream training).
            audio_tokens: `(B or 1, T_a, F)` from `audio_tokens`.
            style, emotion: `(B or 1, 1, F)` from `condition`.
            reference: run `nn.TransformerDecoder` with the full cross-attention, as upstream (the test
                oracle and the benchmark's upstream way); always so in training mode.
        Returns:
            `(B, min(T, T_a) * Q, code_dim)` predicted clean latents.
        """
        b, length, code_dim = latents.shape
        f = self.config.feature_dim
        frames = min(length * code_dim // f, audio_tokens.shape[1])
        x = latents.reshape(b, -1, f)[:, :frames]
        memory = audio_tokens[:, :frames] + self.time_embedding(t, latents)
        h = self.latent_encoder(x) + style
        if emotion is not None:
            h = h + emotion
        positions, tgt_mask = self._frame_tables(frames, b, h)
        h = self.position_dropout(h + positions)
        if memory.shape[0] != b:
            memory = memory.expand(b, -1, -1)
        if reference or self.training:
            memory_mask = alignment_mask(frames, frames, 1).to(h.device)
            out = self.transformer_decoder(h, memory, tgt_mask=tgt_mask, memory_mask=memory_mask)
        else:
            out = self._decode_aligned(h, memory, tgt_mask)
        return self.latent_decoder(out).reshape(b, frames * f // code_dim, code_dim)

    def _decode_aligned(self, h: torch.Tensor, memory: torch.Tensor, tgt_mask: torch.Tensor) -> torch.Tensor:
        """The post-LN decoder layers (nn.TransformerDecoderLayer's order) with each frame's cross-attention
        reduced to out_proj(v) of its own audio frame: `(B, T, F)` -> `(B, T, F)`."""
        f = self.config.feature_dim
        for layer in self.transformer_decoder.layers:
            h = layer.norm1(h + layer.dropout1(layer.self_attn(h, h, h, attn_mask=tgt_mask, need_weights=False)[0]))
            cross = layer.multihead_attn
            values = F.linear(memory, cross.in_proj_weight[2 * f:], cross.in_proj_bias[2 * f:])
            h = layer.norm2(h + layer.dropout2(cross.out_proj(values)))
            h = layer.norm3(h + layer.dropout3(layer.linear2(layer.dropout(layer.activation(layer.linear1(h))))))
        return h
