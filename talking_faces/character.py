"""The bundled default character: a procedurally built mannequin head and its rig landmarks."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib.resources import files

import numpy as np

from .errors import TalkingFacesError
from .identity import Identity
from .landmarks import Landmarks

DEFAULT_NAME = "default_head"
MESH_FILE = "default_head.npz"
LANDMARKS_FILE = "default_head_landmarks.json"


@lru_cache(maxsize=1)
def _assets() -> tuple[np.ndarray, np.ndarray, Landmarks]:
    folder = files("talking_faces.assets")
    try:
        with (folder / MESH_FILE).open("rb") as handle, np.load(handle, allow_pickle=False) as data:
            vertices, faces = data["vertices"].astype(np.float32), data["faces"].astype(np.int64)
        landmarks = Landmarks.from_json((folder / LANDMARKS_FILE).read_text())
    except (OSError, KeyError, ValueError) as exc:
        raise TalkingFacesError(
            f"The default character's assets are missing or corrupt ({exc}); reinstall talking_faces "
            "or rebuild them with `python scripts/build_character.py`."
        ) from None
    vertices.setflags(write=False)
    faces.setflags(write=False)
    return vertices, faces, landmarks


def load_default_character() -> Identity:
    """The default character: `(V, 3)` float32 vertices in metres (y up, facing +z) and its faces."""
    vertices, faces, _ = _assets()
    return Identity(vertices.copy(), faces.copy(), name=DEFAULT_NAME)


def default_character_landmarks() -> Landmarks:
    """The rig landmarks of the default character, known by construction."""
    return _assets()[2]


def is_default_character(vertices: np.ndarray) -> bool:
    """True when `(V, 3)` vertices are the default character's neutral (to 10 µm, any file format)."""
    reference = _assets()[0]
    return vertices.shape == reference.shape and bool(np.abs(vertices - reference).max() < 1e-5)


def mesh_digest(vertices: np.ndarray, faces: np.ndarray | None) -> str:
    """A content hash of a mesh, for caching per identity."""
    digest = hashlib.sha1(np.ascontiguousarray(vertices, dtype=np.float32).tobytes())
    if faces is not None:
        digest.update(np.ascontiguousarray(faces, dtype=np.int64).tobytes())
    return digest.hexdigest()
