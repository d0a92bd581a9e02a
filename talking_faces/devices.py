"""Choosing the torch device once, from the `--device auto|cpu|cuda` option."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import TalkingFacesError

if TYPE_CHECKING:
    import torch

DEVICE_NAME = re.compile(r"auto|cpu|cuda(:\d+)?")
# A loaded GPU driver (NVIDIA's, or ROCm's kernel device): without one torch cannot see a GPU.
GPU_DRIVER_FILES = (Path("/proc/driver/nvidia/version"), Path("/dev/kfd"))


def check_device_name(device: str) -> None:
    """Raise a TalkingFacesError unless `device` is `auto`, `cpu`, `cuda` or `cuda:N` (checked without torch)."""
    if not DEVICE_NAME.fullmatch(device.strip().lower()):
        raise TalkingFacesError(f"Unknown device {device!r}; use auto, cpu, cuda or cuda:N.")


def has_nvidia_driver() -> bool:
    """Whether NVIDIA's kernel driver is loaded (checked without torch)."""
    return GPU_DRIVER_FILES[0].exists()


def resolve_device_name(device: str | torch.device = "auto") -> str:
    """The device `auto`, `cpu`, `cuda` or `cuda:N` stands for on this machine, as a torch device name.

    torch is imported only when a GPU driver is loaded or CUDA is asked for: on a machine without
    a GPU, `auto` is `cpu` at once (importing torch costs over a second of a short render).
    """
    if not isinstance(device, str):
        return str(device)
    check_device_name(device)
    name = device.strip().lower()
    if name == "cpu" or (name == "auto" and not any(path.exists() for path in GPU_DRIVER_FILES)):
        return "cpu"
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        raise TalkingFacesError(f"--device {device} asked for CUDA, but no CUDA GPU is visible; use --device cpu or auto.")
    return name


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn `auto`, `cpu`, `cuda` or `cuda:N` into a torch device that exists on this machine."""
    import torch

    return device if isinstance(device, torch.device) else torch.device(resolve_device_name(device))
