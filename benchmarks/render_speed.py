"""Speed of `talkface render` against the machine's limit: the bare pyrender draw of the same mesh.

    .venv/bin/python benchmarks/render_speed.py [--repeats 3] [--size 512] [--bare-frames 150]

Measured in one run, each `--repeats` times (min, median and max reported):
1. bare draw: one reused `FaceRenderer`, a new vertex buffer uploaded each frame (positions and
   colours precomputed), drawn and read back in the fastest layout (RGBX; pyrender's own RGB read
   back is 0.35 ms slower at 512²): the limit of the GL backend on this machine;
2. the whole command (`talkface render`, a fresh process) on 1 s and 10 s of the bundled sample
   speech, wall time from start to exit;
3. the render loop alone (`render_mp4` with a renderer already made, on the 10 s clip's animation as
   `talkface render` composes it): composition, normals and shading on a second thread -> draw ->
   ffmpeg fed by a writer thread;
4. the baseline: the same frames through the loop as it was before (shade, draw and a blocking
   write to ffmpeg's pipe, one after the other), and the loop with the writer thread but no shading thread.
`--loops-only` skips the whole-command runs (steps 2), for more repeats of the loop comparison.
With `--upstream-frames N`, also the upstream demo scripts' way (a new renderer, scene and mesh per frame).
Targets (issue 8): 1 s clip <= time of 150 bare draws; 10 s clip >= 0.6 of the bare frame rate;
render loop >= 0.85 of it.

Each target is also set against the most this machine's cores allow the work as it is: the CPU time
of the whole command (all its processes: a separate run, `process_tree.watch`) or of the loop (its
threads, the rasteriser's and ffmpeg's), divided by the number of cores, is the least wall time it
can take however well its parts overlap.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile
from process_tree import watch

ROOT = Path(__file__).resolve().parents[1]
TALKFACE = Path(sys.executable).parent / "talkface"
FPS = 30.0


def machine() -> str:
    names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")]
    cpu = names[0] if names else platform.processor() or "unknown CPU"
    return f"{cpu}, {len(os.sched_getaffinity(0))} cores, {platform.system()} Python {platform.python_version()}"


def speech(seconds: float, path: Path) -> Path:
    """The sample speech, looped (or cut) to exactly `seconds`."""
    samples, rate = soundfile.read(str(ROOT / "assets" / "sample_speech.wav"), dtype="float32")
    length = int(round(seconds * rate))
    soundfile.write(str(path), np.resize(samples, length), rate)
    return path


def render_command(audio: Path, folder: Path, size: int, vertices: Path | None = None) -> list[str]:
    command = [str(TALKFACE), "render", str(audio), "--emotion", "happy:0.7", "--size", str(size),
               "--fps", str(FPS), "--out", str(folder / "out.mp4")]
    return command if vertices is None else [*command, "--save-vertices", str(vertices)]


def time_command(audio: Path, folder: Path, size: int, vertices: Path | None = None) -> float:
    """Wall seconds of one `talkface render` in a new process."""
    start = time.perf_counter()
    subprocess.run(render_command(audio, folder, size, vertices), check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def command_cpu(audio: Path, folder: Path, size: int) -> float:
    """CPU seconds of one `talkface render` and all the processes it starts (a separate, polled run)."""
    return watch(render_command(audio, folder, size)).cpu_s


def bare_fps(renderer, vertices: np.ndarray, frames: int, rgbx: bool = True) -> tuple[float, float]:
    """Frames per second of draw + read-back alone, the vertex buffer changing every frame; read back as
    RGBX (the fastest), or as RGB (`rgbx=False`, as pyrender's own `render` reads back); and its CPU
    milliseconds a frame (the rasteriser's threads included)."""
    prepared = [renderer.prepare(v) for v in vertices[:frames]]
    renderer.draw(prepared[0], alpha=rgbx)
    wall, cpu = timed(lambda: [renderer.draw(data, alpha=rgbx) for data in prepared])
    return len(prepared) / wall, 1e3 * cpu / len(prepared)


def loop_fps(renderer, animation, folder: Path) -> tuple[float, float]:
    """Frames per second of `render_mp4` with a ready renderer (shading, draw, encoding), and its CPU
    milliseconds a frame: this process's threads (the rasteriser's included) and ffmpeg."""
    from talking_faces.video import render_mp4

    wall, cpu = timed(lambda: render_mp4(animation, folder / "loop.mp4", renderer=renderer))
    return animation.num_frames / wall, 1e3 * cpu / animation.num_frames


def timed(work: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of `work()`: the CPU of this process's threads and of the children it waited for."""
    def cpu() -> float:
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    cpu_start, start = cpu(), time.perf_counter()
    work()
    return time.perf_counter() - start, cpu() - cpu_start


def serial_loop_fps(renderer, animation, folder: Path) -> float:
    """The loop as it was before streaming (the baseline): shade, draw, then a blocking write to a 64 KB pipe, in turn."""
    from talking_faces.video import encoder_command

    command = encoder_command(animation.audio_path, folder / "serial.mp4", renderer.size, animation.fps)
    start = time.perf_counter()
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    for vertices in animation.vertices:
        process.stdin.write(renderer.render(vertices).tobytes())
    process.stdin.close()
    process.wait()
    return animation.num_frames / (time.perf_counter() - start)


def upstream_fps(vertices: np.ndarray, faces: np.ndarray, size: int) -> float:
    """The upstream demo's way (main/render.py): per frame a new mesh, scene and OpenGL context; five
    directional lights (all shining along -z), a grey metallic BLEND material, no culling."""
    import pyrender  # after FaceRenderer chose the OpenGL backend
    import trimesh

    from talking_faces.render import build_scene

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
    return len(vertices) / (time.perf_counter() - start)


def writer_only_fps(renderer, animation, folder: Path) -> float:
    """Shading and drawing in turn on one thread, ffmpeg fed by the writer thread (no shading thread)."""
    from talking_faces.video import write_video

    start = time.perf_counter()
    images = (renderer.render(vertices) for vertices in animation.vertices)
    write_video(images, folder / "writer.mp4", animation.fps, renderer.size, animation.audio_path)
    return animation.num_frames / (time.perf_counter() - start)


def summary(values: list[float]) -> str:
    return f"min {min(values):.2f}, median {statistics.median(values):.2f}, max {max(values):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--bare-frames", type=int, default=150)
    parser.add_argument("--loops-only", action="store_true", help="skip the whole-command runs (compare the loops only)")
    parser.add_argument("--upstream-frames", type=int, default=0, help="also time the upstream demo's renderer-per-frame way")
    args = parser.parse_args()
    from talking_faces.animation import Animation
    from talking_faces.appearance import vertex_albedo
    from talking_faces.character import load_default_character
    from talking_faces.pipeline import stream_animation
    from talking_faces.render import FaceRenderer

    face = load_default_character()
    albedo = vertex_albedo(face.vertices, face.faces)
    rows: dict[str, list[float]] = {k: [] for k in (
        "bare", "bare_cpu", "bare_rgb", "short", "short_cpu", "long", "long_cpu", "loop", "loop_cpu", "serial", "writer",
    )}
    with tempfile.TemporaryDirectory(prefix="talkface-bench-") as name:
        folder = Path(name)
        short, long = speech(1.0, folder / "short.wav"), speech(10.0, folder / "long.wav")
        load = os.getloadavg()[0]
        time_command(long, folder, args.size, folder / "v.npy")  # warm the file cache; keeps the vertices
        vertices = np.load(folder / "v.npy")
        animation = Animation(vertices, face.faces, FPS, long, 10.0, face.vertices, albedo)
        stream = stream_animation(long, emotion="happy:0.7", fps=FPS, albedo=albedo)
        np.testing.assert_array_equal(stream.collect().vertices, vertices)  # what the command renders
        with FaceRenderer(face.vertices, face.faces, size=args.size, albedo=albedo) as renderer:
            for _ in range(args.repeats):  # interleaved, so that load changes touch every measure alike
                for name, value in zip(("bare", "bare_cpu"), bare_fps(renderer, vertices, args.bare_frames)):
                    rows[name].append(value)
                rows["bare_rgb"].append(bare_fps(renderer, vertices, args.bare_frames, rgbx=False)[0])
                if not args.loops_only:
                    rows["short"].append(time_command(short, folder, args.size))
                    rows["long"].append(vertices.shape[0] / time_command(long, folder, args.size))
                    rows["short_cpu"].append(command_cpu(short, folder, args.size))
                    rows["long_cpu"].append(command_cpu(long, folder, args.size))
                for name, value in zip(("loop", "loop_cpu"), loop_fps(renderer, stream, folder)):
                    rows[name].append(value)
                rows["serial"].append(serial_loop_fps(renderer, animation, folder))
                rows["writer"].append(writer_only_fps(renderer, animation, folder))
                print("  repeat: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in rows.items() if v), flush=True)
    bare = rows["bare"]

    def ratio(name: str) -> list[float]:
        return [f / b for f, b in zip(rows[name], bare)]

    cores = len(os.sched_getaffinity(0))
    frames = vertices.shape[0]
    print(f"machine: {machine()}; {args.size}² frames at {FPS:g} fps; load average {load:.1f} before the run; {args.repeats} repeats")
    print("| measure | value (min, median, max) | target |")
    print("|---|---|---|")
    print(f"| bare draw (reused renderer, new vertices each frame, RGBX read-back): the reference below | {summary(bare)} fps | |")
    print(f"| bare draw: CPU a frame (the rasteriser's threads included) | {summary(rows['bare_cpu'])} ms | |")
    print(f"| bare draw with pyrender's RGB read-back | {summary(rows['bare_rgb'])} fps | |")
    if not args.loops_only:
        print(f"| 1 s clip end to end | {summary(rows['short'])} s | |")
        print(f"| 1 s clip, in bare draws (time x bare fps) | {summary([s * b for s, b in zip(rows['short'], bare)])} | <= 150 |")
        print(f"| 1 s clip: CPU of all its processes | {summary(rows['short_cpu'])} s | |")
        print(f"| 1 s clip: least possible time on {cores} cores (CPU / cores), in bare draws | "
              f"{summary([c / cores * b for c, b in zip(rows['short_cpu'], bare)])} | <= 150 |")
        print(f"| 10 s clip end to end | {summary(rows['long'])} fps | |")
        print(f"| 10 s clip / bare draw | {summary(ratio('long'))} | >= 0.6 |")
        print(f"| 10 s clip: CPU of all its processes | {summary(rows['long_cpu'])} s | |")
        print(f"| 10 s clip: highest possible rate on {cores} cores (frames / (CPU / cores)) / bare draw | "
              f"{summary([frames / (c / cores) / b for c, b in zip(rows['long_cpu'], bare)])} | >= 0.6 |")
    print(f"| render loop alone (render_mp4, renderer ready) | {summary(rows['loop'])} fps | |")
    print(f"| render loop / bare draw | {summary(ratio('loop'))} | >= 0.85 |")
    print(f"| render loop: CPU a frame (all threads and ffmpeg) | {summary(rows['loop_cpu'])} ms | |")
    print(f"| render loop: highest possible rate on {cores} cores (1 / (CPU a frame / cores)) / bare draw | "
          f"{summary([1e3 * cores / c / b for c, b in zip(rows['loop_cpu'], bare)])} | >= 0.85 |")
    print(f"| render loop / bare draw with RGB read-back | {summary([f / b for f, b in zip(rows['loop'], rows['bare_rgb'])])} | |")
    print(f"| baseline: serial loop (shade, draw, blocking pipe) / bare draw | {summary(ratio('serial'))} | |")
    print(f"| writer thread only (shade and draw in turn) / bare draw | {summary(ratio('writer'))} | |")
    if args.upstream_frames:
        fresh = upstream_fps(vertices[: args.upstream_frames], face.faces, args.size)
        print(f"| upstream demo (new renderer, scene and mesh per frame) | {fresh:.2f} fps, bare draw {bare[-1] / fresh:.0f}x faster | |")


if __name__ == "__main__":
    main()
