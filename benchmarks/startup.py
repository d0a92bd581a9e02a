"""Start-up cost of `talkface render`: CPU-seconds until the first frame is drawn, and until a typo is reported.

Usage:
    python benchmarks/startup.py [--baseline OTHER_VENV_PYTHON] [--repeats 5]

Runs the CLI entry point of this interpreter's talking_faces (and, with --baseline, of another
checkout's interpreter, interleaved in the same run) on a 1 s, 22.05 kHz clip (so the audio is
resampled, as for most recordings):
- first frame: the process stops itself when the renderer is asked for its first frame; the figure
  is the CPU time (user + system) of that process, from the kernel (wait4);
- typo: `talkface render x.wav --emotion hapy`, CPU and wall time until it exits with the error;
- full: the whole 1 s render at the default 512 px and 30 fps, CPU (ffmpeg included) and wall time.
Prints min and median of each, and the ratio baseline / this.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

# Runs the real console-script function; stops the process at the first frame it would draw.
FIRST_FRAME = """
import os, sys
import talking_faces.render as render
render.FaceRenderer.draw = lambda self, *args, **kwargs: os._exit(0)
from talking_faces.cli import main
sys.argv = ["talkface", *sys.argv[1:]]
main()
"""
CLI = "import sys\nfrom talking_faces.cli import main\nsys.argv = ['talkface', *sys.argv[1:]]\nmain()\n"


def write_clip(path: Path, seconds: float = 1.0, rate: int = 22_050) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    voice = sum(np.sin(2 * np.pi * 120 * k * t) / k for k in range(1, 20)) * np.clip(np.sin(2 * np.pi * 4 * t), 0, None)
    soundfile.write(str(path), (0.3 * voice / np.abs(voice).max()).astype(np.float32), rate)
    return path


def measure(python: str, code: str, args: list[str], folder: Path) -> tuple[float, float, int]:
    """(CPU seconds of the process and its waited-for children, wall seconds, exit status)."""
    start = time.perf_counter()
    process = subprocess.Popen([python, "-c", code, *args], cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    process.stderr.close()
    return usage.ru_utime + usage.ru_stime, wall, process.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", help="python of another checkout's venv, measured side by side")
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args()
    pythons = {"this": sys.executable}
    if options.baseline:
        pythons["baseline"] = options.baseline
    cases = {
        "first frame (CPU s)": (FIRST_FRAME, ["render", "clip.wav", "--out", "first.mp4"], 0),
        "typo reported (CPU s)": (CLI, ["render", "clip.wav", "--emotion", "hapy"], 2),
        "full 1 s render (CPU s)": (CLI, ["render", "clip.wav", "--out", "full.mp4"], 0),
    }
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="talkface-startup-") as folder:
        write_clip(Path(folder) / "clip.wav")
        for _ in range(options.repeats):
            for case, (code, args, expected) in cases.items():
                for name, python in pythons.items():  # interleaved: both see the same machine load
                    cpu, wall, status = measure(python, code, args, Path(folder))
                    if status != expected:
                        raise SystemExit(f"{name} {case}: exit status {status}, expected {expected}")
                    results.setdefault((case, name), []).append((cpu, wall))
    print(f"{'case':26} {'python':9} {'CPU min':>8} {'CPU med':>8} {'wall min':>9} {'wall med':>9}")
    for (case, name), runs in results.items():
        cpu, wall = [r[0] for r in runs], [r[1] for r in runs]
        print(f"{case:26} {name:9} {min(cpu):8.2f} {statistics.median(cpu):8.2f} {min(wall):9.2f} {statistics.median(wall):9.2f}")
    if options.baseline:
        for case in cases:
            this = statistics.median(r[0] for r in results[(case, "this")])
            base = statistics.median(r[0] for r in results[(case, "baseline")])
            print(f"{case}: baseline / this = {base / this:.2f}x (median CPU)")


if __name__ == "__main__":
    main()
