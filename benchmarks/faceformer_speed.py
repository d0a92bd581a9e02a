"""FaceFormer inference speed: key/value-cached decoding against upstream's full recompute.

Same full-size random weights (wav2vec2-base, feature_dim 64, 5023 vertices), same audio, same run.
Prints the machine, both timings, the ratios (decoder alone and end to end) and the max abs
difference of the outputs.

    .venv/bin/python benchmarks/faceformer_speed.py [--seconds 20] [--device auto]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from talking_faces.adapters.audio_encoders import normalize_audio
from talking_faces.adapters.faceformer_model import FaceFormer, FaceFormerConfig
from talking_faces.devices import resolve_device


def machine(device: torch.device) -> str:
    cpu = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        names = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")]
        cpu = names[0] if names else cpu
    gpu = f", GPU {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    return (f"{platform.system()} {platform.release()}, Python {platform.python_version()}, torch {torch.__version__}, "
            f"CPU {cpu} ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads){gpu}")


def timed(fn, device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    result = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    model = FaceFormer(FaceFormerConfig(vertice_dim=5023 * 3, feature_dim=64, num_styles=8))
    torch.nn.init.normal_(model.vertice_map_r.weight, std=0.01)  # upstream initialises it to 0: make outputs non-trivial
    torch.nn.init.normal_(model.vertice_map_r.bias, std=0.001)
    model = model.to(device).eval()
    rng = np.random.default_rng(0)
    audio = normalize_audio(rng.standard_normal(int(16000 * args.seconds)).astype(np.float32)).to(device)
    style = model.style(torch.eye(8, device=device)[5:6])
    print(machine(device))
    with torch.inference_mode():
        model.encode_audio(audio[:, :16000])  # warm-up
        (memory, frames), t_audio = timed(lambda: model.encode_audio(audio), device)
        ours, t_ours = timed(lambda: model.decode(memory, style, frames), device)
        reference, t_ref = timed(lambda: model.decode_reference(memory, style, frames), device)
    diff = (ours - reference).abs().max().item()
    print(f"{args.seconds:g} s of audio -> {frames} frames on {device}")
    print(f"audio encoder (shared):            {t_audio:7.2f} s")
    print(f"decoder, KV cache (ours):          {t_ours:7.2f} s")
    print(f"decoder, full recompute (upstream):{t_ref:7.2f} s")
    print(f"speed-up, decoder alone:           {t_ref / t_ours:7.1f}x")
    print(f"speed-up, end to end:              {(t_audio + t_ref) / (t_audio + t_ours):7.1f}x")
    print(f"max abs diff of displacements:     {diff:.2e}")


if __name__ == "__main__":
    main()
