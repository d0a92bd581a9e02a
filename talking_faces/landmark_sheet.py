"""A check image of a head's detected landmarks: the head rendered front and side, landmarks drawn on it."""

from __future__ import annotations

import math

import numpy as np

from .head_landmarks import HeadAnalysis
from .identity import Identity
from .render import FIELD_OF_VIEW, FaceRenderer, camera_pose

# Colours (RGB) of the landmark groups: eyes and lids, mouth and lips, nose, brows, chin and jaw.
GROUP_COLOURS = {"eye": (60, 220, 255), "lip": (255, 70, 70), "mouth": (255, 70, 70), "nose": (255, 220, 40),
                 "ala": (255, 220, 40), "brow": (90, 255, 90), "chin": (255, 90, 255), "jaw": (255, 90, 255)}
# Profile view: the subject's left side turned towards the camera (a rotation of -90 degrees about y).
SIDE_VIEW = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


def _colour(name: str) -> tuple[int, int, int]:
    return next((c for key, c in GROUP_COLOURS.items() if key in name), (255, 255, 255))


def _project(points: np.ndarray, neutral: np.ndarray, size: int) -> np.ndarray:
    """Pixel positions `(n, 2)` of `(n, 3)` points through the renderer's camera framed on `neutral`."""
    pose, _ = camera_pose(neutral)
    rel = points - pose[:3, 3]
    scale = 1.0 / math.tan(FIELD_OF_VIEW / 2)
    u, v = rel[:, 0] / -rel[:, 2] * scale, rel[:, 1] / -rel[:, 2] * scale
    return np.stack([(u + 1) / 2 * size, (1 - v) / 2 * size], axis=1)


def landmark_sheet(identity: Identity, analysis: HeadAnalysis, size: int = 512, gl: str = "auto") -> np.ndarray:
    """`(size, 2 * size, 3)` uint8 RGB: the head from the front and from its left, landmarks drawn on both."""
    from PIL import Image, ImageDraw

    canonical = analysis.frame.to_canonical(identity.vertices)
    lm = analysis.landmarks
    panels = []
    for rotation in (np.eye(3), SIDE_VIEW):
        neutral = (canonical @ rotation.T).astype(np.float32)
        with FaceRenderer(neutral, identity.faces, size=size, gl=gl) as renderer:
            image = Image.fromarray(renderer.render(neutral))
        draw = ImageDraw.Draw(image)
        for name in ("upper_lip", "lower_lip", "upper_lid_l", "lower_lid_l", "upper_lid_r", "lower_lid_r"):
            line = _project(canonical[lm.indices[name]] @ rotation.T, neutral, size)
            draw.line([tuple(p) for p in line], fill=_colour(name), width=max(1, size // 256))
        radius = max(2, size // 128)
        for name, point in lm.points.items():
            x, y = _project((point @ rotation.T)[None], neutral, size)[0]
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=_colour(name), outline=(0, 0, 0))
        panels.append(np.asarray(image))
    return np.concatenate(panels, axis=1)
