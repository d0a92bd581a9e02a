"""The schedule buffers of lucidrains-style Gaussian diffusions (video-diffusion-pytorch; LG-LDM).

Their `GaussianDiffusion` computes a cosine schedule in float64 torch, clips the betas to
[0, 0.9999], and registers twelve float32 buffers, which end up in every checkpoint. Samplers use
the stored values (`NoiseSchedule.from_buffers`); this module rebuilds them, to check a file and
to write new ones, in the same float64 operations.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .schedule import BUFFER_NAMES


def cosine_betas_clipped(num_steps: int = 1000, s: float = 0.008, max_beta: float = 0.9999) -> torch.Tensor:
    """b_t = clip(1 - abar_{t+1} / abar_t, 0, max_beta), abar_u = cos((u / T + s) / (1 + s) * pi / 2)^2 / abar_0.

    Returns:
        `(num_steps,)` float64.
    """
    x = torch.linspace(0, num_steps, num_steps + 1, dtype=torch.float64)
    alphas_cumprod = torch.cos(((x / num_steps) + s) / (1 + s) * math.pi * 0.5) ** 2
    alphas_cumprod = alphas_cumprod / alphas_cumprod[0]
    return torch.clip(1 - alphas_cumprod[1:] / alphas_cumprod[:-1], 0, max_beta)


def lucidrains_buffers(betas: torch.Tensor) -> dict[str, torch.Tensor]:
    """The twelve float32 buffers (`BUFFER_NAMES`) of float64 `betas`, log variance clamped at 1e-20."""
    alphas = 1.0 - betas
    ac = torch.cumprod(alphas, dim=0)
    ac_prev = F.pad(ac[:-1], (1, 0), value=1.0)
    variance = betas * (1.0 - ac_prev) / (1.0 - ac)
    values = {
        "betas": betas, "alphas_cumprod": ac, "alphas_cumprod_prev": ac_prev,
        "sqrt_alphas_cumprod": torch.sqrt(ac), "sqrt_one_minus_alphas_cumprod": torch.sqrt(1.0 - ac),
        "log_one_minus_alphas_cumprod": torch.log(1.0 - ac), "sqrt_recip_alphas_cumprod": torch.sqrt(1.0 / ac),
        "sqrt_recipm1_alphas_cumprod": torch.sqrt(1.0 / ac - 1), "posterior_variance": variance,
        "posterior_log_variance_clipped": torch.log(variance.clamp(min=1e-20)),
        "posterior_mean_coef1": betas * torch.sqrt(ac_prev) / (1.0 - ac),
        "posterior_mean_coef2": (1.0 - ac_prev) * torch.sqrt(alphas) / (1.0 - ac),
    }
    return {name: values[name].to(torch.float32) for name in BUFFER_NAMES}
