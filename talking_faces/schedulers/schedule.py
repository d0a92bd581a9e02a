"""Noise schedules: the per-timestep constants every sampler of a discrete Gaussian diffusion reads.

Upstream research code (guided-diffusion, lucidrains' denoising-diffusion) derives the constants
in float64 and uses them as float32 at each step; so does `NoiseSchedule`. For T training steps
with betas b_t and alpha-bar a_t = prod_{s<=t} (1 - b_s):

    q(x_t | x_0):        x_t = sqrt(a_t) x_0 + sqrt(1 - a_t) eps
    posterior mean:      mu_t = coef1_t x_0 + coef2_t x_t,
                         coef1_t = b_t sqrt(a_{t-1}) / (1 - a_t),  coef2_t = (1 - a_{t-1}) sqrt(1 - b_t) / (1 - a_t)
    posterior variance:  var_t = b_t (1 - a_{t-1}) / (1 - a_t)           (a_{-1} = 1)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np
import torch

from talking_faces.errors import TalkingFacesError

# The twelve float32 buffers lucidrains-style checkpoints (LG-LDM) store, by their stored names.
BUFFER_NAMES = (
    "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_variance",
    "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2",
)


def cosine_betas(num_steps: int, max_beta: float = 0.999, s: float = 0.008) -> np.ndarray:
    """Nichol & Dhariwal's cosine schedule as guided-diffusion's `betas_for_alpha_bar` computes it.

    b_i = min(1 - abar((i + 1) / T) / abar(i / T), max_beta), abar(u) = cos((u + s) / (1 + s) * pi / 2)^2.

    Returns:
        `(num_steps,)` float64 betas.
    """
    def alpha_bar(u: float) -> float:
        return math.cos((u + s) / (1 + s) * math.pi / 2) ** 2

    return np.array([min(1 - alpha_bar((i + 1) / num_steps) / alpha_bar(i / num_steps), max_beta) for i in range(num_steps)])


def respaced_betas(betas: np.ndarray) -> np.ndarray:
    """guided-diffusion's `SpacedDiffusion` re-derives betas from alpha-bar even when it keeps every step.

    b'_t = 1 - a_t / a_{t-1}: equal to b_t up to float64 rounding, kept so the constants match to the bit.
    """
    alphas_cumprod = np.cumprod(1.0 - betas)
    return 1.0 - alphas_cumprod / np.append(1.0, alphas_cumprod[:-1])


@dataclass(frozen=True)
class NoiseSchedule:
    """Float32 constants per training timestep, each `(T,)`, computed in float64 (or read as stored).

    `posterior_log_variance_clipped[0]` is `log var_1` for guided-diffusion (var_0 = 0) and
    `log max(var_0, 1e-20)` for lucidrains' code; either way, whatever the schedule was built with.
    """

    betas: torch.Tensor
    alphas_cumprod: torch.Tensor
    alphas_cumprod_prev: torch.Tensor
    sqrt_alphas_cumprod: torch.Tensor
    sqrt_one_minus_alphas_cumprod: torch.Tensor
    sqrt_recip_alphas_cumprod: torch.Tensor
    sqrt_recipm1_alphas_cumprod: torch.Tensor
    posterior_mean_coef1: torch.Tensor
    posterior_mean_coef2: torch.Tensor
    posterior_log_variance_clipped: torch.Tensor
    # float64 betas for libraries that derive their own constants (diffusers' trained_betas).
    betas64: np.ndarray

    @property
    def num_train_timesteps(self) -> int:
        return int(self.betas.shape[0])

    @classmethod
    def from_betas(cls, betas: np.ndarray, log_variance: str = "clip_first") -> "NoiseSchedule":
        """Constants from float64 betas, as guided-diffusion's `GaussianDiffusion.__init__`.

        Args:
            betas: `(T,)` betas.
            log_variance: `"clip_first"` (guided-diffusion: log var_0 := log var_1) or
                `"clamp"` (lucidrains: log max(var_t, 1e-20)).
        """
        betas = np.asarray(betas, dtype=np.float64)
        if betas.ndim != 1 or not ((betas > 0) & (betas <= 1)).all():
            raise TalkingFacesError("Diffusion betas must be a 1-D array with values in (0, 1]; check the schedule.")
        alphas = 1.0 - betas
        ac = np.cumprod(alphas)
        ac_prev = np.append(1.0, ac[:-1])
        variance = betas * (1.0 - ac_prev) / (1.0 - ac)
        if log_variance == "clip_first":
            log_var = np.log(np.append(variance[1], variance[1:]))
        elif log_variance == "clamp":
            log_var = np.log(np.maximum(variance, 1e-20))
        else:
            raise TalkingFacesError(f"Unknown log_variance {log_variance!r}; use 'clip_first' or 'clamp'.")
        f32 = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float64)).float()  # noqa: E731
        return cls(
            betas=f32(betas), alphas_cumprod=f32(ac), alphas_cumprod_prev=f32(ac_prev),
            sqrt_alphas_cumprod=f32(np.sqrt(ac)), sqrt_one_minus_alphas_cumprod=f32(np.sqrt(1.0 - ac)),
            sqrt_recip_alphas_cumprod=f32(np.sqrt(1.0 / ac)), sqrt_recipm1_alphas_cumprod=f32(np.sqrt(1.0 / ac - 1)),
            posterior_mean_coef1=f32(betas * np.sqrt(ac_prev) / (1.0 - ac)),
            posterior_mean_coef2=f32((1.0 - ac_prev) * np.sqrt(alphas) / (1.0 - ac)),
            posterior_log_variance_clipped=f32(log_var), betas64=betas,
        )

    @classmethod
    def guided_cosine(cls, num_steps: int = 1000) -> "NoiseSchedule":
        """FaceDiffuser's schedule: cosine (max beta 0.999), re-spaced over all steps, guided-diffusion constants."""
        return cls.from_betas(respaced_betas(cosine_betas(num_steps)), log_variance="clip_first")

    @classmethod
    def from_buffers(cls, buffers: Mapping[str, torch.Tensor], prefix: str = "") -> "NoiseSchedule":
        """Use the schedule buffers a checkpoint stores (LG-LDM's GaussianDiffusion), as stored.

        Args:
            buffers: a state_dict holding `prefix + name` for the names in `BUFFER_NAMES`.
        """
        missing = [n for n in BUFFER_NAMES if prefix + n not in buffers]
        if missing:
            raise TalkingFacesError(f"The checkpoint has no diffusion schedule buffers ({', '.join(missing[:3])}...); pass a stage-2 diffusion checkpoint.")
        own = {f.name for f in fields(cls)} - {"betas64"}
        values = {n: buffers[prefix + n].detach().cpu().float().clone() for n in own}
        return cls(**values, betas64=buffers[prefix + "betas"].detach().cpu().double().numpy())

    def at(self, name: str, t: int, device: torch.device | str | None = None) -> torch.Tensor:
        """The float32 constant `name` at timestep t, as a 0-d tensor."""
        return getattr(self, name)[t].to(device)
