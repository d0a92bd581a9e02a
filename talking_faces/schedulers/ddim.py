"""DDIM for x0-predicting models, with guided-diffusion's arithmetic, over any decreasing timesteps.

From x_t, the model's x0 estimate x0_hat and the next timestep p (abar_{-1} = 1):

    eps     = (sqrt(1 / abar_t) x_t - x0_hat) / sqrt(1 / abar_t - 1)
    sigma   = eta * sqrt((1 - abar_p) / (1 - abar_t)) * sqrt(1 - abar_t / abar_p)
    x_p     = sqrt(abar_p) x0_hat + sqrt(1 - abar_p - sigma^2) eps + [t > 0] sigma z

Consecutive timesteps (p = t - 1) started from `q_sample(0, t_start, z)` are upstream's
`ddim_sample_loop(skip_timesteps=T - 1 - t_start)`; strided timesteps are the usual fast DDIM.
"""

from __future__ import annotations

import numpy as np
import torch

from .ddpm import SchedulerOutput, add_noise
from .noise import Generators, draw_noise
from .schedule import NoiseSchedule


class DDIMScheduler:
    """Deterministic (eta 0) or stochastic DDIM over `set_timesteps`' grid.

    Args:
        schedule: the training schedule.
        eta: 0 for deterministic DDIM.
        draw_every_step: draw z at every step even when sigma = 0 (guided-diffusion does; it keeps
            the generator's stream as upstream's).
    """

    def __init__(self, schedule: NoiseSchedule, eta: float = 0.0, draw_every_step: bool = True) -> None:
        self.schedule = schedule
        self.eta = eta
        self.draw_every_step = draw_every_step
        self.num_train_timesteps = schedule.num_train_timesteps
        self.timesteps = torch.arange(self.num_train_timesteps - 1, -1, -1)
        self._next: dict[int, int] = {}
        self._index_grid()

    def set_timesteps(
        self, num_inference_steps: int | None = None, device: torch.device | str | None = None,
        start: int | None = None, timesteps: list[int] | None = None,
    ) -> None:
        """`num_inference_steps` timesteps from `start` (default T-1) to 0, evenly spaced and rounded.

        With `num_inference_steps == start + 1` they are consecutive: upstream's DDIM from t_start.
        `timesteps` gives the grid explicitly instead (strictly decreasing, the last one steps to abar = 1).
        """
        if timesteps is not None:
            grid = np.asarray(timesteps, dtype=np.int64)
            if grid.ndim != 1 or not len(grid) or (np.diff(grid) >= 0).any() or grid[-1] < 0 or grid[0] >= self.num_train_timesteps:
                raise ValueError(f"DDIM timesteps must decrease within [0, {self.num_train_timesteps}): {list(grid)[:4]}...")
        else:
            start = self.num_train_timesteps - 1 if start is None else int(start)
            if num_inference_steps is None or not 0 <= start < self.num_train_timesteps or not 1 <= num_inference_steps <= start + 1:
                raise ValueError(f"cannot take {num_inference_steps} DDIM steps from t={start} of {self.num_train_timesteps}")
            grid = np.unique(np.round(np.linspace(0, start, num_inference_steps)).astype(np.int64))[::-1].copy()
        self.timesteps = torch.from_numpy(grid).to(device)
        self._index_grid()

    def _index_grid(self) -> None:
        steps = [int(t) for t in self.timesteps]
        self._next = dict(zip(steps, steps[1:] + [-1]))

    def initial_sample(self, noise: torch.Tensor) -> torch.Tensor:
        """x at the first timestep: the noise from T-1, else q_sample(zeros, start, noise) as upstream's skip."""
        start = int(self.timesteps[0])
        if start == self.num_train_timesteps - 1:
            return noise
        return add_noise(self.schedule, torch.zeros_like(noise), noise, start)

    def step(self, model_output: torch.Tensor, timestep: int | torch.Tensor, sample: torch.Tensor, generator: Generators = None) -> SchedulerOutput:
        """x at the next grid timestep from x_t (`sample`) and the model's x0 estimate (`model_output`)."""
        t = int(timestep)
        s, device = self.schedule, sample.device
        prev = self._next[t]
        eps = (s.at("sqrt_recip_alphas_cumprod", t, device) * sample - model_output) / s.at("sqrt_recipm1_alphas_cumprod", t, device)
        alpha_bar = s.at("alphas_cumprod", t, device)
        # guided-diffusion reads alphas_cumprod_prev[t] for the consecutive step: the same float32 value.
        alpha_bar_prev = s.at("alphas_cumprod", prev, device) if prev >= 0 else torch.ones((), device=device)
        sigma = self.eta * torch.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar)) * torch.sqrt(1 - alpha_bar / alpha_bar_prev)
        mean = model_output * torch.sqrt(alpha_bar_prev) + torch.sqrt(1 - alpha_bar_prev - sigma**2) * eps
        if not (self.draw_every_step or (self.eta > 0 and t > 0)):
            return SchedulerOutput(mean, model_output)
        noise = draw_noise(sample.shape, generator, device)
        nonzero = torch.tensor(float(t != 0), device=device)
        return SchedulerOutput(mean + nonzero * sigma * noise, model_output)

    def add_noise(self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: int | torch.Tensor) -> torch.Tensor:
        """q_sample: sqrt(abar_t) x0 + sqrt(1 - abar_t) noise."""
        return add_noise(self.schedule, original_samples, noise, timesteps)
