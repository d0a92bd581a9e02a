"""Facial landmarks for the AU rig: the `Landmarks` type, FLAME detection, and the default character's.

Left and right are the subject's: left is +x (as in FLAME), y is up and the face looks along +z.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from .errors import TalkingFacesError

SIDES = ("l", "r")
POINT_NAMES: tuple[str, ...] = (
    "mouth_corner_l", "mouth_corner_r", "upper_lip_centre", "lower_lip_centre",
    "eye_centre_l", "eye_centre_r", "eye_inner_l", "eye_inner_r", "eye_outer_l", "eye_outer_r",
    "brow_inner_l", "brow_inner_r", "brow_mid_l", "brow_mid_r", "brow_outer_l", "brow_outer_r",
    "nose_tip", "ala_l", "ala_r", "chin", "jaw_hinge_l", "jaw_hinge_r",
)
# Vertex sets. The lip sets are the inner-lip boundary loop split at the mouth corners (corners in
# both); the lid sets are the eye-opening rims, inner to outer corner (corners in both).
INDEX_NAMES: tuple[str, ...] = (
    "inner_lip_loop", "upper_lip", "lower_lip",
    "upper_lid_l", "upper_lid_r", "lower_lid_l", "lower_lid_r", "eyeball_l", "eyeball_r",
)


@dataclass(frozen=True)
class Landmarks:
    """Named points and vertex sets of one face mesh, in the mesh's units.

    Attributes:
        points: name -> `(3,)` float64 position, for every name in `POINT_NAMES`.
        indices: name -> `(n,)` int64 vertex indices, for every name in `INDEX_NAMES`.
    """

    points: dict[str, np.ndarray]
    indices: dict[str, np.ndarray]

    def __post_init__(self) -> None:
        missing = [n for n in POINT_NAMES if n not in self.points] + [n for n in INDEX_NAMES if n not in self.indices]
        if missing:
            raise TalkingFacesError(f"Landmarks lack {', '.join(missing)}; regenerate them with scripts/build_character.py.")

    @property
    def symmetry_x(self) -> float:
        """x of the face's mirror plane: midway between the eyeball centres."""
        return float(0.5 * (self.points["eye_centre_l"][0] + self.points["eye_centre_r"][0]))

    @property
    def eye_distance(self) -> float:
        """Distance between the eyeball centres, the rig's unit of face size."""
        return float(np.linalg.norm(self.points["eye_centre_l"] - self.points["eye_centre_r"]))

    def to_json(self) -> str:
        data = {
            "points": {k: [round(float(c), 7) for c in self.points[k]] for k in POINT_NAMES},
            "indices": {k: [int(i) for i in self.indices[k]] for k in INDEX_NAMES},
        }
        return json.dumps(data, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "Landmarks":
        data = json.loads(text)
        return cls(
            points={k: np.asarray(v, dtype=np.float64) for k, v in data["points"].items()},
            indices={k: np.asarray(v, dtype=np.int64) for k, v in data["indices"].items()},
        )


def mesh_adjacency(num_vertices: int, faces: np.ndarray):
    """Symmetric vertex adjacency `(V, V)`: a scipy CSR matrix with 1 for every mesh edge."""
    from scipy import sparse

    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    adj = sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(num_vertices, num_vertices)).tocsr()
    return ((adj + adj.T) > 0).astype(np.float64)


def edge_graph(points: np.ndarray, faces: np.ndarray):
    """`(V, V)` scipy CSR matrix of the mesh's edge lengths, for surface distances (`scipy.sparse.csgraph`)."""
    from scipy import sparse

    adjacency = mesh_adjacency(len(points), faces).tocoo()
    lengths = np.linalg.norm(points[adjacency.row] - points[adjacency.col], axis=1)
    return sparse.csr_matrix((lengths, (adjacency.row, adjacency.col)), shape=(len(points), len(points)))


def boundary_loops(faces: np.ndarray) -> list[np.ndarray]:
    """Ordered vertex loops `[(n,), ...]` of the edges used by exactly one face."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    ordered = np.sort(edges, axis=1)
    key = ordered[:, 0] * (int(edges.max()) + 1) + ordered[:, 1]  # one integer per undirected edge
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    border = edges[counts[inverse.ravel()] == 1]
    following = dict(zip(border[:, 0].tolist(), border[:, 1].tolist()))
    loops = []
    while following:
        start, loop = next(iter(following)), []
        vertex = start
        while vertex in following:
            loop.append(vertex)
            vertex = following.pop(vertex)
        loops.append(np.asarray(loop, dtype=np.int64))
    return loops


def connected_components(num_vertices: int, faces: np.ndarray) -> list[np.ndarray]:
    """Vertex index arrays of the mesh's connected components, largest first."""
    from scipy.sparse.csgraph import connected_components as components

    _, labels = components(mesh_adjacency(num_vertices, faces), directed=False)
    used = np.zeros(num_vertices, bool)
    used[faces.ravel()] = True
    groups = [np.flatnonzero((labels == k) & used) for k in np.unique(labels[used])]
    return sorted(groups, key=len, reverse=True)


def _front_vertex_near(points: np.ndarray, candidates: np.ndarray, x: float, y: float, radius: float) -> int:
    """Index of the front-most (max z) candidate vertex within `radius` of (x, y) in the front view."""
    near = candidates[np.hypot(points[candidates, 0] - x, points[candidates, 1] - y) < radius]
    if len(near) == 0:
        near = candidates[[np.argmin(np.hypot(points[candidates, 0] - x, points[candidates, 1] - y))]]
    return int(near[np.argmax(points[near, 2])])


def jaw_hinges(skin: np.ndarray, eye_centre_l: np.ndarray, eye_centre_r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left and right ends of the jaw's opening axis, just inside the skin in front of the ears.

    It is the effective pivot of mouth opening, not the condyle: as the condyles glide forward, the
    mandible turns about a point low on its ramus (near the mandibular foramen), so the chin swings
    down more than back. It sits 0.9 eye distances below and 0.55 behind the eyes.
    """
    distance = float(np.linalg.norm(eye_centre_l - eye_centre_r))
    mid = 0.5 * (eye_centre_l + eye_centre_r)
    y, z = mid[1] - 0.9 * distance, mid[2] - 0.55 * distance
    near = skin[np.hypot(skin[:, 1] - y, skin[:, 2] - z) < 0.1 * distance]
    half_width = (np.abs(near[:, 0] - mid[0]).max() if len(near) else distance) - 0.12 * distance
    return (np.array([mid[0] + half_width, y, z]), np.array([mid[0] - half_width, y, z]))


def _split_loop(loop: np.ndarray, points: np.ndarray, first: int, second: int) -> tuple[np.ndarray, np.ndarray]:
    """The two arcs of a closed loop between two of its vertices, both from `first` to `second`."""
    order = np.roll(loop, -int(np.flatnonzero(loop == first)[0]))
    cut = int(np.flatnonzero(order == second)[0])
    return order[: cut + 1], np.concatenate([order[cut:], order[:1]])[::-1]


def _eye_rims(points: np.ndarray, skin: np.ndarray, adjacency, centre: np.ndarray, radius: float, inward: float):
    """Upper and lower lid rims of one eye, each ordered from the inner to the outer corner.

    The rims are the skin vertices lying on the front of the eyeball that have a neighbour tucked
    inside it (the lid margin folding into the socket). `inward` is +1 when the nose is at +x.
    """
    dist = np.linalg.norm(points - centre, axis=1)
    outside = np.full(len(points), np.inf)
    outside[skin] = dist[skin]
    tucked = (adjacency @ (outside < radius * 0.96).astype(np.float64)) > 0
    rim = np.flatnonzero((outside >= radius * 0.96) & (outside < radius * 1.22) & tucked & (points[:, 2] > centre[2]))
    rim = thin_by_sector(points, rim, centre)
    if len(rim) < 6:
        raise TalkingFacesError("Cannot find the eyelid rims of this FLAME mesh; pass an AU basis with --au-basis.")
    return split_rim(points, rim, (points[rim, 0] - centre[0]) * -inward)


def thin_by_sector(points: np.ndarray, rim: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """One vertex of `rim` per 10-degree sector round an eye: the one nearest its centre in the front
    view, i.e. the lid margin itself rather than the rows that fold behind it."""
    rel = points[rim, :2] - centre[:2]
    sector = np.floor((np.arctan2(rel[:, 1], rel[:, 0]) + np.pi) / np.radians(10)).astype(int)
    order = np.lexsort((np.hypot(rel[:, 0], rel[:, 1]), sector))
    return rim[order][np.concatenate([[True], np.diff(sector[order]) != 0])] if len(rim) else rim


def split_rim(points: np.ndarray, rim: np.ndarray, lateral: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower lid rims of an eye's rim vertices, split by the line between its corners (the
    extremes of `lateral (n,)`, which grows from the inner to the outer corner); each inner to outer."""
    inner, outer = rim[np.argmin(lateral)], rim[np.argmax(lateral)]
    a, b = points[inner], points[outer]
    line_y = a[1] + (points[rim, 0] - a[0]) * (b[1] - a[1]) / (b[0] - a[0])
    above = points[rim, 1] > line_y
    rims = []
    for part in (np.flatnonzero(above), np.flatnonzero(~above)):
        part = part[np.argsort(lateral[part])]
        vertices = rim[part]
        rims.append(np.concatenate([[inner], vertices[(vertices != inner) & (vertices != outer)], [outer]]))
    return rims[0], rims[1]


def detect_flame_landmarks(vertices: np.ndarray, faces: np.ndarray) -> Landmarks:
    """Landmarks of any FLAME-topology mesh `(5023, 3)`, from its topology and geometry only.

    The inner lips are the front-most boundary loop, the eyeballs the two small components; every
    other landmark is placed relative to these, in units of the distance between the eyes.
    """
    points = np.asarray(vertices, dtype=np.float64)
    components = connected_components(len(points), faces)
    if len(components) < 3 or abs(len(components[1]) - len(components[2])) > 0.05 * len(components[1]):
        raise TalkingFacesError("This FLAME mesh has no two separate eyeball components; pass an AU basis with --au-basis.")
    eyes = sorted(components[1:3], key=lambda idx: points[idx, 0].mean(), reverse=True)  # left (+x) first
    skin = components[0]
    centres = [points[idx].mean(axis=0) for idx in eyes]
    distance = float(np.linalg.norm(centres[0] - centres[1]))
    mid_x = 0.5 * (centres[0][0] + centres[1][0])

    loops = [loop for loop in boundary_loops(faces) if len(loop) >= 8]
    if not loops:
        raise TalkingFacesError("This FLAME mesh has no inner-lip boundary loop; pass an AU basis with --au-basis.")
    lips = max(loops, key=lambda loop: points[loop, 2].mean())
    corner_l, corner_r = lips[np.argmax(points[lips, 0])], lips[np.argmin(points[lips, 0])]
    arc_a, arc_b = _split_loop(lips, points, corner_r, corner_l)
    upper, lower = (arc_a, arc_b) if points[arc_a, 1].mean() > points[arc_b, 1].mean() else (arc_b, arc_a)

    def centre_of(arc: np.ndarray) -> np.ndarray:
        return points[arc[np.argmin(np.abs(points[arc, 0] - mid_x))]]

    indices = {"inner_lip_loop": lips, "upper_lip": upper, "lower_lip": lower}
    result = {"mouth_corner_l": points[corner_l], "mouth_corner_r": points[corner_r],
              "upper_lip_centre": centre_of(upper), "lower_lip_centre": centre_of(lower)}
    adjacency = mesh_adjacency(len(points), faces)
    midline = skin[np.abs(points[skin, 0] - mid_x) < 0.05 * distance]
    lips_y = result["lower_lip_centre"][1]
    between = midline[(points[midline, 1] > lips_y) & (points[midline, 1] < centres[0][1])]
    tip = points[between[np.argmax(points[between, 2])]]
    result["nose_tip"] = tip
    chin_y = lips_y - 0.5 * distance
    result["chin"] = points[_front_vertex_near(points, midline, mid_x, chin_y, 0.05 * distance)]
    wing = skin[(points[skin, 1] > tip[1] - 0.2 * distance) & (points[skin, 1] < tip[1] - 0.02 * distance)
                & (points[skin, 2] > tip[2] - 0.3 * distance) & (np.abs(points[skin, 0] - mid_x) < 0.5 * distance)]
    result["ala_l"], result["ala_r"] = points[wing[np.argmax(points[wing, 0])]], points[wing[np.argmin(points[wing, 0])]]
    front_skin = skin[points[skin, 2] > centres[0][2]]
    for side, eye, centre in zip(SIDES, eyes, centres):
        outward = np.sign(centre[0] - mid_x)
        radius = float(np.linalg.norm(points[eye] - centre, axis=1).max())
        up, low = _eye_rims(points, skin, adjacency, centre, radius, -outward)
        indices[f"upper_lid_{side}"], indices[f"lower_lid_{side}"], indices[f"eyeball_{side}"] = up, low, eye
        result[f"eye_centre_{side}"] = centre
        result[f"eye_inner_{side}"], result[f"eye_outer_{side}"] = points[up[0]], points[up[-1]]
        for name, dx, dy in (("brow_inner", -0.25, 0.42), ("brow_mid", 0.0, 0.47), ("brow_outer", 0.23, 0.40)):
            vertex = _front_vertex_near(points, front_skin, centre[0] + outward * dx * distance, centre[1] + dy * distance, 0.06 * distance)
            result[f"{name}_{side}"] = points[vertex]
    result["jaw_hinge_l"], result["jaw_hinge_r"] = jaw_hinges(points[skin], centres[0], centres[1])
    return Landmarks(result, indices)


def find_landmarks(vertices: np.ndarray, faces: np.ndarray | None) -> Landmarks:
    """Landmarks of a mesh: bundled for the default character, detected for FLAME topology.

    Raises a TalkingFacesError for any other mesh, whose landmarks cannot be found.
    """
    from .character import default_character_landmarks, is_default_character
    from .identity import FLAME_NUM_VERTICES

    if is_default_character(vertices):
        return default_character_landmarks()
    if len(vertices) == FLAME_NUM_VERTICES and faces is not None:
        return detect_flame_landmarks(vertices, faces)
    if len(vertices) == FLAME_NUM_VERTICES:
        raise TalkingFacesError(
            "This FLAME mesh has no faces, so its landmarks cannot be detected; load it from a PLY or OBJ "
            "with faces, or pass an AU basis with --au-basis."
        )
    raise TalkingFacesError(
        f"No rig landmarks are known for this {len(vertices)}-vertex mesh (only the default character and "
        "FLAME meshes are rigged automatically); pass an AU basis for it with --au-basis."
    )
