"""Choosing the torch device once, from the `--device auto|cpu|cuda` option."""

import torch

from .errors import TalkingFacesError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn `auto`, `cpu`, `cuda` or `cuda:N` into a torch device that exists on this machine."""
    if isinstance(device, torch.device):
        return device
    name = device.strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TalkingFacesError(f"--device {device} asked for CUDA, but no CUDA GPU is visible; use --device cpu or auto.")
    try:
        return torch.device(name)
    except RuntimeError:
        raise TalkingFacesError(f"Unknown device {device!r}; use auto, cpu or cuda.") from None
