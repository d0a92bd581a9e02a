"""What a command and the processes it starts use of the machine, read from /proc while it runs.

`watch(command)` runs it and returns its wall time, the peak RSS of the command itself (VmHWM), the
peak of the summed RSS of it and all its descendants at one time, and the CPU time of all of them:
the command's own rusage from `wait4` (it and the children it waited for: `talkface`'s speech
worker and ffmpeg) plus the last CPU time read of its grandchildren, which no process of the tree
waits for (the speech worker's word helper, killed with the worker). Polled every `poll_s`.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class TreeUsage:
    wall_s: float
    peak_mb: float  # the command itself (VmHWM)
    peak_tree_mb: float  # it and its descendants, summed at one time
    cpu_s: float  # user + system, all of them


def status_kb(pid: int, field: str) -> int:
    """A `kB` field of /proc/PID/status (e.g. "VmRSS:"); 0 when the process is gone."""
    try:
        line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith(field))
        return int(line.split()[1])
    except (OSError, StopIteration, ValueError):  # gone, or exiting
        return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the process so far; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    except (OSError, IndexError, ValueError):
        return 0.0


def descendants(root: int) -> dict[int, int]:
    """{pid: generation} of the processes below `root` (1: its children, 2: grandchildren, ...)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    found, frontier, generation = {}, {root}, 1
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier}
        found.update(dict.fromkeys(frontier, generation))
        generation += 1
    return found


def watch(command: list[str], poll_s: float = 0.05) -> TreeUsage:
    """Run `command` to its end (SystemExit with its stderr when it fails) and measure it (module docstring)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    hwm_kb = tree_kb = 0
    unwaited_cpu: dict[int, float] = {}
    while True:
        below = descendants(process.pid)
        hwm_kb = max(hwm_kb, status_kb(process.pid, "VmHWM:"))
        tree_kb = max(tree_kb, sum(status_kb(pid, "VmRSS:") for pid in [process.pid, *below]))
        for pid, generation in below.items():
            if generation >= 2:
                unwaited_cpu[pid] = max(unwaited_cpu.get(pid, 0.0), cpu_seconds(pid))
        pid, wait_status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(poll_s)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(wait_status) != 0:
        raise SystemExit(f"{' '.join(command)} failed: {process.stderr.read().decode()[-2000:]}")
    process.stderr.close()
    cpu = usage.ru_utime + usage.ru_stime + sum(unwaited_cpu.values())
    return TreeUsage(wall, hwm_kb / 1024, max(tree_kb, hwm_kb) / 1024, cpu)
