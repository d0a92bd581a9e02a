"""Speech adapters: each turns a `SpeechRequest` into Offset_spe for an identity (see `base.py`)."""

from __future__ import annotations

import difflib
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from talking_faces.errors import TalkingFacesError

if TYPE_CHECKING:  # the registry is read before torch is imported, so that `--model` typos fail fast
    import torch

    from .base import SpeechAdapter

INTERFACE = ("SpeechAdapter", "SpeechOutput", "SpeechRequest")  # from .base, imported on first use

# name -> "module:class", imported on first use so that `viseme` never pulls in transformers.
ADAPTERS: dict[str, str] = {
    "viseme": "talking_faces.adapters.viseme:VisemeAdapter",
    "faceformer": "talking_faces.adapters.faceformer:FaceFormerAdapter",
    "facediffuser": "talking_faces.adapters.facediffuser:FaceDiffuserAdapter",
    "lgldm": "talking_faces.adapters.lgldm:LGLDMAdapter",
}


def check_adapter_name(name: str) -> None:
    """Raise a TalkingFacesError unless an adapter is registered under `name` (imports no model code)."""
    if name not in ADAPTERS:
        close = difflib.get_close_matches(name, list(ADAPTERS), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise TalkingFacesError(f"Unknown speech model {name!r}; {hint}choose one of {', '.join(ADAPTERS)}.")


def adapter_class(name: str) -> type[SpeechAdapter]:
    """The adapter class registered under `name`."""
    check_adapter_name(name)
    module_name, class_name = ADAPTERS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def load_adapter(
    name: str, checkpoint: str | Path | None = None, device: torch.device | str = "cpu", **options: Any
) -> SpeechAdapter:
    """Build the named adapter from a local checkpoint path (None for `viseme`)."""
    return adapter_class(name).from_checkpoint(checkpoint, device=device, **options)


def __getattr__(name: str) -> Any:
    if name in INTERFACE:
        return getattr(importlib.import_module(".base", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ADAPTERS", *INTERFACE, "adapter_class", "check_adapter_name", "load_adapter"]
