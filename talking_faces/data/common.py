"""Checks and loaders shared by the dataset readers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from talking_faces.aus import EMOTIONS
from talking_faces.emotion import EMOTION_ALIASES
from talking_faces.errors import TalkingFacesError

from .safe_pickle import load_pickle

# Canonical emotion names -> MEAD's folder names (also the names of the MEAD checkpoints' one-hot emotions).
MEAD_EMOTION_NAMES = {"surprise": "surprised", "disgust": "disgusted"}


def canonical_emotion(label: str, source: Path) -> str:
    """A dataset's emotion name (`surprised`, `disgusted`, ...) as one of `talking_faces.aus.EMOTIONS`."""
    name = EMOTION_ALIASES.get(label.lower(), label.lower())
    if name not in EMOTIONS:
        raise TalkingFacesError(f"{source}: unknown emotion label {label!r}; expected one of {', '.join(EMOTIONS)}.")
    return name


def load_templates(path: Path) -> dict[str, np.ndarray]:
    """A templates pickle (subject -> `(V, 3)` neutral, numpy or torch) as float arrays in the file's precision."""
    raw = load_pickle(path)
    if not isinstance(raw, dict) or not raw:
        raise TalkingFacesError(f"{path} must be a pickled dict subject -> (V, 3) template; it holds {type(raw).__name__}.")
    templates = {}
    for subject, value in raw.items():
        array = as_float(np.asarray(value.numpy() if hasattr(value, "numpy") else value))
        templates[str(subject)] = check_template(array.reshape(-1, 3) if array.ndim == 1 else array, f"{path}[{subject!r}]")
    return templates


def check_template(array: np.ndarray, source: str) -> np.ndarray:
    """Raise unless `array` is a finite `(V, 3)` mesh."""
    if array.ndim != 2 or array.shape[1] != 3 or not np.isfinite(array).all():
        raise TalkingFacesError(f"{source}: expected a finite (V, 3) template, got shape {tuple(array.shape)}.")
    return array


def template_for(templates: dict[str, np.ndarray], subject: str, templates_path: Path, needed_by: Path) -> np.ndarray:
    """The subject's template, or an error naming the file that needs it."""
    if subject not in templates:
        raise TalkingFacesError(
            f"{needed_by}: no template for subject {subject} in {templates_path}; add it or remove the subject's files."
        )
    return templates[subject]


def vertex_array_shape(path: Path, num_vertices: int) -> tuple[int, ...]:
    """Check a vertex `.npy` by its header only: `(T, V*3)`, `(T, V, 3)` or `(1, T, V*3)`, T >= 1."""
    try:
        shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
    except Exception as exc:  # numpy raises many types for a corrupt header
        raise TalkingFacesError(f"Cannot read {path}: {exc}; the file is corrupt or not a .npy array.") from None
    if len(shape) == 3 and shape[0] == 1 and shape[2] == num_vertices * 3:
        shape = shape[1:]
    if not fits_vertices(shape, num_vertices):
        raise TalkingFacesError(
            f"{path}: expected vertices of shape (T, {num_vertices * 3}) or (T, {num_vertices}, 3) with T >= 1 "
            f"(the subject's template has {num_vertices} vertices), got {shape}."
        )
    return shape


def fits_vertices(shape: tuple[int, ...], num_vertices: int) -> bool:
    """True for `(T, V*3)` or `(T, V, 3)` with T >= 1."""
    flat = len(shape) == 2 and shape[1] == num_vertices * 3
    return (flat or (len(shape) == 3 and tuple(shape[1:]) == (num_vertices, 3))) and shape[0] > 0


def load_vertex_file(path: Path, num_vertices: int, step: int = 1) -> np.ndarray:
    """`(T, V, 3)` vertices of a `.npy` file, every `step`-th frame, in the file's float precision."""
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as exc:  # a header that parsed can still precede truncated data
        raise TalkingFacesError(f"Cannot read {path}: {exc}; the file is truncated or corrupt.") from None
    return as_float(array.reshape(-1, num_vertices, 3)[::step])


def as_float(array: np.ndarray) -> np.ndarray:
    """Float arrays as they are (float32 stays float32); anything else as float64."""
    return array if np.issubdtype(array.dtype, np.floating) else array.astype(np.float64)


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise TalkingFacesError(f"{path} is missing; {what}.")
    return path


def first_existing(candidates: list[Path], what: str) -> Path:
    """The first of `candidates` that exists, or an error listing them all."""
    for path in candidates:
        if path.exists():
            return path
    raise TalkingFacesError(f"No {what} found; expected one of {', '.join(str(p) for p in candidates)}.")


def parse_int(text: str, source: Path, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise TalkingFacesError(f"{source}: cannot read the {what} from the name ({text!r} is not a number).") from None


def ensure_nonempty(items: list[Any], root: Path, what: str, hint: str = "check --data-root and --split") -> list[Any]:
    if not items:
        raise TalkingFacesError(f"{root} holds no {what}; {hint}.")
    return items


def split_hint(split: str, members: str) -> str:
    return f"the {split} split is {members}; pass --split all to score every sequence"
