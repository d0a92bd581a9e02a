"""Diffusion samplers shared by the diffusion adapters (FaceDiffuser, LG-LDM), shaped like diffusers'.

Every scheduler works on x0-predicting models and offers `set_timesteps(n, device)`,
`initial_sample(noise)`, `step(model_output, t, sample, generator) -> .prev_sample` and
`add_noise(x0, noise, t)` for training.

- `AncestralDDPMScheduler`: upstream ancestral sampling, guided-diffusion arithmetic (exact).
- `DDIMScheduler`: DDIM over consecutive steps (exact upstream) or any strided grid.
- `DPMSolverPlusPlusScheduler`: diffusers' DPM-Solver++ (2M), any number of steps.
"""

from __future__ import annotations

from typing import Any

from talking_faces.errors import TalkingFacesError

from .ddim import DDIMScheduler
from .ddpm import AncestralDDPMScheduler, SchedulerOutput, add_noise
from .noise import draw_noise
from .schedule import BUFFER_NAMES, NoiseSchedule, cosine_betas, respaced_betas

SAMPLERS = ("ddpm", "ddim", "dpmpp")


def make_scheduler(name: str, schedule: NoiseSchedule, steps: int | None = None, start: int | None = None, device: Any = None) -> Any:
    """A scheduler with its timesteps set.

    Args:
        name: `ddpm` (ancestral, every step from `start`), `ddim` (`steps` evenly spaced from
            `start`; consecutive when steps == start + 1) or `dpmpp` (`steps` DPM-Solver++ steps).
        steps: number of denoiser calls; default every step from `start` (ddpm, ddim) or 25 (dpmpp).
        start: first timestep, default T - 1 (ddpm, ddim only).
    """
    top = schedule.num_train_timesteps - 1
    first = top if start is None else start
    if name not in SAMPLERS:
        raise TalkingFacesError(f"Unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}.")
    if steps is not None and not 1 <= steps <= first + 1:
        raise TalkingFacesError(f"--steps {steps} is out of range for {name} from t={first}; give 1..{first + 1}.")
    if name == "ddpm":
        if steps is not None and steps != first + 1:
            raise TalkingFacesError(f"Ancestral DDPM runs every step ({first + 1} from t={first}); for fewer steps use --sampler ddim or dpmpp.")
        scheduler = AncestralDDPMScheduler(schedule)
        scheduler.set_timesteps(device=device, start=first)
        return scheduler
    if name == "ddim":
        scheduler = DDIMScheduler(schedule)
        scheduler.set_timesteps(steps or first + 1, device=device, start=first)
        return scheduler
    from .dpm_solver import DPMSolverPlusPlusScheduler  # diffusers is imported only when asked for

    if start is not None and start != top:
        raise TalkingFacesError("DPM-Solver++ starts from pure noise; drop the start timestep or use --sampler ddim.")
    scheduler = DPMSolverPlusPlusScheduler.from_schedule(schedule)
    scheduler.set_timesteps(steps or 25, device=device)
    return scheduler


__all__ = [
    "BUFFER_NAMES", "SAMPLERS", "AncestralDDPMScheduler", "DDIMScheduler", "NoiseSchedule", "SchedulerOutput",
    "add_noise", "cosine_betas", "draw_noise", "make_scheduler", "respaced_betas",
]
