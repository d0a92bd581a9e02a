"""AUBlendNet speed: predicting one identity's 32 bases, and blending one pose from them.

Full-size models (official dims: 131.7 M stage-1 + 149.5 M used stage-2 parameters) with random
weights; the numbers do not depend on the weights. Uses CUDA when present.
Paper (RTX 6000 Ada): 0.3 s per identity, 0.002 s per blended pose.

    .venv/bin/python benchmarks/aublendnet_speed.py [--repeats 5] [--device auto]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from talking_faces.aublendnet.bases import predict_rows
from talking_faces.aublendnet.codebook import AUCodebook, CodebookConfig
from talking_faces.aublendnet.predictor import PredictorConfig, StyleBlendNet
from talking_faces.basis import blend
from talking_faces.devices import resolve_device

PAPER_PREDICT_S = 0.3
PAPER_BLEND_S = 0.002


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_time(fn, device: torch.device, repeats: int) -> float:
    """Median wall time of `fn()` over `repeats` runs after one warm-up run."""
    fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def machine(device: torch.device) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = f", GPU {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads){gpu}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    print(f"machine: {machine(device)}; device {device}")

    torch.manual_seed(0)
    model = StyleBlendNet(PredictorConfig(), AUCodebook(CodebookConfig())).to(device).eval()
    torch.nn.init.normal_(model.feat_map.weight, std=0.02)  # non-zero, as after training
    used = sum(p.numel() for p in model.parameters())
    template = 0.1 * torch.randn(1, 15069, device=device)
    predict_s = median_time(lambda: predict_rows(model, template), device, args.repeats)

    offsets = 1e-3 * torch.randn(32, 5023, 3, device=device)
    weights = torch.rand(1, 32, device=device)
    blend_s = median_time(lambda: blend(weights, offsets), device, max(args.repeats, 100))

    print(f"parameters: {used / 1e6:.1f} M (stage 1 + used stage 2)")
    print(f"predict one identity's bases: {predict_s:.3f} s  (paper {PAPER_PREDICT_S} s on RTX 6000 Ada; ratio {predict_s / PAPER_PREDICT_S:.2f})")
    print(f"blend one pose from bases:    {blend_s * 1e3:.3f} ms (paper {PAPER_BLEND_S * 1e3:.0f} ms; ratio {blend_s / PAPER_BLEND_S:.3f})")
    print(f"prediction / blend in this run: {predict_s / blend_s:.0f}x")


if __name__ == "__main__":
    main()
