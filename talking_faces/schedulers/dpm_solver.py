"""DPM-Solver++ (2M) for x0-predicting models: diffusers' multistep solver on our training schedule.

diffusers derives its own float32 constants from the betas, so this sampler is fast, not
bit-compatible with any upstream loop (none of the upstream codes has it).
"""

from __future__ import annotations

import torch
from diffusers import DPMSolverMultistepScheduler

from .schedule import NoiseSchedule


class DPMSolverPlusPlusScheduler(DPMSolverMultistepScheduler):
    """Second-order multistep DPM-Solver++ with a final first-order step to sigma = 0."""

    @classmethod
    def from_schedule(cls, schedule: NoiseSchedule) -> "DPMSolverPlusPlusScheduler":
        return cls(
            num_train_timesteps=schedule.num_train_timesteps, trained_betas=schedule.betas64.astype("float32"),
            prediction_type="sample", algorithm_type="dpmsolver++", solver_order=2, lower_order_final=True,
            final_sigmas_type="zero", timestep_spacing="linspace",
        )

    def initial_sample(self, noise: torch.Tensor) -> torch.Tensor:
        """x at the first timestep: unit Gaussian noise (init_noise_sigma is 1 for this VP solver)."""
        return noise * self.init_noise_sigma
