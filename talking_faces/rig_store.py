"""The procedural rig's bases kept on disk between runs, found without importing the rig (and scipy).

An entry is keyed by the mesh's content, the landmarks file's content and the rig's code, so a change
to any of them builds the basis anew. Only heads whose analysis gave no notes are kept, so a hit
never hides a note (such as welded lips).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import numpy as np

from .aus import NUM_AUS
from .cache import cache_dir, load_cached, store_cached
from .character import mesh_digest
from .identity import Identity

RIG_SOURCE = "procedural rig"
# The modules whose code decides a rig basis.
RIG_MODULES = ("rig.py", "head_landmarks.py", "head_frame.py", "landmarks.py", "aus.py", "character.py")


@lru_cache(maxsize=1)
def rig_code_digest() -> str:
    digest = hashlib.sha1()
    for name in RIG_MODULES:
        digest.update(Path(__file__).with_name(name).read_bytes())
    return digest.hexdigest()


def rig_key(identity: Identity, landmarks_file: str | Path | None = None) -> str:
    """The mesh's content hash, followed by the landmarks file's (or its name when it does not exist)."""
    key = mesh_digest(identity.vertices, identity.faces)
    if landmarks_file is not None:
        path = Path(landmarks_file)
        key += hashlib.sha1(path.read_bytes()).hexdigest() if path.is_file() else str(landmarks_file)
    return key


def _entry(key: str) -> Path:
    return cache_dir() / "rig" / f"{hashlib.sha1((key + rig_code_digest()).encode()).hexdigest()}.npy"


def load_rig_offsets(key: str, num_vertices: int) -> np.ndarray | None:
    """The `(32, V, 3)` float32 offsets kept for `key` (see `rig_key`), or None."""
    return load_cached(_entry(key), lambda a: a.shape == (NUM_AUS, num_vertices, 3) and a.dtype == np.float32)


def store_rig_offsets(key: str, offsets: np.ndarray) -> None:
    """Keep `(32, V, 3)` float32 offsets for `key`, for the next run."""
    store_cached(_entry(key), offsets, "the rig basis")
