"""Stage 2, the style predictor (upstream `AUBlendNet`): a neutral head in, its 33 AUBlendSet rows out.

template T (B, D) ─► 33 tokens w_k*T + b_k ─► Linear(D, F) ─► DiT blocks conditioned on style(T)
    ─► feat_map ─► (B, 33*Q, code_dim) ─► nearest code of the frozen codebook ─► its decoder ─► + T
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .codebook import AUCodebook
from .layers import multi_head_attention, tanh_gelu


@dataclass(frozen=True)
class PredictorConfig:
    """Stage-2 dimensions; the defaults are the official ones."""

    vertex_dim: int = 15069
    feature_dim: int = 1024
    num_tokens: int = 33
    num_layers: int = 8
    num_heads: int = 8
    mlp_hidden: int = 2048
    code_width: int = 1024  # feat_map output = codes per token * code_dim = the codebook's hidden


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN: x * (1 + scale) + shift, with `x (B, N, F)` and per-sample `shift, scale (B, F)`."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class BlockAttention(nn.Module):
    """DiT self-attention (timm layout): qkv with bias, scale head_dim**-0.5."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = (x.shape[-1] // self.num_heads) ** -0.5
        return self.proj(multi_head_attention(self.qkv(x), self.num_heads, scale))


class BlockMLP(nn.Module):
    """DiT feed-forward (timm layout): fc1 -> tanh GELU -> fc2."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(tanh_gelu(self.fc1(x)))


class DiTBlock(nn.Module):
    """Attention and MLP with gated adaLN modulation from a condition `c (B, F)`.

    The modulation Linear keeps PyTorch's default init (upstream never zeroes it: not adaLN-Zero).
    """

    def __init__(self, dim: int, num_heads: int, mlp_hidden: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = BlockAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = BlockMLP(dim, mlp_hidden)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """x: `(B, N, F)` tokens; c: `(B, F)` condition, one per sample."""
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gate_msa.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift_msa, scale_msa))
        return x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))


@dataclass
class PredictorOutput:
    """Attributes:
    rows: `(B, 33, vertex_dim)` absolute rows: row 0 the reconstructed neutral, rows 1..32 the AU targets.
    features: `(B, 33*Q, code_dim)` pre-quantisation latents (regressed onto the GT codes in training).
    """

    rows: torch.Tensor
    features: torch.Tensor


class StyleBlendNet(nn.Module):
    """The stage-2 predictor, with the frozen stage-1 codebook attached as `autoencoder`."""

    def __init__(self, cfg: PredictorConfig, codebook: AUCodebook):
        super().__init__()
        cb = codebook.config
        if cfg.vertex_dim != cb.vertex_dim or cfg.code_width != cb.hidden:
            raise ValueError(
                f"predictor (vertex_dim {cfg.vertex_dim}, code_width {cfg.code_width}) does not fit the codebook "
                f"(vertex_dim {cb.vertex_dim}, hidden {cb.hidden})"
            )
        self.config = cfg
        self.feature_map = nn.Linear(cfg.vertex_dim, cfg.feature_dim)
        self.onehot_feature_map = nn.Linear(1, cfg.num_tokens)
        self.blocks = nn.ModuleList(DiTBlock(cfg.feature_dim, cfg.num_heads, cfg.mlp_hidden) for _ in range(cfg.num_layers))
        self.feat_map = nn.Linear(cfg.feature_dim, cfg.code_width, bias=False)
        nn.init.zeros_(self.feat_map.weight)  # the first prediction is decode(quantize(0)) + T
        self.learnable_style_emb = nn.Linear(cfg.vertex_dim, cfg.feature_dim)
        self.autoencoder = codebook
        self.autoencoder.requires_grad_(False)
        self.autoencoder.eval()

    def train(self, mode: bool = True) -> StyleBlendNet:
        """Train the predictor; the codebook stays frozen in eval mode (no position dropout)."""
        super().train(mode)
        self.autoencoder.eval()
        return self

    def features(self, template: torch.Tensor) -> torch.Tensor:
        """`template (B, vertex_dim)` -> `(B, 33*Q, code_dim)` pre-quantisation latents."""
        # Token k = w_k * T + b_k: the one learned scalar pair per token is all that tells tokens apart.
        tokens = self.onehot_feature_map(template.unsqueeze(-1)).transpose(1, 2)
        x = self.feature_map(tokens)
        # Each sample is conditioned on its own style (upstream takes sample 0's for the whole batch).
        style = self.learnable_style_emb(template)
        for block in self.blocks:
            x = block(x, style)
        return self.feat_map(x).reshape(x.shape[0], -1, self.autoencoder.config.code_dim)

    def forward(self, template: torch.Tensor) -> PredictorOutput:
        """Predict the absolute rows `(B, 33, vertex_dim)` of identities with neutral `template (B, vertex_dim)`."""
        features = self.features(template)
        codes = self.autoencoder.quantize(features).codes
        return PredictorOutput(rows=self.autoencoder.decode(codes) + template[:, None], features=features)
