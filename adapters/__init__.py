"""Speech adapters: each turns a `SpeechRequest` into Offset_spe for an identity (see `base.py`)."""

from __future__ import annotations

import difflib
import importlib
from pathlib import Path
from typing import Any

import torch

from talking_faces.errors import TalkingFacesError

from .base import SpeechAdapter, SpeechOutput, SpeechRequest

# name -> "module:class", imported on first use so that `viseme` never pulls in transformers.
ADAPTERS: dict[str, str] = {
    "viseme": "talking_faces.adapters.viseme:VisemeAdapter",
    "faceformer": "talking_faces.adapters.faceformer:FaceFormerAdapter",
    "facediffuser": "talking_faces.adapters.facediffuser:FaceDiffuserAdapter",
    "lgldm": "talking_faces.adapters.lgldm:LGLDMAdapter",
}


def adapter_class(name: str) -> type[SpeechAdapter]:
    """The adapter class registered under `name`."""
    if name not in ADAPTERS:
        close = difflib.get_close_matches(name, list(ADAPTERS), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise TalkingFacesError(f"Unknown speech model {name!r}; {hint}choose one of {', '.join(ADAPTERS)}.")
    module_name, class_name = ADAPTERS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def load_adapter(
    name: str, checkpoint: str | Path | None = None, device: torch.device | str = "cpu", **options: Any
) -> SpeechAdapter:
    """Build the named adapter from a local checkpoint path (None for `viseme`)."""
    return adapter_class(name).from_checkpoint(checkpoint, device=device, **options)


__all__ = ["ADAPTERS", "SpeechAdapter", "SpeechOutput", "SpeechRequest", "adapter_class", "load_adapter"]
