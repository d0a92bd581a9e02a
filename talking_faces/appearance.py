"""Per-vertex base colours: skin, eyes with an iris that follows gaze, and slightly redder lips."""

from __future__ import annotations

import numpy as np

from .errors import TalkingFacesError
from .landmarks import Landmarks, find_landmarks

# Linear RGB albedos.
SKIN = np.array([0.72, 0.42, 0.30], dtype=np.float32)
SCLERA = np.array([0.80, 0.78, 0.74], dtype=np.float32)
IRIS = np.array([0.10, 0.06, 0.03], dtype=np.float32)
PUPIL = np.array([0.01, 0.01, 0.01], dtype=np.float32)
LIPS = np.array([0.62, 0.26, 0.22], dtype=np.float32)
# Half-angles, seen from the eyeball's centre, of the iris and pupil discs (a human iris is about 12 mm
# across on a 24 mm eyeball: about 30 degrees).
IRIS_HALF_ANGLE = np.deg2rad(32.0)
PUPIL_HALF_ANGLE = np.deg2rad(13.0)


def eye_albedo(eyeball: np.ndarray) -> np.ndarray:
    """Colours `(n, 3)` of one eyeball's `(n, 3)` neutral vertices, looking along +z (the face's front).

    The colours stay attached to the vertices, so when AU61..64 rotate the eyeball the iris turns too.
    """
    centre = eyeball.mean(axis=0)
    directions = eyeball - centre
    cosine = directions[:, 2] / np.maximum(np.linalg.norm(directions, axis=1), 1e-12)
    colours = np.where((cosine >= np.cos(IRIS_HALF_ANGLE))[:, None], IRIS, SCLERA)
    return np.where((cosine >= np.cos(PUPIL_HALF_ANGLE))[:, None], PUPIL, colours)


def lip_tint(vertices: np.ndarray, lip_loop: np.ndarray, eye_distance: float) -> np.ndarray:
    """Weights `(V,)` in [0, 1] of lip colour: 1 at the inner-lip loop, fading to 0 a lip's height away."""
    reach = 0.22 * eye_distance  # about 14 mm on a FLAME-sized head
    loop = vertices[lip_loop]
    # The loop is short (tens of vertices), so a dense (V, n) distance matrix is cheap.
    nearest = np.sqrt(((vertices[:, None, :] - loop[None]) ** 2).sum(axis=2)).min(axis=1)
    falloff = np.clip(1.0 - nearest / reach, 0.0, 1.0)
    return falloff * falloff * (3.0 - 2.0 * falloff)


def vertex_albedo(vertices: np.ndarray, faces: np.ndarray | None, landmarks: Landmarks | None = None) -> np.ndarray:
    """Base colours `(V, 3)` float32 in linear RGB for a neutral mesh `(V, 3)`.

    Meshes whose landmarks are known (given, or found: the default character, any FLAME head) get
    eyes and lips; any other mesh is plain skin.
    """
    albedo = np.repeat(SKIN[None], vertices.shape[0], axis=0)
    if landmarks is None:
        try:
            landmarks = find_landmarks(vertices, faces)
        except TalkingFacesError:
            return albedo
    weight = lip_tint(vertices, landmarks.indices["inner_lip_loop"], landmarks.eye_distance)
    albedo += weight[:, None] * (LIPS - SKIN)
    for side in ("l", "r"):
        eyeball = landmarks.indices[f"eyeball_{side}"]
        albedo[eyeball] = eye_albedo(vertices[eyeball])
    return albedo.astype(np.float32)
