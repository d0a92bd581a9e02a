"""Peak memory of `talkface render` against the length of the speech: 15 s, 60 s and 600 s.

    .venv/bin/python benchmarks/render_memory.py [--seconds 15 60 600] [--size 512] [--baseline PATH/talkface]

Each length is the bundled sample speech (9.3 s, "Hello there. My name is ...") looped to that length
and rendered on the default character by the real command, in a fresh process, with the viseme
adapter's phone recogniser (no --text: forced alignment of a 10-minute transcript is not the
common case) and `--save-vertices` (streamed into the .npy). Reported per run:
- the peak RSS of the `talkface` process itself (VmHWM, read from /proc while it runs);
- the peak of the summed RSS of `talkface` and all its descendants at one time (its speech worker
  process and ffmpeg; polled every 50 ms): what the render needs of the machine;
and the growth from the shortest clip. Target (issue 8): 600 s within 200 MB of 15 s, under 1.5 GB.
`--baseline` runs another installation's `talkface` (e.g. main's) on the same clips (or `--baseline-seconds`).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from process_tree import watch
from render_speed import speech


def run(talkface: str, seconds: list[float], size: int, folder: Path) -> list[tuple[float, float, float, float]]:
    rows = []
    for length in seconds:
        audio = speech(length, folder / f"speech_{length:g}.wav")
        command = [talkface, "render", str(audio), "--size", str(size), "--emotion", "happy:0.6",
                   "--out", str(folder / "out.mp4"), "--save-vertices", str(folder / "v.npy")]
        usage = watch(command)
        hwm, tree, wall = usage.peak_mb, usage.peak_tree_mb, usage.wall_s
        rows.append((length, hwm, tree, wall))
        print(f"  {talkface}: {length:g} s -> {hwm:.0f} MB (with its worker and ffmpeg {tree:.0f} MB), {wall:.0f} s wall", flush=True)
        for output in ("out.mp4", "v.npy"):
            (folder / output).unlink(missing_ok=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[15.0, 60.0, 600.0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--baseline", help="another talkface executable to measure on the same clips")
    parser.add_argument("--baseline-seconds", type=float, nargs="+", help="clip lengths for the baseline (default: --seconds)")
    args = parser.parse_args()
    ours = str(Path(sys.executable).parent / "talkface")
    with tempfile.TemporaryDirectory(prefix="talkface-memory-") as name:
        results = {"this tree": run(ours, args.seconds, args.size, Path(name))}
        if args.baseline:
            results["baseline " + args.baseline] = run(args.baseline, args.baseline_seconds or args.seconds, args.size, Path(name))
    print(f"default character, {args.size}² at 30 fps, viseme adapter, --save-vertices; load average {os.getloadavg()[0]:.1f}")
    print("| code | speech | peak RSS talkface | peak RSS with worker and ffmpeg | growth from the first (both) | wall |")
    print("|---|---|---|---|---|---|")
    for label, rows in results.items():
        first, first_tree = rows[0][1], rows[0][2]
        for length, hwm, tree, wall in rows:
            print(f"| {label} | {length:g} s | {hwm:.0f} MB | {tree:.0f} MB | {hwm - first:+.0f} / {tree - first_tree:+.0f} MB | {wall:.0f} s |")


if __name__ == "__main__":
    main()
