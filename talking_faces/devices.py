"""Choosing the torch device once, from the `--device auto|cpu|cuda` option."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .errors import TalkingFacesError

if TYPE_CHECKING:
    import torch

DEVICE_NAME = re.compile(r"auto|cpu|cuda(:\d+)?")


def check_device_name(device: str) -> None:
    """Raise a TalkingFacesError unless `device` is `auto`, `cpu`, `cuda` or `cuda:N` (checked without torch)."""
    if not DEVICE_NAME.fullmatch(device.strip().lower()):
        raise TalkingFacesError(f"Unknown device {device!r}; use auto, cpu, cuda or cuda:N.")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn `auto`, `cpu`, `cuda` or `cuda:N` into a torch device that exists on this machine."""
    import torch

    if isinstance(device, torch.device):
        return device
    check_device_name(device)
    name = device.strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TalkingFacesError(f"--device {device} asked for CUDA, but no CUDA GPU is visible; use --device cpu or auto.")
    return torch.device(name)
