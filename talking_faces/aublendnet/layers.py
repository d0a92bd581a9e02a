"""Building blocks shared by the AU codebook (stage 1) and the style predictor (stage 2).

Attribute names (`fn`, `norm`, `to_qkv`, `net`, ...) are the upstream ones, kept only so that the
official state dicts load without a rename table.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LEAKY_SLOPE = 0.2
POSITION_DROPOUT = 0.1
POSITION_TABLE_LENGTH = 5000


def multi_head_attention(qkv: torch.Tensor, num_heads: int, scale: float) -> torch.Tensor:
    """Softmax self-attention from packed projections.

    out[b, n, h*d] = sum_m softmax_m(scale * q[b,h,n] . k[b,h,m]) * v[b,h,m,d]

    Args:
        qkv: `(B, N, 3*D)` laid out `[q | k | v]`, each `D = num_heads * head_dim` with heads contiguous.
        num_heads: number of heads.
        scale: logit scale (stage 1: hidden**-0.5, stage 2: head_dim**-0.5).
    Returns:
        `(B, N, D)`.
    """
    b, n, width = qkv.shape
    q, k, v = qkv.reshape(b, n, 3, num_heads, width // (3 * num_heads)).permute(2, 0, 3, 1, 4)
    # Explicit softmax (not scaled_dot_product_attention) to match the upstream arithmetic.
    weights = torch.softmax(torch.einsum("bhid,bhjd->bhij", q, k) * scale, dim=-1)
    return torch.einsum("bhij,bhjd->bhid", weights, v).transpose(1, 2).reshape(b, n, -1)


def tanh_gelu(x: torch.Tensor) -> torch.Tensor:
    """GELU with the tanh approximation, the activation of both upstream stages."""
    return F.gelu(x, approximate="tanh")


def sinusoid_table(length: int, dim: int) -> torch.Tensor:
    """The upstream sinusoidal table `(length, dim)`: sin on even channels, cos on odd ones."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq)
    return table


class ConstantPositionBias(nn.Module):
    """Adds one vector to every token, then dropout (active in training only).

    Quirk reproduced: upstream indexes its seq-first table `pe (length, 1, dim)` by *batch* position,
    so at B=1 every token gets pe[0] = [0, 1, 0, 1, ...]; we add that row to every sample (fixing B>1).
    The whole table is kept only because the checkpoint format stores it.
    """

    def __init__(self, dim: int, length: int = POSITION_TABLE_LENGTH):
        super().__init__()
        self.register_buffer("pe", sinusoid_table(length, dim).unsqueeze(1))
        self.dropout = nn.Dropout(POSITION_DROPOUT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(x + self.pe[0, 0])


def token_conv_block(dim: int, kernel_size: int) -> nn.Sequential:
    """Conv1d over the token axis (replicate padding) -> LeakyReLU 0.2 -> InstanceNorm across tokens.

    Input and output `(B, C, N)`: neighbouring AUs (in AUBlendSet order) mix through the kernel.
    """
    return nn.Sequential(
        nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, padding_mode="replicate"),
        nn.LeakyReLU(LEAKY_SLOPE),
        nn.InstanceNorm1d(dim, affine=False),
    )


class LinearEmbedding(nn.Module):
    """A Linear under the attribute `net` (upstream key layout); square unless `out_dim` is given."""

    def __init__(self, dim: int, out_dim: int | None = None):
        super().__init__()
        self.net = nn.Linear(dim, out_dim or dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TokenAttention(nn.Module):
    """Stage-1 self-attention: bias-free qkv, scale hidden**-0.5 (upstream quirk: 1/32, not 1/sqrt(128))."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.to_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_out(multi_head_attention(self.to_qkv(x), self.num_heads, x.shape[-1] ** -0.5))


class TokenMLP(nn.Module):
    """Stage-1 feed-forward: Linear -> tanh GELU -> Linear."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.l1 = nn.Linear(dim, hidden)
        self.l2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l2(tanh_gelu(self.l1(x)))


class PreNorm(nn.Module):
    """fn(LayerNorm(x)), LayerNorm eps 1e-5 with affine weights."""

    def __init__(self, dim: int, fn: nn.Module):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=1e-5)
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.norm(x))


class Residual(nn.Module):
    """x + fn(x)."""

    def __init__(self, fn: nn.Module):
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x) + x


class TokenTransformer(nn.Module):
    """Pre-norm transformer over `(B, N, C)` tokens; no final norm (as upstream)."""

    def __init__(self, dim: int, num_layers: int, num_heads: int, intermediate: int):
        super().__init__()
        blocks: list[nn.Module] = []
        for _ in range(num_layers):
            blocks += [Residual(PreNorm(dim, TokenAttention(dim, num_heads))), Residual(PreNorm(dim, TokenMLP(dim, intermediate)))]
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
