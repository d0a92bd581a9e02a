"""The procedural AU rig: 32 FACS displacement fields from a face mesh's landmarks.

Every field is a direction, or a rotation about an axis, times a compact smooth falloff round
landmarks, gated where needed by which side of the mouth (or eye) opening a vertex is on, so
fields are exactly zero far from their region. Bilateral fields are made mirror-symmetric; AU30R
and AU62 are the mirror images of AU30L and AU61. Each field is then scaled so its largest
displacement matches the AUBlendSet sample identity (aublendnet.md §3.4), measured in that
identity's millimetres and rescaled by the distance between the eyes. See docs/rig.md.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from .aus import AU_INDEX, AU_NAMES, MIRROR_PAIRS, NUM_AUS
from .basis import AUBasis
from .character import is_default_character
from .head_frame import HeadFrame
from .head_landmarks import HeadAnalysis, analyse_head, read_landmarks_file
from .identity import Identity
from .landmarks import Landmarks, edge_graph, find_landmarks
from .rig_store import RIG_SOURCE, load_rig_offsets, rig_key, store_rig_offsets

# Eye distance of the AUBlendSet sample identity (m): the unit the magnitudes below are measured in.
REFERENCE_EYE_DISTANCE = 0.0613
# Largest displacement of each AU in the AUBlendSet sample (mm). AU45 and the eye rotations are
# geometric instead (the lids meet; the eyeballs turn by EYE_TURN) and are not rescaled.
TARGET_MAX_MM: dict[str, float] = {
    "AU1": 5.95, "AU2": 6.93, "AU4": 6.79, "AU5": 2.47, "AU6": 8.61, "AU7": 3.96, "AU9": 5.84,
    "AU10": 4.66, "AU11": 6.0, "AU12": 8.36, "AU14": 7.29, "AU15": 7.77, "AU16": 7.58, "AU17": 4.21,
    "AU18": 11.73, "AU20": 7.15, "AU22": 6.13, "AU23": 5.18, "AU24": 6.56, "AU25": 2.24, "AU26": 11.62,
    "AU27": 35.12, "AU28": 7.99, "AU29": 4.06, "AU30L": 7.29, "AU33": 8.58,
}
EYE_TURN = np.radians(12.5)  # eyeball rotation of AU61-AU64, as AU64 in the sample
LID_FOLLOW = 0.35  # fraction of a vertical eye turn that the lids follow
BLINK_LOWER_SHARE = 0.2  # share of the closing done by the lower lid in AU45

# Direction-times-falloff terms: AU -> [(landmark, offset, radii, direction, gate, gain)].
# Lengths in sample mm. Landmarks without a side suffix that have one (brow_inner, mouth_corner...)
# are used on both sides; x in offsets and directions means "outward" (away from the midline).
# Gates: "upper"/"lower" keep one side of the mouth opening, None the whole skin. Mouth terms reach
# 80 mm in depth so a lip moves as a whole (FLAME's inner lips lie 15 mm behind the outer ones).
Term = tuple[str, tuple[float, float, float], tuple[float, float, float], tuple[float, float, float], str | None, float]
TERMS: dict[str, list[Term]] = {
    "AU1": [("brow_inner", (0, 0, 0), (16, 14, 16), (-0.1, 1.0, 0.05), None, 1.0)],
    "AU2": [("brow_outer", (0, 0, 0), (18, 14, 18), (0.0, 0.98, -0.18), None, 1.0)],
    "AU4": [("brow_inner", (5, -2, 0), (18, 13, 16), (-0.35, -0.93, 0.2), None, 1.0)],
    "AU6": [("eye_centre", (22, -40, 0), (20, 20, 30), (0.05, 1.0, 0.1), None, 1.0)],  # + lower lids, below
    "AU9": [("glabella", (0, -12, 0), (16, 12, 14), (0.0, -1.0, 0.0), None, 1.0),
            ("ala", (0, 3, 0), (8, 8, 8), (0.0, 1.0, 0.0), None, 0.4)],
    "AU10": [("upper_lip_centre", (0, 4, 0), (24, 14, 80), (0.0, 0.98, 0.19), "upper", 1.0)],
    "AU11": [("ala", (6, -12, 0), (14, 13, 16), (0.4, 0.85, -0.35), None, 1.0)],
    "AU12": [("mouth_corner", (2, 0, 0), (24, 22, 80), (0.35, 0.68, -0.6), None, 1.0)],
    "AU14": [("mouth_corner", (4, 0, 0), (18, 16, 80), (-0.15, 0.6, -0.8), None, 1.0)],
    "AU15": [("mouth_corner", (1, -3, 0), (20, 20, 80), (0.05, -1.0, 0.0), None, 1.0)],
    "AU16": [("lower_lip_centre", (0, -3, 0), (22, 14, 80), (0.0, -0.85, -0.3), "lower", 1.0)],
    "AU17": [("lower_lip_centre", (0, -14, 0), (24, 20, 80), (0.0, 1.0, 0.25), "lower", 1.0)],
    "AU18": [("mouth_centre", (0, 0, 0), (34, 22, 80), (-0.35, -0.1, 0.93), None, 1.0)],
    "AU20": [("mouth_corner", (0, 0, 0), (24, 20, 80), (0.6, -0.45, -0.55), None, 1.0)],
    "AU22": [("mouth_centre", (0, 0, 0), (30, 18, 80), (-0.15, 0.0, 1.0), None, 1.0),
             ("upper_lip_centre", (0, 0, 0), (22, 10, 80), (0.0, 1.0, 0.0), "upper", 0.25),
             ("lower_lip_centre", (0, 0, 0), (22, 10, 80), (0.0, -1.0, 0.0), "lower", 0.25)],
    "AU23": [("mouth_corner", (-2, 0, 0), (22, 14, 80), (-0.85, 0.1, 0.3), None, 1.0),
             ("upper_lip_centre", (0, 0, 0), (22, 10, 80), (0.0, -0.4, 0.0), "upper", 0.3),
             ("lower_lip_centre", (0, 0, 0), (22, 10, 80), (0.0, 0.4, 0.0), "lower", 0.3)],
    # Pressing: both lips move up and back together, closing only a little (they must not cross).
    "AU24": [("mouth_centre", (0, 0, 0), (30, 16, 80), (0.0, 0.5, -0.85), None, 1.0),
             ("upper_lip_centre", (0, 0, 0), (24, 10, 80), (0.0, -0.12, 0.0), "upper", 1.0),
             ("lower_lip_centre", (0, 0, 0), (24, 10, 80), (0.0, 0.2, 0.0), "lower", 1.0)],
    "AU25": [("upper_lip_centre", (0, 0, 0), (26, 12, 80), (0.0, 1.0, 0.0), "upper", 0.3),
             ("lower_lip_centre", (0, 0, 0), (26, 14, 80), (0.0, -0.93, -0.33), "lower", 1.0)],
    "AU28": [("mouth_centre", (0, 0, 0), (28, 18, 80), (0.0, 0.0, -1.0), None, 1.0)],
    "AU33": [("mouth_corner", (16, 10, 0), (24, 24, 80), (0.5, 0.0, 0.86), None, 1.0)],
}


def falloff(sq: np.ndarray) -> np.ndarray:
    """Compact smooth weight `(1 - d²)³` of squared normalised distances `d²`; exactly 0 for d ≥ 1."""
    return np.clip(1.0 - sq, 0.0, None) ** 3


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    u = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def rotation_offsets(points: np.ndarray, pivot: np.ndarray, axis: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Displacements `(V, 3)` that rotate `points (V, 3)` by per-vertex `angles (V,)` (rad) about an axis.

    Rodrigues: r' = r cos a + (k x r) sin a + k (k . r)(1 - cos a), with r = p - pivot and k the unit axis.
    """
    k = axis / np.linalg.norm(axis)
    r = points - pivot
    cos, sin = np.cos(angles)[:, None], np.sin(angles)[:, None]
    rotated = r * cos + np.cross(k, r) * sin + k * (r @ k)[:, None] * (1.0 - cos)
    return rotated - r


def mirror_map(points: np.ndarray, plane_x: float, features: np.ndarray | None = None) -> np.ndarray:
    """For each vertex `(V,)`, the vertex nearest to its reflection in the plane x = plane_x.

    `features (V, k)`, mirror-invariant and appended to the positions, keep the match within a part
    (eyeball to eyeball, upper lip to upper lip) where parts touch.
    """
    reflected = points * np.array([-1.0, 1.0, 1.0]) + np.array([2.0 * plane_x, 0.0, 0.0])
    if features is not None:
        points, reflected = np.hstack([points, features]), np.hstack([reflected, features])
    return cKDTree(points).query(reflected)[1]


def mirror_field(field: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """The mirror image `(..., V, 3)` of displacement fields `(..., V, 3)`: gather and flip x."""
    return field[..., mirror, :] * np.array([-1.0, 1.0, 1.0])


@dataclass
class _Face:
    """What the field builders share: the mesh, its landmarks and derived weights, in mesh units."""

    points: np.ndarray  # (V, 3) float64
    landmarks: Landmarks
    mm: float  # one sample millimetre in mesh units
    skin: np.ndarray  # (V,) 1 on skin, 0 on the eyeballs
    outward: np.ndarray  # (V,) -1..1, the sign of x - midline, ramping linearly across it
    upper: np.ndarray  # (V,) 1 on the upper-lip side of the mouth opening, 0 on the lower side
    jaw: np.ndarray  # (V,) how rigidly each vertex follows the jaw
    upper_lid: dict[str, np.ndarray]  # side -> (V,) weight of the upper eyelid
    lower_lid: dict[str, np.ndarray]  # side -> (V,) weight of the lower eyelid
    mirror: np.ndarray  # (V,) mirror partner of each vertex

    def point(self, name: str) -> np.ndarray:
        return _point(self.landmarks, name)


# Points the fields use that lie midway between two landmarks.
MIDPOINTS = {"mouth_centre": ("upper_lip_centre", "lower_lip_centre"), "glabella": ("brow_inner_l", "brow_inner_r")}


def _point(landmarks: Landmarks, name: str) -> np.ndarray:
    """A landmark `(3,)`, or one of the `MIDPOINTS`."""
    if name in MIDPOINTS:
        first, second = MIDPOINTS[name]
        return 0.5 * (landmarks.points[first] + landmarks.points[second])
    return landmarks.points[name]


def _sided_distances(graph, first: np.ndarray, second: np.ndarray, limit: float) -> tuple[np.ndarray, np.ndarray]:
    """Surface (graph) distances `(V,)` to two vertex sets, cut at `limit` (inf beyond)."""
    return tuple(dijkstra(graph, directed=False, indices=s, min_only=True, limit=limit) for s in (first, second))


def _side_weight(d_first: np.ndarray, d_second: np.ndarray, band: float) -> np.ndarray:
    """1 where a vertex is nearer (over the surface) to the first set, 0 nearer the second, 0.5 if unreached.

    The transition is `band` wide at the sets and widens with the distance from them, so the
    split is sharp across the opening and gentle on the cheeks.
    """
    near = np.minimum(d_first, d_second)
    reached = np.isfinite(near)
    diff = np.where(reached, np.minimum(d_second, 1e30) - np.minimum(d_first, 1e30), 0.0)
    width = band + 0.5 * np.where(reached, near, 0.0)
    return smoothstep(-1.0, 1.0, diff / width)


def _prepare(points: np.ndarray, faces: np.ndarray, landmarks: Landmarks, parts: "_Parts | None" = None) -> _Face:
    """The shared weights of a mesh `(V, 3)`: mouth and lid sides, jaw, mirror map."""
    mm = landmarks.eye_distance / REFERENCE_EYE_DISTANCE * 1e-3
    lm, n = landmarks.points, len(points)
    skin = np.ones(n)
    skin[np.concatenate([landmarks.indices["eyeball_l"], landmarks.indices["eyeball_r"]])] = 0.0
    lower_teeth = np.zeros(n)  # lower teeth, gums and tongue turn rigidly with the jaw
    if parts is not None:
        skin[parts.lower_jaw] = skin[parts.static] = skin[parts.attached] = 0.0
        lower_teeth[parts.lower_jaw] = 1.0
    graph = edge_graph(points, faces)

    upper_lip, lower_lip = landmarks.indices["upper_lip"][1:-1], landmarks.indices["lower_lip"][1:-1]
    d_up, d_low = _sided_distances(graph, upper_lip, lower_lip, 90 * mm)
    upper = _side_weight(d_up, d_low, 10 * mm)  # lips part over ~10 mm from the corners: an oval opening

    # Jaw: below the plane through the hinge axis and the mouth corners, in front of the hinges and
    # above the neck; near the mouth the opening itself decides (lower lip side follows the jaw).
    hinge_l, hinge_r = lm["jaw_hinge_l"], lm["jaw_hinge_r"]
    hinge = 0.5 * (hinge_l + hinge_r)
    corners = 0.5 * (lm["mouth_corner_l"] + lm["mouth_corner_r"])
    normal = np.cross(hinge_l - hinge_r, corners - hinge)
    normal *= np.sign(normal[1]) / np.linalg.norm(normal)
    below = 1.0 - smoothstep(-14 * mm, 10 * mm, (points - hinge) @ normal)
    near_mouth = 1.0 - smoothstep(40 * mm, 60 * mm, np.linalg.norm(points - _point(landmarks, "mouth_centre"), axis=1))
    jaw = near_mouth * (1.0 - upper) + (1.0 - near_mouth) * below
    jaw *= smoothstep(hinge[2] - 5 * mm, hinge[2] + 20 * mm, points[:, 2])
    jaw *= smoothstep(lm["chin"][1] - 45 * mm, lm["chin"][1] - 12 * mm, points[:, 1])

    upper_lid, lower_lid = {}, {}
    for side in ("l", "r"):
        up_rim, low_rim = landmarks.indices[f"upper_lid_{side}"][1:-1], landmarks.indices[f"lower_lid_{side}"][1:-1]
        d_up, d_low = _sided_distances(graph, up_rim, low_rim, 40 * mm)
        on_upper = _side_weight(d_up, d_low, 2 * mm)
        upper_lid[side] = skin * on_upper * falloff(np.nan_to_num(d_up / (16 * mm), posinf=1.0) ** 2)
        lower_lid[side] = skin * (1 - on_upper) * falloff(np.nan_to_num(d_low / (9 * mm), posinf=1.0) ** 2)

    # Linear through the midline, so pulls towards it (pucker, tightener) never fold the lips over.
    outward = np.clip((points[:, 0] - landmarks.symmetry_x) / (20 * mm), -1.0, 1.0)
    # Mirror partners are matched within parts (skin/eyeball, upper/lower lip), which touch on FLAME.
    parts = np.stack([upper * 10 * mm, (1.0 - skin) * 100 * landmarks.eye_distance], axis=1)
    mirror = mirror_map(points, landmarks.symmetry_x, parts)
    return _Face(points, landmarks, mm, skin, outward, upper, jaw * skin + lower_teeth, upper_lid, lower_lid, mirror)


def _term_field(face: _Face, term: Term) -> np.ndarray:
    """One direction-times-falloff term `(V, 3)`, on both sides for a sided landmark."""
    name, offset, radii, direction, gate, gain = term
    sided = f"{name}_l" in face.landmarks.points
    field = np.zeros_like(face.points)
    for side, sign in (("l", 1.0), ("r", -1.0)) if sided else ((None, 0.0),):
        centre = face.point(f"{name}_{side}" if sided else name) + np.array([sign * offset[0], offset[1], offset[2]]) * face.mm
        weight = falloff(np.sum(((face.points - centre) / (np.asarray(radii) * face.mm)) ** 2, axis=1))
        vec = np.stack([direction[0] * face.outward, np.full(len(weight), direction[1]), np.full(len(weight), direction[2])], -1)
        field += weight[:, None] * vec
    gate_weight = {"upper": face.upper, "lower": 1.0 - face.upper, None: 1.0}[gate]
    return field * (gain * face.skin * gate_weight)[:, None]


def _lid_rotation(face: _Face, side: str, weights: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Lid displacement `(V, 3)`: rotation about the eyeball's horizontal axis by `weights * angles`."""
    centre = face.point(f"eye_centre_{side}")
    return rotation_offsets(face.points, centre, np.array([1.0, 0.0, 0.0]), weights * angles)


def _elevation(points: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Angle (rad) of points about the horizontal axis through `centre`, positive upwards."""
    return np.arctan2(points[:, 1] - centre[1], points[:, 2] - centre[2])


def _blink(face: _Face) -> np.ndarray:
    """AU45: each upper-rim point rotates down onto the lower rim (which rises a little) over the eyeball."""
    field = np.zeros_like(face.points)
    for side in ("l", "r"):
        centre = face.point(f"eye_centre_{side}")
        up, low = (face.landmarks.indices[f"{k}_lid_{side}"] for k in ("upper", "lower"))
        x_up, x_low = face.points[up, 0], face.points[low, 0]
        order_up, order_low = np.argsort(x_up), np.argsort(x_low)
        x = face.points[:, 0]
        gap = (np.interp(x, x_up[order_up], _elevation(face.points[up], centre)[order_up])
               - np.interp(x, x_low[order_low], _elevation(face.points[low], centre)[order_low]))
        gap = np.clip(gap, 0.0, None)
        field += _lid_rotation(face, side, face.upper_lid[side], (1 - BLINK_LOWER_SHARE) * gap)
        field += _lid_rotation(face, side, face.lower_lid[side], -BLINK_LOWER_SHARE * gap)
    return field


def _eye_turn(face: _Face, axis: np.ndarray, angle: float, lids: bool) -> np.ndarray:
    """Both eyeballs rotate rigidly about their centres; for vertical turns the lids follow a little."""
    field = np.zeros_like(face.points)
    for side in ("l", "r"):
        ball = face.landmarks.indices[f"eyeball_{side}"]
        centre = face.point(f"eye_centre_{side}")
        field[ball] = rotation_offsets(face.points[ball], centre, axis, np.full(len(ball), angle))
        if lids:
            field += _lid_rotation(face, side, face.upper_lid[side] + face.lower_lid[side], LID_FOLLOW * angle)
    return field


def _jaw_rotation(face: _Face, travel_mm: float) -> np.ndarray:
    """Jaw opening: rotation about the hinge axis, times the jaw weight, whose largest travel is `travel_mm`."""
    lm = face.landmarks.points
    hinge, axis = 0.5 * (lm["jaw_hinge_l"] + lm["jaw_hinge_r"]), lm["jaw_hinge_l"] - lm["jaw_hinge_r"]
    radius = np.linalg.norm(np.cross(face.points - hinge, axis / np.linalg.norm(axis)), axis=1)
    angle = travel_mm * face.mm / np.max(face.jaw * radius)
    return rotation_offsets(face.points, hinge, axis, face.jaw * angle)


def _raw_fields(face: _Face) -> dict[str, np.ndarray]:
    """Every AU's field `(V, 3)` before symmetrisation and calibration (AU30R and AU62 excepted)."""
    fields = {au: sum(_term_field(face, term) for term in terms) for au, terms in TERMS.items()}
    x_axis, y_axis = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    up = np.full(len(face.points), -1.0)  # negative angles lift the lids over the eyeball
    fields["AU5"] = sum(_lid_rotation(face, s, face.upper_lid[s], up) for s in ("l", "r"))
    fields["AU7"] = sum(_lid_rotation(face, s, face.lower_lid[s], up) for s in ("l", "r"))
    fields["AU6"] = fields["AU6"] + 0.3 * fields["AU7"] / np.linalg.norm(fields["AU7"], axis=1).max()
    fields["AU26"] = _jaw_rotation(face, TARGET_MAX_MM["AU26"])
    fields["AU27"] = _jaw_rotation(face, TARGET_MAX_MM["AU27"])
    fields["AU29"] = face.jaw[:, None] * np.array([0.0, -0.35, 0.94])
    fields["AU30L"] = face.jaw[:, None] * np.array([1.0, 0.0, 0.0])
    fields["AU45"] = _blink(face)
    fields["AU61"] = _eye_turn(face, y_axis, EYE_TURN, lids=False)
    fields["AU63"] = _eye_turn(face, x_axis, -EYE_TURN, lids=True)
    fields["AU64"] = _eye_turn(face, x_axis, EYE_TURN, lids=True)
    return fields


@dataclass(frozen=True)
class _Parts:
    """Vertices of the parts that are neither skin nor eyeballs, by how they move (each `(n,)` int64)."""

    lower_jaw: np.ndarray  # lower teeth and gums, tongue: rigid with the jaw
    static: np.ndarray  # upper teeth and gums: fixed to the skull
    attached: np.ndarray  # lashes, brows and other shells on the skin: follow the nearest skin vertex


def classify_parts(points: np.ndarray, faces: np.ndarray, landmarks: Landmarks, others: np.ndarray) -> _Parts:
    """Sort the vertices `others` of a mesh `(V, 3)` into jaw-borne, static and skin-borne parts.

    A part (connected component) whose centre lies within 0.9 eye distances of the mouth and
    behind the lips is in the mouth: its vertices below the lip line ride on the jaw (all of it
    when 80 % lie below, none when under 20 %); any other part rides on the skin.
    """
    from .landmarks import connected_components

    lm = landmarks.points
    mouth = _point(landmarks, "mouth_centre")
    distance = landmarks.eye_distance
    lower, static, attached = [], [], []
    is_other = np.zeros(len(points), bool)
    is_other[others] = True
    for comp in connected_components(len(points), faces):
        if not is_other[comp].all():
            continue
        centre = points[comp].mean(axis=0)
        if np.linalg.norm(centre - mouth) < 0.9 * distance and centre[2] < max(lm["upper_lip_centre"][2], lm["lower_lip_centre"][2]):
            below = points[comp, 1] < mouth[1]
            share = below.mean()
            below = np.full(len(comp), share > 0.8) if share > 0.8 or share < 0.2 else below
            lower.append(comp[below])
            static.append(comp[~below])
        else:
            attached.append(comp)
    loose = np.setdiff1d(others, np.concatenate([*lower, *static, *attached]) if (lower or static or attached) else [])
    attached.append(loose)  # vertices in no face
    cat = lambda arrays: np.concatenate(arrays).astype(np.int64) if arrays else np.zeros(0, np.int64)  # noqa: E731
    return _Parts(cat(lower), cat(static), cat(attached))


def rig_offsets(vertices: np.ndarray, faces: np.ndarray, landmarks: Landmarks, others: np.ndarray | None = None) -> np.ndarray:
    """The 32 AU displacement fields `(32, V, 3)` float32 of a mesh with known landmarks.

    `others (n,)`: vertices of parts that are neither skin nor eyeballs (teeth, tongue, lashes),
    moved as `classify_parts` sorts them: with the jaw, not at all, or with the nearest skin.
    """
    points = np.asarray(vertices, dtype=np.float64)
    parts = classify_parts(points, faces, landmarks, others) if others is not None and len(others) else None
    face = _prepare(points, faces, landmarks, parts)
    fields = _raw_fields(face)
    mirror = face.mirror
    eyeballs = face.skin == 0.0
    offsets = np.zeros((NUM_AUS, len(points), 3))
    sided = {right: left for left, right in MIRROR_PAIRS}
    for k, au in enumerate(AU_NAMES):
        if au in sided:
            continue
        field = fields[au]
        if au not in sided.values():  # bilateral: average with its mirror image
            field = np.where(eyeballs[:, None], field, 0.5 * (field + mirror_field(field, mirror)))  # eyeballs stay rigid
        if au in TARGET_MAX_MM and au not in ("AU26", "AU27"):
            peak = np.linalg.norm(field, axis=1).max()
            field = field * (TARGET_MAX_MM[au] * face.mm / peak if peak > 0 else 0.0)
        offsets[k] = field
    for left, right in MIRROR_PAIRS:
        offsets[AU_INDEX[right]] = mirror_field(offsets[AU_INDEX[left]], mirror)
    if parts is not None and len(parts.attached):
        skin = np.flatnonzero(face.skin > 0)
        nearest = skin[cKDTree(points[skin]).query(points[parts.attached])[1]]
        offsets[:, parts.attached] = offsets[:, nearest]
    return offsets.astype(np.float32)


def symmetry_map(vertices: np.ndarray, faces: np.ndarray, landmarks: Landmarks) -> np.ndarray:
    """The mirror partner `(V,)` of each vertex that the rig symmetrises with."""
    return _prepare(np.asarray(vertices, dtype=np.float64), faces, landmarks).mirror


_CACHE: OrderedDict[str, AUBasis] = OrderedDict()
_CACHE_SIZE = 4


def _is_upright_flame(identity: Identity) -> bool:
    """FLAME topology in FLAME's own frame (metres, y up, facing +z), where the FLAME detector applies.

    Judged from FLAME's topology rather than the head's symmetry, which scans and shape edits break:
    the two eyeballs (the second and third largest components) lie apart along x, above and in front
    of the skin's centre, on a head 0.08 to 0.5 m wide.
    """
    if not identity.is_flame or identity.faces is None:
        return False
    from .landmarks import connected_components

    components = connected_components(identity.num_vertices, identity.faces)
    if len(components) < 3:
        return True  # let the FLAME detector say what it cannot find
    vertices = identity.vertices.astype(np.float64)
    skin = vertices[components[0]]
    eye_a, eye_b = (vertices[c].mean(axis=0) for c in components[1:3])
    across, above = eye_a - eye_b, 0.5 * (eye_a + eye_b) - skin.mean(axis=0)
    width = float(np.ptp(skin[:, 0]))
    return abs(across[0]) > 0.9 * np.linalg.norm(across) and above[1] > 0 and above[2] > 0 and 0.08 <= width <= 0.5


def analyse_identity(identity: Identity, landmarks_file: str | Path | None = None) -> HeadAnalysis:
    """Frame, landmarks and extra parts of an identity: bundled for the default character, detected
    for FLAME (metres, y up), and detected in a normalised frame for any other head (`head_landmarks`).
    `landmarks_file` gives points by hand (`--landmarks FILE.json`)."""
    if landmarks_file is None and (is_default_character(identity.vertices) or _is_upright_flame(identity)):
        landmarks = find_landmarks(identity.vertices, identity.faces)
        return HeadAnalysis(HeadFrame.identity(), landmarks, np.zeros(0, np.int64))
    given = read_landmarks_file(landmarks_file, identity.vertices) if landmarks_file is not None else None
    return analyse_head(identity, given)


def build_rig_basis(identity: Identity, landmarks_file: str | Path | None = None, analysis: HeadAnalysis | None = None) -> AUBasis:
    """The procedural AU basis `(32, V, 3)` of any head, in the head's own units, axes and vertex order.

    The fields are built in the canonical frame (metres, y up, facing +z) from the landmarks of
    `analyse_identity` (or `analysis`, when the caller has it already) and rotated and scaled back.
    Heads whose landmarks cannot be found raise a TalkingFacesError that says which ones and how to
    give them. One-line notes (welded lips) are issued as `warnings.warn`. Results are cached per
    mesh content, landmarks file and rig code, in memory and, for heads without notes, on disk
    (`talking_faces.cache`): the default character's basis loads in milliseconds instead of 0.2-0.3 s.
    """
    key = rig_key(identity, landmarks_file)
    if analysis is not None or key not in _CACHE:
        offsets = None if analysis is not None else load_rig_offsets(key, identity.num_vertices)
        if offsets is None:
            analysis = analysis or analyse_identity(identity, landmarks_file)
            for note in analysis.warnings:
                warnings.warn(note, stacklevel=2)
            points = analysis.frame.to_canonical(identity.vertices)
            offsets = rig_offsets(points, identity.faces, analysis.landmarks, analysis.others)
            if not analysis.frame.is_canonical:
                offsets = analysis.frame.to_user(offsets).astype(np.float32)
            if not analysis.warnings:  # only heads without notes are kept, so a hit never hides one
                store_rig_offsets(key, offsets)
        _CACHE[key] = AUBasis(offsets=offsets, template=identity.vertices.astype(np.float32), source=RIG_SOURCE)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    cached = _CACHE[key]
    _CACHE.move_to_end(key)
    return AUBasis(offsets=cached.offsets.copy(), template=cached.template.copy(), source=RIG_SOURCE)
