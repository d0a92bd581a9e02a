"""Speed of `talkface augment` against the bare draw of the renderer at the same size.

    .venv/bin/python benchmarks/augment_speed.py [--size 224] [--images 10] [--repeats 20]

Both sides render the same posed meshes (one varied bundled character, the planned AU weights and
head poses) in one process, in alternating blocks:

- bare draw: `FaceRenderer.render(mesh)` with the renderer's defaults (lights, skin, background),
  read back in GL's own RGBX layout (`draw(prepare(mesh), alpha=True)`), as augment and the video
  loop do: the fastest read-back;
- augment: the job's whole per-image path: plan the sample (prior, pose, light, skin, background),
  blend, render with that pose, light, skin, background and mouth interior (all drawn by GL), encode
  the PNG and write it atomically (on the writer thread).

Reports milliseconds per image (min and median over blocks), CPU time per image (all threads, and
the main thread alone, which draws: a shading thread blends and shades the next images and a writer
thread encodes and writes the last ones, in parallel), and augment's rate as a share of the bare
draw's (the issue asks for at least 80%). The wall-clock ratio holds when the machine has cores free
for the three threads; when other work fills every core, the CPU ratio (all threads) is the rate. Last, the CPU time of the PNG encoders
on the same frames: the project's (`talking_faces.augment.png`) and Pillow's at its fastest setting.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from render_speed import machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--images", type=int, default=10, help="images per block")
    parser.add_argument("--repeats", type=int, default=20, help="blocks of each side, alternating")
    args = parser.parse_args()

    from talking_faces.augment import AugmentOptions, AUPrior, CharacterSource
    from talking_faces.augment.job import RenderSpec, expression_offsets, head_pose
    from talking_faces.augment.plan import Views, plan_sample
    from talking_faces.render import FaceRenderer

    source = CharacterSource(seed=0, variant=0)
    identity = source.build()
    prior, views = AUPrior(), Views()
    blocks = [[plan_sample(r * args.images + i, 0, 1, prior, views) for i in range(args.images)] for r in range(args.repeats)]
    poses = [[head_pose(identity, s) for s in block] for block in blocks]
    posed_meshes = [[(identity.neutral + expression_offsets(identity, s.weights)) @ pose[:3, :3].T.astype(np.float32)
                     + pose[:3, 3].astype(np.float32) for s, pose in zip(block, block_poses)]
                    for block, block_poses in zip(blocks, poses)]
    with tempfile.TemporaryDirectory() as folder:
        options = AugmentOptions(count=args.images * args.repeats, size=args.size)
        worker = RenderSpec((source,), (identity.name,), folder, options, prebuilt=(identity,)).build()
        bare_renderer = FaceRenderer(identity.neutral, identity.faces, size=args.size, albedo=identity.albedo)
        bare_renderer.frame(identity.frame_box)
        worker((0, (blocks[0][0],)))  # GL context and shaders outside the timing
        bare_renderer.render(identity.neutral)

        frames = []

        def bare(r: int) -> None:
            for mesh in posed_meshes[r]:
                frame = bare_renderer.draw(bare_renderer.prepare(mesh), alpha=True)  # `render`, read back as RGBX
                if len(frames) < 2 * args.images:  # kept, as RGB, to time the PNG encoders on
                    frames.append(np.ascontiguousarray(frame[:, :, :3]))

        def augment(r: int) -> None:
            samples = tuple(plan_sample(r * args.images + i, 0, 1, prior, views) for i in range(args.images))
            worker((0, samples))

        times = {"bare": [], "augment": []}
        cpu = {"bare": [], "augment": []}
        main_cpu = {"bare": [], "augment": []}
        for r in range(args.repeats):
            for name in (("bare", "augment") if r % 2 == 0 else ("augment", "bare")):
                work = bare if name == "bare" else augment
                wall, used, main_used = time.perf_counter(), time.process_time(), time.thread_time()
                work(r)
                times[name].append((time.perf_counter() - wall) / args.images)
                cpu[name].append((time.process_time() - used) / args.images)
                main_cpu[name].append((time.thread_time() - main_used) / args.images)
        bare_renderer.close()

    print(f"# augment speed, {args.size}x{args.size}, {len(identity.neutral)} vertices, {args.repeats} blocks of "
          f"{args.images} images per side, alternating\n# {machine()}\n")
    print("| path | ms/image min | ms/image median | CPU ms/image, all threads (median) | CPU ms/image, main thread (median) |")
    print("|---|---|---|---|---|")
    labels = {"bare": "bare draw (FaceRenderer.render, RGBX read-back, same posed meshes)",
              "augment": "augment (plan, blend, render with pose, light, skin and background, PNG, atomic write)"}
    for name in ("bare", "augment"):
        print(f"| {labels[name]} | {1e3 * min(times[name]):.2f} | {1e3 * statistics.median(times[name]):.2f} | "
              f"{1e3 * statistics.median(cpu[name]):.2f} | {1e3 * statistics.median(main_cpu[name]):.2f} |")
    ratios = [b / a for b, a in zip(times["bare"], times["augment"])]
    print(f"\naugment rate as a share of the bare draw rate: {min(times['bare']) / min(times['augment']):.0%} (min times), "
          f"{statistics.median(times['bare']) / statistics.median(times['augment']):.0%} (median times), "
          f"{statistics.median(ratios):.0%} (median of per-block ratios); in CPU time: "
          f"{statistics.median(cpu['bare']) / statistics.median(cpu['augment']):.0%} (all threads: one busy core), "
          f"{statistics.median(main_cpu['bare']) / statistics.median(main_cpu['augment']):.0%} (main thread: the rate "
          "with cores free for the shading and writer threads)")
    print(png_costs(frames))


def png_costs(frames: list) -> str:
    """CPU ms per frame (median of 5 passes) and mean size of the project's PNG encoder and Pillow's."""
    from PIL import Image

    from talking_faces.augment.png import encode_png

    def pillow(frame):
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue()

    parts = []
    for name, encode in (("talking_faces.augment.png", encode_png), ("Pillow compress_level=1", pillow)):
        passes = []
        for _ in range(5):
            start = time.thread_time()
            sizes = [len(encode(frame)) for frame in frames]
            passes.append((time.thread_time() - start) / len(frames))
        parts.append(f"{name} {1e3 * statistics.median(passes):.2f} ms, {statistics.mean(sizes) / 1e3:.1f} kB")
    return "\nPNG encoding, CPU per frame: " + "; ".join(parts)


if __name__ == "__main__":
    main()
