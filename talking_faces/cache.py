"""Where derived data that is costly to recompute (AUBlendNet and rig bases) is kept between runs."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .errors import TalkingFacesError

CACHE_ENV = "TALKFACE_CACHE_DIR"


def cache_dir() -> Path:
    """`$TALKFACE_CACHE_DIR`, else `$XDG_CACHE_HOME/talking_faces`, else `~/.cache/talking_faces`."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "talking_faces"



def load_cached(path: Path, valid: Callable[[np.ndarray], bool]) -> np.ndarray | None:
    """The array kept at `path` when it reads and `valid(array)`, else None (a miss)."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    return array if valid(array) else None


def store_cached(path: Path, array: np.ndarray, what: str) -> None:
    """Keep `array` at `path` (atomically) for the next run; a cache that cannot be written costs a warning."""
    try:
        atomic_write(path, lambda tmp: np.save(tmp, array))
    except TalkingFacesError as exc:
        warnings.warn(f"could not cache {what} ({exc}); set {CACHE_ENV} to a writable folder", stacklevel=3)


def cached_array(path: Path, compute: Callable[[], np.ndarray], valid: Callable[[np.ndarray], bool], what: str) -> np.ndarray:
    """The array kept at `path` when `valid(array)`, else `compute()`, kept at `path` for the next run."""
    array = load_cached(path, valid)
    if array is None:
        array = compute()
        store_cached(path, array, what)
    return array
