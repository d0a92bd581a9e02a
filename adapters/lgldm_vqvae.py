"""LG-LDM stage 1: the motion VQ-VAEs whose codebooks the latent diffusion snaps its samples to.

Both are CodeTalker's transformer VQ-VAE over time (one token per frame, cut into `tokens_per_frame`
codes of `code_dim`), built from the same layers as the AU codebook (`talking_faces.aublendnet`):

- VOCASET: CodeTalker's stage 1 as it is (256 codes, 16 per frame); `AUCodebook` with a time axis.
- MEAD, the EVQ-VAE: an emotion one-hot mapped and added to every frame before the squasher, a
  `_post` Linear to `tokens_per_frame * code_dim` after the encoder and a `_pre` Linear back before
  the decoder, `vertice_map_reverse` without bias, and a codebook of `num_emotions` slices of which
  only the slice of the sequence's emotion is searched.

Upstream quirks kept because the weights depend on them (all inherited from the shared layers):
attention scale hidden**-0.5, tanh GELU, the position-0 vector added to every frame, replicate
padding, InstanceNorm over time without affine, and the straight-through value `z + (z_q - z)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from talking_faces.aublendnet.codebook import (
    AUCodebook, CodebookConfig, Quantized, TokenDecoder, TokenEncoder, VectorQuantizer, nearest_code,
)
from talking_faces.aublendnet.layers import LEAKY_SLOPE, LinearEmbedding

# LG-LDM's emotion one-hot order (datasets/data_loader_mead.py); neutral is the all-zero vector.
EMOTIONS = ("angry", "contempt", "disgusted", "fear", "happy", "sad", "surprised")


@dataclass(frozen=True)
class MotionVQConfig(CodebookConfig):
    """Stage-1 dimensions. Defaults: the MEAD EVQ-VAE (1792 codes = 7 emotions x 256, 8 codes per frame).

    Attributes (besides CodebookConfig's):
        tokens_per_frame: codes per frame (`face_quan_num`); the latent width is tokens_per_frame * code_dim.
        num_emotions: width of the emotion one-hot; 0 for the plain CodeTalker VQ-VAE (VOCASET).
    """

    num_codes: int = 1792
    tokens_per_frame: int = 8
    num_emotions: int = len(EMOTIONS)

    @property
    def latent_width(self) -> int:
        return self.tokens_per_frame * self.code_dim

    @property
    def codes_per_emotion(self) -> int:
        return self.num_codes // max(self.num_emotions, 1)


def vocaset_config(**overrides: int) -> MotionVQConfig:
    """CodeTalker's VOCASET stage 1: 256 codes of 64, hidden / 64 = 16 per frame, no emotion branch."""
    base = MotionVQConfig(**{"num_codes": 256, "num_emotions": 0, **overrides})
    return MotionVQConfig(**{**base.__dict__, "tokens_per_frame": base.hidden // base.code_dim})


def emotion_slot(emotion: torch.Tensor) -> torch.Tensor:
    """Index of each sample's emotion: argmax of `(B, E)`; the all-zero (neutral) vector gives 0, as upstream."""
    return emotion.argmax(dim=-1)


class EmotionQuantizer(VectorQuantizer):
    """The EVQ-VAE codebook: sample b searches only rows [k*S, (k+1)*S) of its emotion k (S = codes per emotion)."""

    def __init__(self, num_codes: int, code_dim: int, num_emotions: int):
        super().__init__(num_codes, code_dim)
        self.slice_size = num_codes // num_emotions

    def forward(self, z: torch.Tensor, emotion: torch.Tensor) -> Quantized:
        """z: `(B, L, code_dim)`; emotion: `(B, E)` one-hot. Indices are rows of the whole codebook."""
        weight, size = self.embedding.weight, self.slice_size
        # The slice itself goes into the distance matmul (as upstream), so ties and rounding match.
        indices = torch.stack([
            nearest_code(z[b].reshape(-1, z.shape[-1]), weight[k * size:(k + 1) * size]) + k * size
            for b, k in enumerate(emotion_slot(emotion).tolist())
        ])
        return self.straight_through(z, indices.view(z.shape[:-1]))


class EmotionEncoder(TokenEncoder):
    """EVQ-VAE encoder: `(B, T, V*3)` offsets + `(B, E)` emotion -> `(B, T, tokens_per_frame * code_dim)`."""

    def __init__(self, cfg: MotionVQConfig):
        super().__init__(cfg)
        self.emotion_mapping = nn.Sequential(nn.Linear(cfg.num_emotions, cfg.hidden), nn.LeakyReLU(LEAKY_SLOPE))
        self.encoder_linear_embedding_post = LinearEmbedding(cfg.hidden, cfg.latent_width)

    def forward(self, x: torch.Tensor, emotion: torch.Tensor) -> torch.Tensor:
        h = self.vertice_mapping(x) + self.emotion_mapping(emotion)[:, None]
        return self.encoder_linear_embedding_post(self.contextualize(h))


class EmotionDecoder(TokenDecoder):
    """EVQ-VAE decoder: `(B, T, tokens_per_frame * code_dim)` -> `(B, T, V*3)` offsets (no output bias)."""

    def __init__(self, cfg: MotionVQConfig):
        super().__init__(cfg)
        self.decoder_linear_embedding_pre = LinearEmbedding(cfg.latent_width, cfg.hidden)
        self.vertice_map_reverse = nn.Linear(cfg.hidden, cfg.vertex_dim, bias=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return super().forward(self.decoder_linear_embedding_pre(h))


class MotionVQVAE(AUCodebook):
    """Stage 1 of LG-LDM (upstream `VQAutoEncoder`), plain (VOCASET) or emotion-partitioned (MEAD).

    Latents are `(B, T * tokens_per_frame, code_dim)`: latent `t * Q + s` is code s of frame t.
    `emotion` `(B, E)` is required by the MEAD variant and ignored by the VOCASET one.
    """

    def __init__(self, cfg: MotionVQConfig):
        super().__init__(cfg)
        self.config: MotionVQConfig = cfg
        if cfg.num_emotions:
            self.encoder = EmotionEncoder(cfg)
            self.decoder = EmotionDecoder(cfg)
            self.quantize = EmotionQuantizer(cfg.num_codes, cfg.code_dim, cfg.num_emotions)
        elif cfg.latent_width != cfg.hidden:
            raise ValueError(f"a VQ-VAE without emotion branch needs tokens_per_frame * code_dim == hidden ({cfg.hidden})")

    @property
    def emotional(self) -> bool:
        return self.config.num_emotions > 0

    def encode(self, offsets: torch.Tensor, emotion: torch.Tensor | None = None) -> torch.Tensor:
        """`(B, T, V*3)` offsets from the template -> `(B, T*Q, code_dim)` pre-quantisation latents."""
        h = self.encoder(offsets, emotion) if self.emotional else self.encoder(offsets)
        return h.reshape(h.shape[0], -1, self.config.code_dim)

    def quant(self, latents: torch.Tensor, emotion: torch.Tensor | None = None) -> Quantized:
        """Snap `(B, T*Q, code_dim)` latents to the codebook (the emotion's slice for MEAD)."""
        return self.quantize(latents, emotion) if self.emotional else self.quantize(latents)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """`(B, T*Q, code_dim)` -> `(B, T, V*3)` offsets."""
        return self.decoder(codes.reshape(codes.shape[0], -1, self.config.latent_width))

    def forward(self, offsets: torch.Tensor, emotion: torch.Tensor | None = None) -> tuple[torch.Tensor, Quantized]:  # type: ignore[override]
        """Encode, quantise and decode `(B, T, V*3)` offsets; returns the decoded offsets and the quantiser output."""
        quantized = self.quant(self.encode(offsets, emotion), emotion)
        return self.decode(quantized.codes), quantized
