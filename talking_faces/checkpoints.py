"""Reading model checkpoints safely and loading them strictly: one path for every model.

Each model keeps only its own rename mapping (upstream names -> ours); this module does the rest:
`torch.load(weights_only=True)` on the CPU, unwrapping the container (`{'state_dict': ...}`,
`{'model': ...}`, a bare dict), removing a DDP `module.` prefix, renaming the legacy weight-norm
tensors, and refusing any file whose keys differ from the model's with one line that lists them.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

from .errors import TalkingFacesError

DDP_PREFIX = "module."
UNSAFE_GLOBAL = re.compile(r"GLOBAL ([\w.]+) was not an allowed global")
# torch < 2.1 stored weight-norm as weight_g / weight_v; torch's parametrizations name them
# original0 / original1 (the same g * v / ||v||). HuBERT and wav2vec2 positional convolutions use it.
LEGACY_WEIGHT_NORM = {".weight_g": ".parametrizations.weight.original0", ".weight_v": ".parametrizations.weight.original1"}


def count_layers(state: Mapping[str, torch.Tensor], pattern: str) -> int:
    """Number of numbered blocks: 1 + the largest index captured by `pattern`'s group 1 in a key; 0 when none matches."""
    indices = {int(m.group(1)) for k in state if (m := re.match(pattern, k))}
    return max(indices) + 1 if indices else 0


def names(keys: Iterable[str], limit: int = 6) -> str:
    """`a, b, c (+N more)`: a short list of key names for a one-line message."""
    keys = sorted(keys)
    shown = ", ".join(keys[:limit]) or "none"
    return f"{shown} (+{len(keys) - limit} more)" if len(keys) > limit else shown


def load_weights_only(path: str | Path, what: str) -> object:
    """`torch.load(path, weights_only=True)` on the CPU, every failure one line that names its cause.

    A file that holds Python objects besides tensors (which could run code when unpickled) is
    refused with a message that says so, not as a corrupt file.
    """
    path = Path(path)
    if path.is_dir():
        raise TalkingFacesError(f"{what} checkpoint {path} is a folder; pass the checkpoint file inside it.")
    if not path.is_file():
        raise TalkingFacesError(f"{what} checkpoint not found: {path}; pass the path of its weights file.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # Every weights_only failure mentions weights_only; only a class or function reference names a GLOBAL.
        found = UNSAFE_GLOBAL.search(str(exc))
        if found:
            raise TalkingFacesError(
                f"{path} holds Python objects besides tensors ({found.group(1)}), which could run code when loaded, "
                f"so it was refused; save only the {what} state_dict (torch.save(model.state_dict(), ...))."
            ) from None
        raise TalkingFacesError(f"Cannot read {what} checkpoint {path}: it is corrupt or not a torch file; pass the original file.") from None
    except Exception as exc:  # zip, EOF and storage errors come in many types
        raise TalkingFacesError(f"Cannot read {what} checkpoint {path} ({exc.__class__.__name__}); the file is corrupt or not a torch checkpoint.") from None


def read_checkpoint(path: str | Path, what: str, container: str | tuple[str, ...] | None = None) -> dict:
    """The payload of a checkpoint file, read with `weights_only=True` on the CPU.

    Args:
        path: the file.
        what: the model's name for messages, e.g. "FaceDiffuser".
        container: the key that holds the state_dict (`'state_dict'`, `'model'`), several such
            keys (the first present is used), or None for a bare state_dict. The state_dict is
            returned with any `module.` prefix removed.
    Returns:
        `{name: tensor}` with the container unwrapped.
    """
    payload = load_weights_only(path, what)
    keys = (container,) if isinstance(container, str) else container
    state = payload
    if keys is not None and isinstance(payload, dict):
        state = payload.get(next((k for k in keys if k in payload), keys[0]))
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        where = " under '" + "' or '".join(keys) + "'" if keys else ""
        raise TalkingFacesError(f"{path} holds no tensor state_dict{where}; pass an official {what} checkpoint.")
    return {k.removeprefix(DDP_PREFIX): v for k, v in state.items()}


def rename_legacy_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`...weight_g` / `...weight_v` -> torch's `...parametrizations.weight.original0/1`."""
    renamed = {}
    for key, value in state.items():
        for old, new in LEGACY_WEIGHT_NORM.items():
            if key.endswith(old):
                key = key[: -len(old)] + new
                break
        renamed[key] = value
    return renamed


def legacy_weight_norm_names(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of `rename_legacy_weight_norm`, for writing files that old upstream code loads."""
    renamed = {}
    for key, value in state.items():
        for old, new in LEGACY_WEIGHT_NORM.items():
            if key.endswith(new):
                key = key[: -len(new)] + old
                break
        renamed[key] = value
    return renamed


def check_keys(path: str | Path, what: str, found: Iterable[str], expected: Iterable[str], hint: str) -> None:
    """Raise one line naming the missing and unexpected keys unless `found == expected`."""
    found, expected = set(found), set(expected)
    missing, unexpected = expected - found, found - expected
    if missing or unexpected:
        parts = [f"missing {len(missing)} key(s): {names(missing)}" if missing else "",
                 f"unexpected {len(unexpected)} key(s): {names(unexpected)}" if unexpected else ""]
        raise TalkingFacesError(f"{path} is not a {what} checkpoint: {'; '.join(p for p in parts if p)}; {hint}")


def load_strict(model: torch.nn.Module, state: Mapping[str, torch.Tensor], path: str | Path, what: str, hint: str) -> None:
    """`model.load_state_dict(state, strict=True)`, with missing/unexpected keys and shape errors as one line."""
    check_keys(path, what, state, model.state_dict(), hint)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        mismatches = re.findall(r"size mismatch for ([\w.]+)", str(exc))
        detail = f"shape mismatch for {names(mismatches)}" if mismatches else str(exc).strip().splitlines()[0]
        raise TalkingFacesError(f"{path}: {what} weights do not fit together ({detail}); the file is corrupt or from another model.") from None
