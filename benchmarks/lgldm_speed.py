"""LG-LDM (MEAD) sampling speed: upstream's way (HuBERT-large inside every step) against ours.

Same full-size random weights (HuBERT-large, FDM d 512, EVQ-VAE), same audio, same seed, one run:
- upstream way: each of the 1000 DDPM steps runs HuBERT-large + audio_extract + the FDM with the
  full `nn.TransformerDecoder` cross-attention, as the released `FDM.forward` does. Too slow to run whole (~45 min for 2 s on one thread), so `--probe`
  steps are timed and the 1000-step total is extrapolated (plus the final VQ decode, timed);
- ours, exact: HuBERT once, the same 1000 steps (same output: the first `--probe` states are
  compared bit for bit with the upstream way's);
- ours, DPM-Solver++ with 25 steps.
Each of ours is repeated `--repeats` times (DPM-Solver++ after one untimed warm-up run, which imports
diffusers); min and median are printed, with ratios of medians. On a shared machine the wall clock
swings with other processes' load, so the ratios are also given on this process's CPU time
(`time.process_time`), which with one thread barely depends on that load.

    .venv/bin/python benchmarks/lgldm_speed.py [--seconds 2] [--threads 1] [--repeats 2] [--probe 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from talking_faces.adapters.audio_encoders import normalize_audio
from talking_faces.adapters.lgldm import NORMALIZE_EPS, LGLDMAdapter
from talking_faces.adapters.lgldm_denoiser import DenoiserConfig, LatentDenoiser
from talking_faces.adapters.lgldm_vqvae import MotionVQConfig, MotionVQVAE
from talking_faces.schedulers import AncestralDDPMScheduler, NoiseSchedule, draw_noise
from talking_faces.schedulers.lucidrains import cosine_betas_clipped, lucidrains_buffers

HUBERT_LARGE = {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096,
                "feat_extract_norm": "layer", "do_stable_layer_norm": True, "conv_bias": True, "mask_time_prob": 0.05}
STYLE = "M003,happy"


def build() -> LGLDMAdapter:
    torch.manual_seed(0)
    denoiser = LatentDenoiser(DenoiserConfig(audio_encoder=HUBERT_LARGE))
    torch.nn.init.normal_(denoiser.latent_decoder.weight, std=0.05)  # upstream zero-initialises it: make it non-trivial
    vqvae = MotionVQVAE(MotionVQConfig())
    torch.nn.init.normal_(vqvae.quantize.embedding.weight)
    schedule = NoiseSchedule.from_buffers(lucidrains_buffers(cosine_betas_clipped(1000)))
    return LGLDMAdapter(denoiser, vqvae, schedule)


def upstream_steps(adapter: LGLDMAdapter, audio: np.ndarray, steps: int, seed: int) -> tuple[torch.Tensor, list[float]]:
    """The first `steps` DDPM steps the upstream way: the whole FDM, HuBERT included, at every step."""
    d = adapter.denoiser
    style, emotion = adapter.conditioning.parse(STYLE)
    normalised = normalize_audio(audio, NORMALIZE_EPS)
    generator = torch.Generator().manual_seed(seed)
    scheduler = AncestralDDPMScheduler(adapter.schedule, draw_at_last_step=False)
    frames = d.audio_tokens(normalised).shape[1]
    x = draw_noise((1, frames * 8, 64), generator)
    times = []
    for t in range(999, 999 - steps, -1):
        start = clocks()
        tokens = d.audio_tokens(normalised)  # what upstream recomputes inside every denoiser call
        x0 = d(x, t, tokens, *d.condition(style, emotion), reference=True)  # upstream's full nn.TransformerDecoder
        x = scheduler.step(x0, t, x, generator).prev_sample
        times.append(elapsed(start))
    return x, times


def our_steps(adapter: LGLDMAdapter, audio: np.ndarray, steps: int, seed: int) -> torch.Tensor:
    """The same first steps with HuBERT run once, for the equality check."""
    d = adapter.denoiser
    style, emotion = adapter.conditioning.parse(STYLE)
    tokens = d.audio_tokens(normalize_audio(audio, NORMALIZE_EPS))
    generator = torch.Generator().manual_seed(seed)
    scheduler = AncestralDDPMScheduler(adapter.schedule, draw_at_last_step=False)
    x = draw_noise((1, tokens.shape[1] * 8, 64), generator)
    for t in range(999, 999 - steps, -1):
        x = scheduler.step(d(x, t, tokens, *d.condition(style, emotion)), t, x, generator).prev_sample
    return x


def clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def elapsed(start: tuple[float, float]) -> tuple[float, float]:
    """(wall, CPU) seconds since `start`."""
    wall, cpu = clocks()
    return wall - start[0], cpu - start[1]


def timed_runs(fn, repeats: int) -> list[tuple[float, float]]:
    times = []
    for _ in range(repeats):
        start = clocks()
        fn()
        times.append(elapsed(start))
    return times


def summary(times: list[tuple[float, float]], clock: int) -> tuple[float, float]:
    values = [t[clock] for t in times]
    return min(values), statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--probe", type=int, default=3, help="upstream-way steps to time")
    parser.add_argument("--skip-exact", action="store_true", help="time only the upstream way and DPM-Solver++")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    adapter = build()
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(int(16000 * args.seconds))).astype(np.float32)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.seconds} s of audio, MEAD LG-LDM at full size")
    with torch.inference_mode():
        probe, step_times = upstream_steps(adapter, audio, args.probe, seed=7)
        same = torch.equal(probe, our_steps(adapter, audio, args.probe, seed=7))
        decode = timed_runs(lambda: adapter.vqvae.decode(adapter.vqvae.quant(probe, torch.eye(7)[4:5]).codes), 2)
        exact = [] if args.skip_exact else timed_runs(lambda: adapter.sample(audio, STYLE, torch.Generator().manual_seed(7)), args.repeats)
        adapter.sampler, adapter.steps = "dpmpp", 25
        adapter.sample(audio, STYLE, torch.Generator().manual_seed(7))  # warm-up: imports diffusers
        fast = timed_runs(lambda: adapter.sample(audio, STYLE, torch.Generator().manual_seed(7)), max(args.repeats, 3))
    print(f"first {args.probe} upstream-way steps bit-identical to ours (HuBERT once): {same}")
    for clock, label in ((0, "wall"), (1, "CPU")):
        step_min, step_median = summary(step_times, clock)
        upstream_total = step_median * 1000 + summary(decode, clock)[0]
        print(f"[{label}] upstream way, per step (HuBERT-large + FDM): min {step_min:.3f} s, median {step_median:.3f} s over "
              f"{len(step_times)} steps -> 1000 steps + decode, extrapolated: {upstream_total:.1f} s")
        for name, times in (("ours exact (DDPM 1000, HuBERT once)", exact), ("ours DPM-Solver++ 25 steps", fast)):
            if times:
                low, median = summary(times, clock)
                print(f"[{label}] {name}: min {low:.2f} s, median {median:.2f} s -> "
                      f"{upstream_total / median:.1f}x faster than the upstream way (medians)")


if __name__ == "__main__":
    main()
