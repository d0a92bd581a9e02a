"""Speed of `talkface render`: real-time factor of the whole command, and reused vs per-frame renderers.

    .venv/bin/python benchmarks/render_speed.py [--seconds 10] [--size 512] [--baseline-frames 90]

1. Runs the real command on `seconds` of the bundled sample speech (padded with silence) and
   reports wall time / audio duration (RTF; below 1 is faster than real time).
2. Renders the same vertices (from `--save-vertices`) two ways in this process: one FaceRenderer
   for all frames (ours), and the upstream demo scripts' way (a new pyrender.OffscreenRenderer, scene
   and mesh every frame, their lights and material, same camera), and prints the ratio.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        cpu = names[0] if names else cpu
    gpu = ""
    if shutil.which("nvidia-smi"):
        query = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True)
        gpu = f", GPU {query.stdout.strip()}" if query.returncode == 0 else ""
    return f"{cpu}, {len(os.sched_getaffinity(0))} cores{gpu}, {platform.system()} Python {platform.python_version()}"


def speech(seconds: float, folder: Path) -> Path:
    """The sample speech, padded with silence (or cut) to exactly `seconds`."""
    samples, rate = soundfile.read(str(ROOT / "assets" / "sample_speech.wav"), dtype="float32")
    length = int(round(seconds * rate))
    samples = np.pad(samples, (0, max(0, length - samples.shape[0])))[:length]
    path = folder / "speech.wav"
    soundfile.write(str(path), samples, rate)
    return path


def time_command(audio: Path, folder: Path, size: int) -> tuple[float, float, Path]:
    """Wall seconds and CPU seconds (the command and its ffmpeg) of one `talkface render`."""
    talkface = Path(sys.executable).parent / "talkface"
    vertices = folder / "vertices.npy"
    command = [
        str(talkface), "render", str(audio), "--emotion", "happy:0.7", "--size", str(size),
        "--text", (ROOT / "assets" / "sample_speech.txt").read_text().strip(),
        "--out", str(folder / "out.mp4"), "--save-vertices", str(vertices),
    ]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True)
    wall = time.perf_counter() - start
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = cpu_after.ru_utime - cpu_before.ru_utime + cpu_after.ru_stime - cpu_before.ru_stime
    return wall, cpu, vertices


def time_renderers(vertices: np.ndarray, faces: np.ndarray, size: int) -> tuple[float, float, str]:
    """Frames per second of one reused FaceRenderer and of a new OffscreenRenderer every frame."""
    from talking_faces.render import FaceRenderer, build_scene

    with FaceRenderer(vertices[0], faces, size=size) as ours:
        ours.render(vertices[0])  # compile shaders outside the timing, as the command does once
        start = time.perf_counter()
        for frame in vertices:
            ours.render(frame)
        reused = len(vertices) / (time.perf_counter() - start)
    import pyrender  # after FaceRenderer chose the OpenGL backend
    import trimesh

    # The upstream demo (main/render.py): per frame a new mesh, scene and OpenGL context; five
    # directional lights (all shining along -z), a grey metallic BLEND material, no culling.
    material = pyrender.MetallicRoughnessMaterial(
        alphaMode="BLEND", baseColorFactor=[0.3, 0.3, 0.3, 1.0], metallicFactor=0.8, roughnessFactor=0.8
    )
    start = time.perf_counter()
    for frame in vertices:
        scene = build_scene(vertices[0])
        for _ in range(5):
            scene.add(pyrender.DirectionalLight(color=np.ones(3), intensity=2.0))
        scene.add(pyrender.Mesh.from_trimesh(trimesh.Trimesh(frame, faces, process=False), material=material, smooth=True))
        offscreen = pyrender.OffscreenRenderer(size, size)
        offscreen.render(scene, flags=pyrender.RenderFlags.SKIP_CULL_FACES)
        offscreen.delete()
    fresh = len(vertices) / (time.perf_counter() - start)
    return reused, fresh, ours.backend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--baseline-frames", type=int, default=90, help="frames rendered each way in part 2")
    args = parser.parse_args()
    from talking_faces.character import load_default_character

    with tempfile.TemporaryDirectory(prefix="talkface-bench-") as name:
        folder = Path(name)
        audio = speech(args.seconds, folder)
        load = os.getloadavg()[0]
        wall, cpu, vertices_path = time_command(audio, folder, args.size)
        vertices = np.load(vertices_path)
    faces = load_default_character().faces
    reused, fresh, backend = time_renderers(vertices[: args.baseline_frames], faces, args.size)
    print(f"machine: {machine()}; OpenGL backend {backend}; load average {load:.1f} before the run")
    print(f"talkface render, {args.seconds:g} s of speech, {vertices.shape[0]} frames at {args.size}²: "
          f"{wall:.1f} s wall, real-time factor {wall / args.seconds:.2f} ({cpu:.1f} CPU s with ffmpeg)")
    print(f"render loop: one reused renderer {reused:.1f} fps, new renderer per frame (upstream) {fresh:.1f} fps, "
          f"ratio {reused / fresh:.2f}x")


if __name__ == "__main__":
    main()
