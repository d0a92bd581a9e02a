"""Units and axes of a head mesh: detected from its size and shape, and undone for every output.

The rig and the landmark detector work in the canonical frame of FLAME and the bundled character:
metres, y up, facing +z, the subject's left at +x. A user's head may be in centimetres or
millimetres, Z-up and facing -y (as Blender exports), or any other axis-aligned orientation.
`HeadFrame` maps between the two: `canonical = scale * (rotation @ user)`. Offsets built in the
canonical frame are mapped back with `to_user_offsets`, so outputs keep the user's units and axes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from .errors import TalkingFacesError

# Length units a head may be modelled in (metres per unit), and the typical head width they are judged by.
UNITS: dict[str, float] = {"m": 1.0, "dm": 0.1, "cm": 0.01, "mm": 0.001}
HEAD_WIDTH_M = 0.16
AXIS_NAMES = ("+x", "+y", "+z", "-x", "-y", "-z")


@dataclass(frozen=True)
class HeadFrame:
    """How a mesh's coordinates relate to the canonical frame.

    Attributes:
        rotation: `(3, 3)` proper rotation; row 0 is the user axis pointing to the subject's left,
            row 1 the user's up axis, row 2 the axis the face looks along (all signed unit axes).
        scale: metres per user unit (1, 0.01 or 0.001 for m, cm, mm).
        unit: the unit's name.
    """

    rotation: np.ndarray
    scale: float
    unit: str = "m"

    @classmethod
    def identity(cls) -> "HeadFrame":
        return cls(np.eye(3), 1.0, "m")

    @property
    def is_canonical(self) -> bool:
        return self.scale == 1.0 and bool(np.array_equal(self.rotation, np.eye(3)))

    def to_canonical(self, points: np.ndarray) -> np.ndarray:
        """User-frame points or offsets `(..., 3)` -> canonical metres `(..., 3)` float64."""
        return self.scale * (np.asarray(points, dtype=np.float64) @ self.rotation.T)

    def to_user(self, points: np.ndarray) -> np.ndarray:
        """Canonical points or offsets `(..., 3)` -> the user's units and axes `(..., 3)` float64."""
        return (np.asarray(points, dtype=np.float64) @ self.rotation) / self.scale

    def describe(self) -> str:
        def axis(row: np.ndarray) -> str:
            k = int(np.argmax(np.abs(row)))
            return ("+" if row[k] > 0 else "-") + "xyz"[k]

        return f"{self.unit}, {axis(self.rotation[1])} up, facing {axis(self.rotation[2])}"


def _unit_axis(k: int, sign: float) -> np.ndarray:
    axis = np.zeros(3)
    axis[k] = sign
    return axis


def mirror_error(points: np.ndarray, axis: int) -> tuple[float, float]:
    """How far `(V, 3)` points are from mirror-symmetric about a plane normal to `axis`.

    The plane is placed by the midpoint of the extent; returns the median distance from each
    reflected point to the nearest point, relative to the extent, and the plane's position.
    """
    low, high = points[:, axis].min(), points[:, axis].max()
    plane = 0.5 * (low + high)
    step = max(1, len(points) // 4000)  # a few thousand reflected points judge the symmetry as well as all
    reflected = points[::step].copy()
    reflected[:, axis] = 2 * plane - reflected[:, axis]
    distance = cKDTree(points).query(reflected)[0]
    return float(np.median(distance) / max(np.ptp(points), 1e-12)), float(plane)


def _nose_protrusion(points: np.ndarray, lateral: int, plane: float, front: np.ndarray, up_axis: int, width: float) -> float:
    """How sharply the front-most midline point stands out sideways (metres): large for a nose tip.

    The nose is narrow: 2 cm to its side the skin lies about 1.5 cm further back. The crown, the
    back of the head or the neck drop only a few millimetres over the same distance.
    """
    side = np.abs(points[:, lateral] - plane)
    midline = np.flatnonzero(side < 0.04 * width)
    if len(midline) == 0:
        return 0.0
    depth = points @ front
    tip = midline[np.argmax(depth[midline])]
    level = np.abs(points[:, up_axis] - points[tip, up_axis]) < 0.012
    flank = level & (side > 0.12 * width) & (side < 0.2 * width)
    if not flank.any():
        return 0.0
    return float(depth[tip] - depth[flank].max())  # the front-most surface beside the tip


def _unit_for_width(width: float) -> str:
    """The unit (a key of UNITS) in which a head `width` wide is closest to a human head's width."""
    return min(UNITS, key=lambda u: abs(np.log(max(width, 1e-12) * UNITS[u] / HEAD_WIDTH_M)))


def units_only_frame(vertices: np.ndarray) -> HeadFrame:
    """The frame of a head taken to be Y-up and facing +Z already, with its unit judged by its width."""
    width = float(np.ptp(np.asarray(vertices, dtype=np.float64)[:, 0]))
    unit = _unit_for_width(width)
    return HeadFrame(np.eye(3), UNITS[unit], unit)


def detect_head_frame(vertices: np.ndarray, skin: np.ndarray | None = None) -> HeadFrame:
    """Units and axes of a head from its skin vertices `(V, 3)` (indices `skin`, or all).

    The subject's left-right axis is the coordinate axis of best mirror symmetry; the unit makes
    the width along it closest to 0.16 m; the face looks along the axis where the front-most
    midline point stands out most sharply (the nose tip); up is the remaining axis, signed so that
    the skull (deeper front to back than the chin and neck) is above the nose.
    """
    points = np.asarray(vertices, dtype=np.float64)
    points = points[skin] if skin is not None else points
    if len(points) < 100:
        raise TalkingFacesError(f"The head has only {len(points)} skin vertices, too few to find its axes; pass a denser mesh.")
    errors = [mirror_error(points, axis) for axis in range(3)]
    lateral = int(np.argmin([e for e, _ in errors]))
    plane = errors[lateral][1]
    width_units = float(np.ptp(points[:, lateral]))
    unit = _unit_for_width(width_units)
    scale = UNITS[unit]
    metres, plane, width = points * scale, plane * scale, width_units * scale
    others = [k for k in range(3) if k != lateral]
    best = None
    for front_axis in others:
        up_axis = others[0] if front_axis == others[1] else others[1]
        for sign in (1.0, -1.0):
            front = _unit_axis(front_axis, sign)
            score = _nose_protrusion(metres, lateral, plane, front, up_axis, width)
            if best is None or score > best[0]:
                best = (score, front_axis, sign, up_axis)
    score, front_axis, sign, up_axis = best
    if score < 0.008:
        raise TalkingFacesError(
            "Cannot find which way this head faces (no nose tip stands out on its mirror plane); "
            "export it Y-up facing +Z and give its landmarks with --landmarks FILE.json, or pass an AU basis with --au-basis."
        )
    front = _unit_axis(front_axis, sign)
    tip = _front_midline_point(metres, lateral, plane, front, width)
    up_coord = metres[:, up_axis] - tip[up_axis]
    depth = metres @ front

    def depth_at(level: float) -> float:
        near = np.abs(up_coord - level) < 0.01
        return float(np.ptp(depth[near])) if near.sum() > 2 else 0.0

    up_sign = 1.0 if depth_at(0.06) >= depth_at(-0.06) else -1.0
    up = _unit_axis(up_axis, up_sign)
    left = np.cross(up, front)
    return HeadFrame(np.stack([left, up, front]), scale, unit)


def detect_mesh_frame(vertices: np.ndarray, faces: np.ndarray) -> HeadFrame | None:
    """`detect_head_frame` on the largest connected part of a mesh (the head, without separate eyes or
    teeth); None when its axes cannot be told."""
    from .landmarks import connected_components

    try:
        return detect_head_frame(vertices, connected_components(vertices.shape[0], faces)[0])
    except TalkingFacesError:
        return None


def _front_midline_point(points: np.ndarray, lateral: int, plane: float, front: np.ndarray, width: float) -> np.ndarray:
    midline = np.flatnonzero(np.abs(points[:, lateral] - plane) < 0.04 * width)
    return points[midline[np.argmax(points[midline] @ front)]]
