"""FaceDiffuser sampling speed: upstream's way against our exact DDPM and DPM-Solver++, side by side.

One run, same full-size random weights (VOCASET: HuBERT-base, latent 256, 5023 vertices), same
audio, same seed:
- upstream's way: HuBERT and the whole network at every one of the DDPM steps, batch of one;
- ours, exact: ancestral DDPM over the same steps, HuBERT and the audio projection once per audio;
- ours, fast: DPM-Solver++ (2M) with 25 steps.
Each round runs all of them once (rounds repeated), and it prints min and median over rounds, the ratios, and max |ours - upstream's way| (metres).
`--upstream-steps N` times upstream's way on the last N steps of the chain (started as upstream's
skip_timesteps does) and compares ours on the same N steps; the per-sample figure is then scaled
to 1000 steps and marked as such. Default: the full 1000 steps.

Quality: a tiny FaceDiffuser is trained here on synthetic speech-driven data, and the LVE between
its 25-step DPM-Solver++ and 1000-step DDPM samples (same seed) is printed, with the LVE between
two DDPM samples of different seeds and each sampler's LVE to the ground truth for scale.

    .venv/bin/python benchmarks/facediffuser_speed.py [--upstream-steps 1000] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch

from talking_faces.adapters.audio_encoders import normalize_audio
from talking_faces.adapters.facediffuser import VARIANTS, FaceDiffuserAdapter
from talking_faces.adapters.facediffuser_model import FaceDiff, FaceDiffConfig
from talking_faces.identity import Identity
from talking_faces.schedulers import NoiseSchedule, add_noise, make_scheduler

TINY_HUBERT = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 1, "intermediate_size": 64,
               "conv_dim": [16] * 7, "num_conv_pos_embeddings": 8, "num_conv_pos_embedding_groups": 4}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        names = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return (f"{platform.system()} {platform.release()}, Python {platform.python_version()}, torch {torch.__version__}, "
            f"CPU {cpu} ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads), load {os.getloadavg()[0]:.1f}")


def upstream_way(model: FaceDiff, audio, cond, template, frames: int, steps: int, seed: int) -> torch.Tensor:
    """guided-diffusion's p_sample_loop as FaceDiffuser calls it: the full network (HuBERT too) at every step."""
    scheduler = make_scheduler("ddpm", NoiseSchedule.guided_cosine(), start=steps - 1)
    torch.manual_seed(seed)
    x = scheduler.initial_sample(torch.randn(1, frames, template.numel()))
    for t in scheduler.timesteps:
        x = scheduler.step(model(x, int(t), audio, cond, template), t, x).prev_sample
    return x


def ours(model: FaceDiff, audio: np.ndarray, template: torch.Tensor, sampler: str, steps: int | None, start: int | None, seed: int) -> torch.Tensor:
    """The adapter's own path (HuBERT and the audio tokens once, then the denoiser per step): `(1, T, V*3)` absolute vertices."""
    adapter = FaceDiffuserAdapter(model, VARIANTS["vocaset"], sampler=sampler, steps=steps)
    adapter.start = start
    identity = Identity(template.numpy().reshape(-1, 3), None, "random")
    offsets = adapter.sample(audio, identity, style="5", generator=torch.Generator().manual_seed(seed))
    return offsets.reshape(1, offsets.shape[1], -1) + template


def rounds(runs: dict, repeats: int) -> tuple[dict, dict]:
    """Each run once per round, rounds repeated, so machine load falls on all of them alike: (last results, times)."""
    results, times = {}, {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - start)
    return results, times


def speed(args) -> None:
    torch.manual_seed(0)
    model = FaceDiff(FaceDiffConfig())
    with torch.no_grad():
        model.final_layer.weight.normal_(0, 0.01)  # upstream initialises it to 0: make outputs non-trivial
        model.final_layer.bias.normal_(0, 0.001)
        model.obj_vector.weight.normal_(0, 1.0)
    model.eval()
    rng = np.random.default_rng(0)
    raw = rng.standard_normal(int(16000 * args.seconds)).astype(np.float32)
    audio = normalize_audio(raw)
    template = torch.from_numpy(rng.normal(0, 0.1, 15069).astype(np.float32))
    cond = torch.eye(8)[5]
    frames = int(audio.shape[1] / 16000 * 30) - 1
    n = args.upstream_steps
    print(machine())
    print(f"{args.seconds:g} s of audio -> {frames} frames, VOCASET-size FaceDiffuser; upstream's way over {n} DDPM steps")
    runs = {
        "upstream": lambda: upstream_way(model, audio, cond, template, frames, n, args.seed),
        "same_chain": lambda: ours(model, raw, template, "ddpm", None, n - 1, args.seed),
        "exact": lambda: ours(model, raw, template, "ddpm", None, None, args.seed),
        "fast": lambda: ours(model, raw, template, "dpmpp", 25, None, args.seed),
    }
    if n == 1000:
        del runs["same_chain"]
    with torch.inference_mode():
        results, times = rounds(runs, args.repeats)
    reference, t_up, t_exact, t_fast = results["upstream"], times["upstream"], times["exact"], times["fast"]
    same_chain = results.get("same_chain", results["exact"])
    scale = 1000 / n
    up_min, up_med = min(t_up) * scale, statistics.median(t_up) * scale
    note = "" if n == 1000 else f" (measured on {n} steps, x{scale:g})"
    rows = [("upstream's way, DDPM 1000", up_min, up_med), ("ours, exact DDPM 1000", min(t_exact), statistics.median(t_exact)),
            ("ours, DPM-Solver++ 25", min(t_fast), statistics.median(t_fast))]
    for name, lo, med in rows:
        print(f"{name:28s} min {lo:8.2f} s   median {med:8.2f} s" + (note if name.startswith("upstream") else ""))
    print(f"speed-up, exact DDPM:         {up_min / min(t_exact):7.1f}x (min)  {up_med / statistics.median(t_exact):7.1f}x (median)")
    print(f"speed-up, DPM-Solver++ 25:    {up_min / min(t_fast):7.1f}x (min)  {up_med / statistics.median(t_fast):7.1f}x (median)")
    print(f"max |ours - upstream's way| over the same {n}-step chain: {(same_chain - reference).abs().max().item():.2e} m")


def synthetic_data(rng: np.random.Generator, count: int, vertices: int, seconds: float = 1.0):
    """Utterances whose 'lips' (all vertices) open along fixed directions with the audio envelope, 30 fps."""
    directions = rng.normal(0, 1, (vertices, 3)).astype(np.float32)
    template = rng.normal(0, 0.1, (vertices, 3)).astype(np.float32)
    data = []
    for i in range(count):
        n = int(16000 * seconds)
        t = np.arange(n) / 16000
        envelope = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(1, 4) * t + rng.uniform(0, 6))
        audio = (np.sin(2 * np.pi * rng.uniform(100, 200) * t) * envelope * 0.3).astype(np.float32)
        frames = int(n / 16000 * 30) - 1
        opening = envelope[(np.arange(frames) * 16000 / 30).astype(int)]
        motion = template[None] + 0.01 * opening[:, None, None] * directions[None]
        data.append((audio, torch.from_numpy(motion.reshape(frames, -1)[None].astype(np.float32))))
    return torch.from_numpy(template.reshape(-1)), data


def quality(args) -> None:
    rng = np.random.default_rng(1)
    vertices = 100
    template, data = synthetic_data(rng, 8, vertices)
    torch.manual_seed(0)
    model = FaceDiff(FaceDiffConfig(vertice_dim=vertices * 3, latent_dim=64, gru_dim=64, audio_encoder=TINY_HUBERT))
    schedule = NoiseSchedule.guided_cosine()
    cond = torch.eye(8)[5]  # the style the adapter samples with below ("5")
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    model.train()
    start = time.perf_counter()
    for step in range(args.train_steps):
        audio, x0 = data[step % len(data)]
        t = int(torch.randint(1000, ()))
        predicted = model(add_noise(schedule, x0, torch.randn_like(x0), t), t, normalize_audio(audio), cond, template)
        loss = torch.nn.functional.huber_loss(predicted, x0[:, : predicted.shape[1]])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    model.eval()
    print(f"tiny model: {args.train_steps} training steps on synthetic data in {time.perf_counter() - start:.0f} s, last loss {loss.item():.2e}")

    def lve(a: torch.Tensor, b: torch.Tensor) -> float:
        d = (a - b).reshape(a.shape[1], vertices, 3)
        return float((d**2).sum(-1).max(-1).values.mean())

    results = {"dpmpp25-ddpm1000": [], "ddpm1000 seeds 0 vs 1": [], "ddpm1000-gt": [], "dpmpp25-gt": []}
    with torch.inference_mode():
        for audio, x0 in data[:4]:
            exact = ours(model, audio, template, "ddpm", None, None, 0)
            other = ours(model, audio, template, "ddpm", None, None, 1)
            fast = ours(model, audio, template, "dpmpp", 25, None, 0)
            results["dpmpp25-ddpm1000"].append(lve(fast, exact))
            results["ddpm1000 seeds 0 vs 1"].append(lve(exact, other))
            results["ddpm1000-gt"].append(lve(exact, x0))
            results["dpmpp25-gt"].append(lve(fast, x0))
    motion = float(((torch.stack([x0[0] for _, x0 in data]) - template) ** 2).reshape(len(data), -1, vertices, 3).sum(-1).max(-1).values.mean())
    print(f"LVE (mean over frames of the max squared vertex distance, m^2), 4 clips; ground-truth motion scale {motion:.2e}:")
    for name, values in results.items():
        print(f"  {name:24s} {np.mean(values):.3e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--upstream-steps", type=int, default=1000, help="DDPM steps of upstream's way (1000: the full run)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-steps", type=int, default=600)
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    speed(args)
    if not args.skip_quality:
        quality(args)


if __name__ == "__main__":
    main()
