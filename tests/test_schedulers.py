"""Schedulers against closed forms computed here in float64 from the cosine alpha-bar formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from talking_faces.errors import TalkingFacesError
from talking_faces.schedulers import (
    AncestralDDPMScheduler, DDIMScheduler, NoiseSchedule, add_noise, draw_noise, make_scheduler,
)


def alpha_bar(t: int, steps: int = 1000) -> float:
    """Closed-form cosine alpha-bar after step t (valid where no beta was clipped at 0.999)."""
    f = lambda u: math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    return f((t + 1) / steps) / f(0.0)


@pytest.fixture(scope="module")
def schedule() -> NoiseSchedule:
    return NoiseSchedule.guided_cosine(1000)


def test_cosine_schedule_values(schedule):
    # Published values of the 1000-step cosine schedule (guided-diffusion).
    assert schedule.alphas_cumprod[99].item() == pytest.approx(0.97209274, abs=1e-7)
    assert schedule.alphas_cumprod[500].item() == pytest.approx(0.49228517, abs=1e-7)
    for t in (0, 10, 250, 700, 990):
        assert schedule.alphas_cumprod[t].item() == pytest.approx(alpha_bar(t), rel=1e-6)
    assert schedule.betas[-1].item() == pytest.approx(0.999)
    # guided-diffusion clips log var_0 to log var_1.
    assert schedule.posterior_log_variance_clipped[0] == schedule.posterior_log_variance_clipped[1]


def test_ddpm_step_matches_closed_form(schedule):
    t = 500
    gen = torch.Generator().manual_seed(3)
    x_t, x0 = torch.randn(2, 5, 7, generator=gen), torch.randn(2, 5, 7, generator=gen)
    out = AncestralDDPMScheduler(schedule).step(x0, t, x_t, generator=torch.Generator().manual_seed(11)).prev_sample
    z = torch.randn(2, 5, 7, generator=torch.Generator().manual_seed(11)).double()
    a, a_prev = alpha_bar(t), alpha_bar(t - 1)
    beta = 1 - a / a_prev
    mean = beta * math.sqrt(a_prev) / (1 - a) * x0.double() + (1 - a_prev) * math.sqrt(1 - beta) / (1 - a) * x_t.double()
    expected = mean + math.sqrt(beta * (1 - a_prev) / (1 - a)) * z
    torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-6)


def test_ddpm_last_step_returns_x0_and_draws_as_configured(schedule):
    x_t, x0 = torch.randn(1, 4, 3), torch.randn(1, 4, 3)
    for draw, draws in ((True, 1), (False, 0)):
        gen = torch.Generator().manual_seed(5)
        out = AncestralDDPMScheduler(schedule, draw_at_last_step=draw).step(x0, 0, x_t, generator=gen).prev_sample
        assert torch.equal(out, x0)  # coef1_0 = 1, coef2_0 = 0 exactly, and the draw is multiplied by 0
        reference = torch.Generator().manual_seed(5)
        for _ in range(draws):
            torch.randn(1, 4, 3, generator=reference)
        assert torch.equal(torch.randn(3, generator=gen), torch.randn(3, generator=reference))


def test_ddim_step_matches_closed_form_and_is_exact_on_true_x0(schedule):
    scheduler = DDIMScheduler(schedule)
    scheduler.set_timesteps(100, start=99)
    assert scheduler.timesteps.tolist() == list(range(99, -1, -1))
    x0, eps = torch.randn(1, 6, 3), torch.randn(1, 6, 3)
    x_t = torch.randn(1, 6, 3)
    out = scheduler.step(x0, 40, x_t).prev_sample
    a, a_p = alpha_bar(40), alpha_bar(39)
    eps_hat = (x_t.double() - math.sqrt(a) * x0.double()) / math.sqrt(1 - a)
    torch.testing.assert_close(out.double(), math.sqrt(a_p) * x0.double() + math.sqrt(1 - a_p) * eps_hat, rtol=1e-5, atol=1e-5)
    # With the true x0, deterministic DDIM moves along q(x_t | x0) with the same eps.
    on_path = scheduler.step(x0, 40, add_noise(schedule, x0, eps, 40)).prev_sample
    torch.testing.assert_close(on_path, add_noise(schedule, x0, eps, 39), rtol=1e-5, atol=1e-5)


def test_upstream_ddim_start_is_q_sample_of_zeros(schedule):
    scheduler = make_scheduler("ddim", schedule, start=99)
    z = torch.randn(1, 3, 2)
    start = scheduler.initial_sample(z)
    torch.testing.assert_close(start, math.sqrt(1 - alpha_bar(99)) * z)
    assert math.sqrt(1 - alpha_bar(99)) == pytest.approx(0.16705, abs=1e-5)


@pytest.mark.parametrize("name,steps", [("ddim", 25), ("ddim", 1000), ("dpmpp", 25), ("dpmpp", 10), ("ddpm", None)])
def test_constant_x0_model_lands_on_its_x0(schedule, name, steps):
    scheduler = make_scheduler(name, schedule, steps=steps)
    target = torch.linspace(-1, 1, 12).reshape(1, 4, 3)
    gen = torch.Generator().manual_seed(0)
    x = scheduler.initial_sample(draw_noise((1, 4, 3), gen))
    for t in scheduler.timesteps:
        x = scheduler.step(target, t, x, generator=gen).prev_sample
    torch.testing.assert_close(x, target, rtol=1e-4, atol=1e-4)
    if steps:
        assert len(scheduler.timesteps) == steps


def test_draw_order_is_upstreams(schedule):
    """randn(shape) first, then one randn per step, from one stream: what torch.manual_seed(S) gives."""
    scheduler = make_scheduler("ddpm", schedule, start=2)
    gen = torch.Generator().manual_seed(7)
    x = scheduler.initial_sample(draw_noise((1, 2, 3), gen))
    model = lambda x, t: 0.5 * x  # noqa: E731
    for t in scheduler.timesteps:
        x = scheduler.step(model(x, t), t, x, generator=gen).prev_sample
    torch.manual_seed(7)
    ref = torch.randn(1, 2, 3)
    ref = add_noise(schedule, torch.zeros_like(ref), ref, 2)
    for t in (2, 1, 0):
        mean = schedule.posterior_mean_coef1[t] * (0.5 * ref) + schedule.posterior_mean_coef2[t] * ref
        ref = mean + float(t != 0) * torch.exp(0.5 * schedule.posterior_log_variance_clipped[t]) * torch.randn_like(ref)
    torch.testing.assert_close(x, ref, rtol=0, atol=1e-7)


def test_per_sample_generators_follow_single_sample_streams():
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    batch = draw_noise((2, 3, 4), gens)
    assert torch.equal(batch[1:], torch.randn(1, 3, 4, generator=torch.Generator().manual_seed(2)))
    assert torch.equal(batch[:1], torch.randn(1, 3, 4, generator=torch.Generator().manual_seed(1)))


def test_buffers_and_clamped_log_variance():
    schedule = NoiseSchedule.from_betas(np.clip(np.linspace(1e-4, 0.02, 50), 0, 0.9999), log_variance="clamp")
    assert schedule.posterior_log_variance_clipped[0].item() == pytest.approx(math.log(1e-20), rel=1e-6)
    buffers = {f"x.{n}": getattr(schedule, n) for n in (
        "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
        "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_mean_coef1", "posterior_mean_coef2",
        "posterior_log_variance_clipped")}
    buffers["x.log_one_minus_alphas_cumprod"] = torch.zeros(50)
    buffers["x.posterior_variance"] = torch.zeros(50)
    loaded = NoiseSchedule.from_buffers(buffers, prefix="x.")
    assert torch.equal(loaded.posterior_mean_coef2, schedule.posterior_mean_coef2)
    with pytest.raises(TalkingFacesError, match="schedule buffers"):
        NoiseSchedule.from_buffers({}, prefix="x.")


def test_bad_sampler_requests_are_one_line_errors(schedule):
    with pytest.raises(TalkingFacesError, match="choose one of"):
        make_scheduler("euler", schedule)
    with pytest.raises(TalkingFacesError, match="every step"):
        make_scheduler("ddpm", schedule, steps=25)
