"""Stage 1, the AU codebook: a VQ-VAE over the 33 AU tokens of one identity.

The token axis is the AU axis (token 0 neutral, tokens 1..32 the AUs in AUBlendSet order), not time.
Each token of width `hidden` is cut into `hidden // code_dim` sub-vectors, each snapped to the codebook.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .layers import LEAKY_SLOPE, ConstantPositionBias, LinearEmbedding, TokenTransformer, token_conv_block

COMMITMENT_BETA = 0.25


@dataclass(frozen=True)
class CodebookConfig:
    """Stage-1 dimensions; the defaults are the official ones (FLAME, V*3 = 15069)."""

    vertex_dim: int = 15069
    hidden: int = 1024
    num_layers: int = 6
    num_heads: int = 8
    intermediate: int = 1536
    num_codes: int = 256
    code_dim: int = 64
    kernel_size: int = 5

    @property
    def codes_per_token(self) -> int:
        return self.hidden // self.code_dim


@dataclass
class Quantized:
    """Output of the vector quantizer.

    Attributes:
        codes: `(B, L, code_dim)` nearest codebook vectors, straight-through to the input.
        loss: scalar `beta * |sg(q) - z|^2 + |q - sg(z)|^2` (means over elements).
        indices: `(B, L)` int64 code indices.
    """

    codes: torch.Tensor
    loss: torch.Tensor
    indices: torch.Tensor


def nearest_code(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest codebook row for every row of `z`.

    d[i, j] = |z_i|^2 + |e_j|^2 - 2 z_i . e_j  (the upstream expansion, kept for identical ties)

    Args:
        z: `(M, C)`; codebook: `(K, C)`.
    Returns:
        `(M,)` int64.
    """
    dist = torch.sum(z**2, dim=1, keepdim=True) + torch.sum(codebook**2, dim=1) - 2 * torch.matmul(z, codebook.t())
    return torch.argmin(dist, dim=1)


class VectorQuantizer(nn.Module):
    """Plain VQ (no EMA, no restarts) with a straight-through estimator."""

    def __init__(self, num_codes: int, code_dim: int):
        super().__init__()
        self.embedding = nn.Embedding(num_codes, code_dim)
        self.embedding.weight.data.uniform_(-1.0 / num_codes, 1.0 / num_codes)

    def forward(self, z: torch.Tensor) -> Quantized:
        """z: `(B, L, code_dim)`."""
        indices = nearest_code(z.reshape(-1, z.shape[-1]), self.embedding.weight).view(z.shape[:-1])
        return self.straight_through(z, indices)

    def straight_through(self, z: torch.Tensor, indices: torch.Tensor) -> Quantized:
        """The codes at `indices` `(B, L)` for latents `z`, passed on as `z + (codes - z)` with the codebook loss.

        The value is computed in float32 as written (it differs from `codes` by ~1e-7), because the
        upstream decoders were run on exactly this value.
        """
        codes = self.embedding.weight[indices]
        loss = COMMITMENT_BETA * torch.mean((codes.detach() - z) ** 2) + torch.mean((codes - z.detach()) ** 2)
        return Quantized(codes=z + (codes - z).detach(), loss=loss, indices=indices)


class TokenEncoder(nn.Module):
    """`(B, N, vertex_dim)` displacements -> `(B, N, hidden)` token features."""

    def __init__(self, cfg: CodebookConfig):
        super().__init__()
        self.vertice_mapping = nn.Sequential(nn.Linear(cfg.vertex_dim, cfg.hidden), nn.LeakyReLU(LEAKY_SLOPE))
        self.squasher = nn.Sequential(token_conv_block(cfg.hidden, cfg.kernel_size))
        self.encoder_transformer = TokenTransformer(cfg.hidden, cfg.num_layers, cfg.num_heads, cfg.intermediate)
        self.encoder_pos_embedding = ConstantPositionBias(cfg.hidden)
        self.encoder_linear_embedding = LinearEmbedding(cfg.hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.contextualize(self.vertice_mapping(x))

    def contextualize(self, h: torch.Tensor) -> torch.Tensor:
        """`(B, N, hidden)` mapped tokens -> squasher, linear embedding, position vector, transformer."""
        h = self.squasher(h.transpose(1, 2)).transpose(1, 2)
        return self.encoder_transformer(self.encoder_pos_embedding(self.encoder_linear_embedding(h)))


class TokenDecoder(nn.Module):
    """`(B, N, hidden)` token features -> `(B, N, vertex_dim)` displacements."""

    def __init__(self, cfg: CodebookConfig):
        super().__init__()
        self.expander = nn.Sequential(token_conv_block(cfg.hidden, cfg.kernel_size))
        self.decoder_transformer = TokenTransformer(cfg.hidden, cfg.num_layers, cfg.num_heads, cfg.intermediate)
        self.decoder_pos_embedding = ConstantPositionBias(cfg.hidden)
        self.decoder_linear_embedding = LinearEmbedding(cfg.hidden)
        self.vertice_map_reverse = nn.Linear(cfg.hidden, cfg.vertex_dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = self.expander(h.transpose(1, 2)).transpose(1, 2)
        h = self.decoder_transformer(self.decoder_pos_embedding(self.decoder_linear_embedding(h)))
        return self.vertice_map_reverse(h)


@dataclass
class CodebookOutput:
    """Reconstruction of AUBlendSet rows.

    Attributes:
        rows: `(B, N, vertex_dim)` reconstructed absolute rows.
        quantized: the quantizer output for the `(B, N*Q, code_dim)` latents.
    """

    rows: torch.Tensor
    quantized: Quantized


class AUCodebook(nn.Module):
    """The stage-1 VQ-VAE (upstream `VQAutoEncoder`)."""

    def __init__(self, cfg: CodebookConfig):
        super().__init__()
        if cfg.hidden % cfg.code_dim or cfg.hidden % cfg.num_heads:
            raise ValueError(f"hidden {cfg.hidden} must be a multiple of code_dim {cfg.code_dim} and num_heads {cfg.num_heads}")
        self.config = cfg
        self.encoder = TokenEncoder(cfg)
        self.decoder = TokenDecoder(cfg)
        self.quantize = VectorQuantizer(cfg.num_codes, cfg.code_dim)

    def encode(self, displacements: torch.Tensor) -> torch.Tensor:
        """`(B, N, vertex_dim)` -> `(B, N*Q, code_dim)` latents; latent `t*Q + s` is slice s of token t."""
        h = self.encoder(displacements)
        return h.reshape(h.shape[0], -1, self.config.code_dim)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """`(B, N*Q, code_dim)` -> `(B, N, vertex_dim)` displacements."""
        return self.decoder(codes.reshape(codes.shape[0], -1, self.config.hidden))

    def quantize_rows(self, rows: torch.Tensor, template: torch.Tensor) -> Quantized:
        """Quantized latents of absolute rows `(B, N, vertex_dim)` around `template (B, vertex_dim)`."""
        return self.quantize(self.encode(rows - template[:, None]))

    def forward(self, rows: torch.Tensor, template: torch.Tensor) -> CodebookOutput:
        """Reconstruct absolute rows `(B, N, vertex_dim)` of identities with neutral `template (B, vertex_dim)`."""
        quantized = self.quantize_rows(rows, template)
        return CodebookOutput(rows=self.decode(quantized.codes) + template[:, None], quantized=quantized)
