"""Ancestral DDPM for x0-predicting models, with guided-diffusion's arithmetic.

One step from x_t with the model's x0 estimate x0_hat:

    x_{t-1} = coef1_t * x0_hat + coef2_t * x_t + [t > 0] * exp(0.5 * logvar_t) * z,   z ~ N(0, I)

Each constant is the float32 value of the float64 schedule (see `schedule.py`), and the noise
scale is exp(0.5 * logvar) computed in float32, as upstream does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .noise import Generators, draw_noise
from .schedule import NoiseSchedule


@dataclass
class SchedulerOutput:
    """`prev_sample` is x at the next (lower) timestep; `pred_original_sample` the x0 estimate used."""

    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor


class AncestralDDPMScheduler:
    """Ancestral sampling over consecutive timesteps `start, start-1, ..., 0`.

    Args:
        schedule: the training schedule.
        draw_at_last_step: draw z at t = 0 too and multiply it by zero (guided-diffusion, FaceDiffuser),
            or draw nothing there (lucidrains' code, LG-LDM). Only the generator's state differs.
    """

    def __init__(self, schedule: NoiseSchedule, draw_at_last_step: bool = True) -> None:
        self.schedule = schedule
        self.draw_at_last_step = draw_at_last_step
        self.num_train_timesteps = schedule.num_train_timesteps
        self.timesteps = torch.arange(self.num_train_timesteps - 1, -1, -1)

    def set_timesteps(self, num_inference_steps: int | None = None, device: torch.device | str | None = None, start: int | None = None) -> None:
        """Consecutive steps from `start` (default T-1) down to 0; ancestral DDPM skips no step.

        `num_inference_steps`, when given, must equal the number of steps from `start`.
        """
        start = self.num_train_timesteps - 1 if start is None else int(start)
        if not 0 <= start < self.num_train_timesteps:
            raise ValueError(f"start timestep {start} outside [0, {self.num_train_timesteps})")
        if num_inference_steps is not None and num_inference_steps != start + 1:
            raise ValueError(f"ancestral DDPM runs every step: {start + 1} steps from t={start}, not {num_inference_steps}")
        self.timesteps = torch.arange(start, -1, -1, device=device)

    def initial_sample(self, noise: torch.Tensor) -> torch.Tensor:
        """x at the first timestep: the noise itself from T-1, else q_sample(zeros, start, noise) as upstream's skip."""
        start = int(self.timesteps[0])
        if start == self.num_train_timesteps - 1:
            return noise
        return self.add_noise(torch.zeros_like(noise), noise, start)

    def step(self, model_output: torch.Tensor, timestep: int | torch.Tensor, sample: torch.Tensor, generator: Generators = None) -> SchedulerOutput:
        """x_{t-1} from x_t (`sample`) and the model's x0 estimate (`model_output`), both `(B, ...)`."""
        t = int(timestep)
        s, device = self.schedule, sample.device
        mean = s.at("posterior_mean_coef1", t, device) * model_output + s.at("posterior_mean_coef2", t, device) * sample
        if t == 0 and not self.draw_at_last_step:
            return SchedulerOutput(mean, model_output)
        noise = draw_noise(sample.shape, generator, device)
        # exp of the float32 log variance, as upstream (the same bits as its broadcast tensor, checked for all t).
        scale = torch.exp(0.5 * s.at("posterior_log_variance_clipped", t, device))
        nonzero = torch.tensor(float(t != 0), device=device)
        return SchedulerOutput(mean + nonzero * scale * noise, model_output)

    def add_noise(self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: int | torch.Tensor) -> torch.Tensor:
        """q_sample: sqrt(abar_t) x0 + sqrt(1 - abar_t) noise, with `timesteps` an int or `(B,)` tensor."""
        return add_noise(self.schedule, original_samples, noise, timesteps)


def add_noise(schedule: NoiseSchedule, x0: torch.Tensor, noise: torch.Tensor, timesteps: int | torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise; `timesteps` an int or one per batch row `(B,)`."""
    t = torch.as_tensor(timesteps, device=x0.device).long()
    shape = (-1,) + (1,) * (x0.dim() - 1) if t.dim() else ()
    a = schedule.sqrt_alphas_cumprod.to(x0.device)[t].reshape(shape)
    b = schedule.sqrt_one_minus_alphas_cumprod.to(x0.device)[t].reshape(shape)
    return a * x0 + b * noise
