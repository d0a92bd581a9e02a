"""Landmarks and parts of any head mesh, detected in the canonical frame (metres, y up, facing +z).

`analyse_head(identity)` finds the head's units and axes (`head_frame`), splits it into parts
(the skin, the eyeballs, and everything else: teeth, gums, tongue, lashes), and detects the rig
landmarks of `landmarks.POINT_NAMES` / `INDEX_NAMES`:

- eyes from eyeball parts (two mirror-image spheres) when present, otherwise from the eye openings
  (boundary loops of the skin); lid rims from the openings, or from the skin tucked round the eyeballs;
- the mouth from the inner-lip boundary loop when the lips are separate, otherwise from the mouth
  line (the midline crease between the lips, and a surface path through it to the corners), with a
  warning that such a mouth cannot open;
- nose tip, alae, chin, brows and jaw hinges placed relative to these, as for FLAME.

Any named point can be given instead (`--landmarks FILE.json`): vertex indices or coordinates in the
mesh's own units and axes. See docs/character.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from .errors import TalkingFacesError
from .head_frame import HeadFrame, detect_head_frame, mirror_error, units_only_frame
from .identity import Identity
from .landmarks import (
    INDEX_NAMES, POINT_NAMES, SIDES, Landmarks, _eye_rims, _front_vertex_near, _split_loop, boundary_loops,
    connected_components, edge_graph, jaw_hinges, mesh_adjacency, split_rim, thin_by_sector,
)

LANDMARKS_HELP = "give it with --landmarks FILE.json (named points as vertex indices or coordinates; see docs/character.md), or pass an AU basis with --au-basis"
WELDED_LIPS_WARNING = (
    "The lips of this head are welded (no opening between them): it animates, but the mouth can only "
    "open if the upper and lower lips are separate vertices; cut the mouth open in your modelling tool."
)


@dataclass(frozen=True)
class HeadAnalysis:
    """What the rig needs to know about a head, beyond its vertices.

    Attributes:
        frame: the mesh's units and axes.
        landmarks: the rig landmarks, in the canonical frame (metres, y up, facing +z).
        others: `(n,)` vertices of parts that are neither skin nor eyeballs (teeth, tongue, lashes...).
        warnings: one-line notes for the user (e.g. welded lips).
    """

    frame: HeadFrame
    landmarks: Landmarks
    others: np.ndarray
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def landmarks_json(self) -> str:
        """The landmarks as an editable JSON file, in the mesh's own units and axes."""
        user = Landmarks({k: self.frame.to_user(v) for k, v in self.landmarks.points.items()}, self.landmarks.indices)
        return user.to_json()


def read_landmarks_file(path: str | Path, vertices: np.ndarray) -> dict[str, np.ndarray]:
    """Named points `{name: (3,)}` in the mesh's frame from a JSON file of vertex indices or coordinates.

    The file is `{"points": {"nose_tip": 1234, "chin": [0.0, -0.08, 0.07], ...}}` (a bare
    `{name: ...}` mapping is accepted too); indices sets saved by `talkface landmarks` are read
    back as they are, under the key "indices".
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise TalkingFacesError(f"Cannot read landmarks {path}: {exc}; give a JSON file of named points.") from None
    points = data.get("points", data) if isinstance(data, dict) else None
    if not isinstance(points, dict):
        raise TalkingFacesError(f"{path}: expected {{\"points\": {{name: index or [x, y, z]}}}}; see docs/character.md.")
    out = {}
    for name, value in points.items():
        if name not in POINT_NAMES:
            raise TalkingFacesError(f"{path}: unknown landmark {name!r}; known names: {', '.join(POINT_NAMES)}.")
        if isinstance(value, int):
            if not 0 <= value < len(vertices):
                raise TalkingFacesError(f"{path}: {name} is vertex {value}, but the mesh has {len(vertices)} vertices.")
            out[name] = np.asarray(vertices[value], dtype=np.float64)
        else:
            coords = np.asarray(value, dtype=np.float64)
            if coords.shape != (3,) or not np.isfinite(coords).all():
                raise TalkingFacesError(f"{path}: {name} must be a vertex index or [x, y, z], got {value!r}.")
            out[name] = coords
    indices = data.get("indices") if isinstance(data, dict) else None
    if isinstance(indices, dict):
        out["__indices__"] = {k: np.asarray(v, dtype=np.int64) for k, v in indices.items() if k in INDEX_NAMES}
    return out


def analyse_head(identity: Identity, given: dict | None = None) -> HeadAnalysis:
    """Frame, parts and landmarks of a head mesh with faces (see the module docstring)."""
    if identity.faces is None:
        raise TalkingFacesError(f"{identity.name} has no faces, so its landmarks cannot be detected; load it from OBJ, PLY, GLB or NPZ with faces.")
    given = dict(given or {})
    given_indices = given.pop("__indices__", {})
    components = connected_components(identity.num_vertices, identity.faces)
    skin = components[0]
    try:
        frame = detect_head_frame(identity.vertices, skin)
    except TalkingFacesError:
        if not given:
            raise
        frame = units_only_frame(identity.vertices[skin])  # points given by hand: take the file's axes as they are
    points = frame.to_canonical(identity.vertices)
    given = {k: frame.to_canonical(v) for k, v in given.items()}
    if set(POINT_NAMES) <= set(given) and set(INDEX_NAMES) <= set(given_indices):
        landmarks = Landmarks(given, given_indices)  # a complete file, e.g. from `talkface landmarks --save`
        eyeballs = np.concatenate([landmarks.indices["eyeball_l"], landmarks.indices["eyeball_r"]])
        return HeadAnalysis(frame, landmarks, _others(len(points), skin, eyeballs), ())
    detector = _Detector(points, identity.faces, skin, components[1:], given)
    landmarks = detector.run()
    eyeballs = np.concatenate([landmarks.indices["eyeball_l"], landmarks.indices["eyeball_r"]])
    return HeadAnalysis(frame, landmarks, _others(len(points), skin, eyeballs), tuple(detector.warnings))


def _others(num_vertices: int, skin: np.ndarray, eyeballs: np.ndarray) -> np.ndarray:
    used = np.zeros(num_vertices, bool)
    used[skin] = True
    used[eyeballs] = True
    return np.flatnonzero(~used)


def _fit_sphere(points: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Least-squares sphere through `(n, 3)` points: centre, radius, and the RMS misfit relative to the radius."""
    a = np.hstack([2 * points, np.ones((len(points), 1))])
    b = (points ** 2).sum(axis=1)
    solution = np.linalg.lstsq(a, b, rcond=None)[0]
    centre = solution[:3]
    radius = float(np.sqrt(max(solution[3] + centre @ centre, 1e-18)))
    misfit = float(np.sqrt(np.mean((np.linalg.norm(points - centre, axis=1) - radius) ** 2)) / radius)
    return centre, radius, misfit


def _check_plausible(points: dict[str, np.ndarray]) -> None:
    """Raise when detected landmarks do not make a face: the doubtful points are named, with how to give them."""
    distance = float(np.linalg.norm(points["eye_centre_l"] - points["eye_centre_r"]))
    mouth = 0.5 * (points["mouth_corner_l"] + points["mouth_corner_r"])
    width = float(np.linalg.norm(points["mouth_corner_l"] - points["mouth_corner_r"]))
    eyes_y = 0.5 * (points["eye_centre_l"][1] + points["eye_centre_r"][1])
    checks = (
        (0.035 < distance < 0.1, "eye_centre_l, eye_centre_r", f"eyes {1000 * distance:.0f} mm apart"),
        (0.35 * distance < width < 1.3 * distance, "mouth_corner_l, mouth_corner_r", f"a mouth {1000 * width:.0f} mm wide"),
        (mouth[1] < points["nose_tip"][1] < eyes_y, "nose_tip", "the nose tip not between the eyes and the mouth"),
        (points["chin"][1] < points["lower_lip_centre"][1], "chin", "the chin above the lower lip"),
    )
    for ok, names, what in checks:
        if not ok:
            raise TalkingFacesError(f"The detected landmarks look wrong ({what}); {LANDMARKS_HELP} ({names}).")


def _walk_back(graph, a: int, b: int, limit: float = np.inf) -> tuple[list[int], bool]:
    """The shortest surface path between vertices `a` and `b` of an `edge_graph`, listed from `b`
    back towards `a` (within `limit` of `a`), and whether it reaches `a`."""
    _, previous = dijkstra(graph, directed=False, indices=a, limit=limit, return_predecessors=True)
    path, vertex = [b], b
    while vertex != a and previous[vertex] >= 0:
        vertex = int(previous[vertex])
        path.append(vertex)
    return path, vertex == a


class _Detector:
    """One detection run over canonical points `(V, 3)`; attributes fill in as landmarks are found."""

    def __init__(self, points: np.ndarray, faces: np.ndarray, skin: np.ndarray, rest: list[np.ndarray], given: dict) -> None:
        self.points, self.faces, self.skin, self.rest, self.given = points, faces, skin, rest, given
        self.warnings: list[str] = []
        self.lip_centres: tuple[int, int] | None = None  # set when the lips are found by contact
        in_skin = np.zeros(len(points), bool)
        in_skin[skin] = True
        self.skin_faces = faces[in_skin[faces].all(axis=1)]
        self.loops = [loop for loop in boundary_loops(self.skin_faces) if len(loop) >= 6]
        self.mid_x = mirror_error(points[skin], 0)[1]

    # --- eyes -------------------------------------------------------------------------------
    def _eyeballs(self):
        """Two mirror-image sphere parts: (left indices, right indices, left centre, right centre, radius), or None."""
        spheres = []
        for comp in self.rest:
            if len(comp) < 20:
                continue
            centre, radius, misfit = _fit_sphere(self.points[comp])
            if misfit < 0.12 and 0.006 < radius < 0.02:
                spheres.append((centre, radius, comp))
        best = None
        for i in range(len(spheres)):
            for j in range(i + 1, len(spheres)):
                (ci, ri, _), (cj, rj, _) = spheres[i], spheres[j]
                r = max(ri, rj)
                if abs(ri - rj) < 0.2 * r and abs(ci[1] - cj[1]) < 0.25 * r and abs(ci[2] - cj[2]) < 0.25 * r and 0.035 < abs(ci[0] - cj[0]) < 0.1:
                    if best is None or r > best[2]:
                        best = (ci, cj, r)
        if best is None:
            return None
        ci, cj, radius = best
        left, right = (ci, cj) if ci[0] > cj[0] else (cj, ci)
        parts = {"l": [], "r": []}
        for comp in self.rest:  # every shell of an eye (sclera, cornea, iris) turns with it
            c = self.points[comp].mean(axis=0)
            for side, centre in (("l", left), ("r", right)):
                if np.linalg.norm(c - centre) < 0.6 * radius and np.linalg.norm(self.points[comp] - centre, axis=1).max() < 1.3 * radius:
                    parts[side].append(comp)
        cat = {s: np.sort(np.concatenate(v)) if v else np.zeros(0, np.int64) for s, v in parts.items()}
        return cat["l"], cat["r"], left, right, radius

    def _eye_loops(self, centres=None):
        """The eye-opening loops `{side: loop}` of the skin: a mirror pair off the midline, near `centres` if known."""
        found = {}
        for side, sign in (("l", 1.0), ("r", -1.0)):
            best = None
            for loop in self.loops:
                p = self.points[loop]
                c, extent = p.mean(axis=0), np.ptp(p[:, 0])
                offset = (c[0] - self.mid_x) * sign
                if not (0.012 < extent < 0.06 and 0.015 < offset < 0.06):
                    continue
                if centres is not None and (np.hypot(*(c[:2] - centres[side][:2])) > 0.02 or c[2] < centres[side][2]):
                    continue  # not round this eye, or behind its centre (the back of a socket)
                score = c[2]  # the front-most candidate: nostrils or ear holes lie further back
                if best is None or score > best[0]:
                    best = (score, loop)
            if best is not None:
                found[side] = best[1]
        return found if len(found) == 2 else {}

    def _lids_from_outline(self, centre: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
        """Lid rims round an eyeball without an opening loop (the skin runs on into a socket): the outline
        of the eyeball as seen from the front, i.e. per 10-degree sector round the eye the skin vertex
        nearest its axis that lies in front of the eyeball's surface. Upper and lower rims, inner to outer."""
        p = self.points
        rel = p[self.skin] - centre
        rho = np.hypot(rel[:, 0], rel[:, 1])
        surface = np.sqrt(np.clip(radius ** 2 - rho ** 2, 0.0, None))
        covering = (rho < 1.6 * radius) & (rel[:, 2] > surface - 0.05 * radius) & (rel[:, 2] > 0)
        rim = thin_by_sector(p, self.skin[covering], centre)
        if len(rim) < 8:
            raise TalkingFacesError(f"Cannot find the eyelid rims round an eyeball; {LANDMARKS_HELP}.")
        return split_rim(p, rim, np.abs(p[rim, 0] - self.mid_x))

    def _lids_from_loop(self, loop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = self.points
        offsets = np.abs(p[loop, 0] - self.mid_x)
        inner, outer = loop[np.argmin(offsets)], loop[np.argmax(offsets)]
        a, b = _split_loop(loop, p, inner, outer)
        return (a, b) if p[a, 1].mean() > p[b, 1].mean() else (b, a)

    def eyes(self, indices: dict, result: dict) -> None:
        found = self._eyeballs()
        p = self.points
        if found is not None:
            eye_l, eye_r, centre_l, centre_r, radius = found
            centres = {"l": centre_l, "r": centre_r}
            balls = {"l": eye_l, "r": eye_r}
        else:
            balls = {"l": np.zeros(0, np.int64), "r": np.zeros(0, np.int64)}
            centres, radius = None, None
        for side in SIDES:
            if f"eye_centre_{side}" in self.given:
                centres = centres or {}
                centres[side] = self.given[f"eye_centre_{side}"]
        loops = self._eye_loops(centres if centres is not None and len(centres) == 2 else None)
        if centres is None or len(centres) < 2:
            if not loops:
                raise TalkingFacesError(f"Cannot find the eyes of this head (no eyeball parts and no eye openings); {LANDMARKS_HELP} (eye_centre_l, eye_centre_r).")
            centres = {}
            for side, loop in loops.items():  # the eyeball sits behind the opening, the lids on its front
                rim = p[loop]
                r = 0.55 * np.ptp(rim[:, 0])
                centres[side] = rim.mean(axis=0) - np.array([0.0, 0.0, 0.8 * r])
        if radius is None:
            radius = 0.55 * float(np.ptp(p[loops["l"], 0])) if loops else 0.2 * float(np.linalg.norm(centres["l"] - centres["r"]))
        adjacency = None
        for side in SIDES:
            if side in loops:
                up, low = self._lids_from_loop(loops[side])
            else:
                if len(balls[side]) == 0:
                    raise TalkingFacesError(f"Cannot find the eyelid rims of the {'left' if side == 'l' else 'right'} eye; {LANDMARKS_HELP}.")
                try:  # lid margins folding into the eye socket, as in FLAME
                    adjacency = adjacency if adjacency is not None else mesh_adjacency(len(p), self.faces)
                    up, low = _eye_rims(p, self.skin, adjacency, centres[side], radius, -np.sign(centres[side][0] - self.mid_x))
                except TalkingFacesError:  # a socket round the eyeball: the eyeball's outline seen from the front
                    up, low = self._lids_from_outline(centres[side], radius)
            indices[f"upper_lid_{side}"], indices[f"lower_lid_{side}"], indices[f"eyeball_{side}"] = up, low, balls[side]
            result[f"eye_centre_{side}"] = np.asarray(centres[side], dtype=np.float64)
            result[f"eye_inner_{side}"], result[f"eye_outer_{side}"] = p[up[0]], p[up[-1]]

    # --- mouth ------------------------------------------------------------------------------
    def _mouth_loop(self, eye_y: float, distance: float):
        best = None
        for loop in self.loops:
            q = self.points[loop]
            c, extent = q.mean(axis=0), np.ptp(q[:, 0])
            if abs(c[0] - self.mid_x) < 0.1 * distance and 0.3 * distance < extent < 1.4 * distance and eye_y - 1.3 * distance < c[1] < eye_y - 0.5 * distance:
                if best is None or c[2] > best[0]:
                    best = (c[2], loop)
        return None if best is None else best[1]

    def _mouth_line(self, tip: np.ndarray, distance: float, graph) -> tuple[np.ndarray, np.ndarray]:
        """Welded lips: the surface path along the lip line through the midline crease, and the row below it."""
        p, skin = self.points, self.skin
        midline = skin[(np.abs(p[skin, 0] - self.mid_x) < 0.04 * distance) & (p[skin, 2] > tip[2] - 0.6 * distance)]
        expected = tip[1] - 0.58 * distance
        if "upper_lip_centre" in self.given and "lower_lip_centre" in self.given:
            crease_y = 0.5 * (self.given["upper_lip_centre"][1] + self.given["lower_lip_centre"][1])
        else:
            bins = np.arange(expected - 0.3 * distance, expected + 0.3 * distance, 0.001)
            profile = np.full(len(bins), -np.inf)
            for k, y in enumerate(bins):
                near = midline[np.abs(p[midline, 1] - y) < 0.0008]
                if len(near):
                    profile[k] = p[near, 2].max()
            valid = np.isfinite(profile)
            minima = [k for k in range(1, len(bins) - 1) if valid[k - 1:k + 2].all() and profile[k] <= profile[k - 1] and profile[k] <= profile[k + 1]]
            if not minima:
                raise TalkingFacesError(f"Cannot find the mouth of this head (no lip opening and no crease between the lips); {LANDMARKS_HELP} (mouth_corner_l/r, upper_lip_centre, lower_lip_centre).")
            crease_y = bins[min(minima, key=lambda k: abs(bins[k] - expected))]
        front = skin[p[skin, 2] > tip[2] - 0.6 * distance]
        centre = _front_vertex_near(p, front, self.mid_x, crease_y, 0.03 * distance)
        corners = []
        for side, sign in (("l", 1.0), ("r", -1.0)):
            if f"mouth_corner_{side}" in self.given:
                g = self.given[f"mouth_corner_{side}"]
                corners.append(int(front[np.argmin(np.linalg.norm(p[front] - g, axis=1))]))
            else:
                x, y = self.mid_x + sign * 0.4 * distance, p[centre, 1]
                corners.append(int(front[np.argmin(np.hypot(p[front, 0] - x, p[front, 1] - y))]))
        corner_l, corner_r = corners

        def path(a: int, b: int) -> list[int]:
            return _walk_back(graph, a, b)[0][::-1]

        line = np.asarray(path(corner_r, centre)[:-1] + path(centre, corner_l), dtype=np.int64)
        on_line = np.zeros(len(p), bool)
        on_line[line] = True
        below = []
        rows, cols = graph.nonzero()
        for v in line[1:-1]:  # the neighbour straight below each interior line vertex
            nb = cols[rows == v]
            nb = nb[~on_line[nb] & (p[nb, 1] < p[v, 1])]
            if len(nb):
                below.append(int(nb[np.argmin(p[nb, 1] - p[v, 1] + np.abs(p[nb, 0] - p[v, 0]))]))
        below = np.unique(np.asarray(below, dtype=np.int64))
        below = below[np.argsort(p[below, 0])]
        lower = np.concatenate([[corner_r], below, [corner_l]])
        return line, lower

    def _lip_contacts(self, tip: np.ndarray, distance: float, graph) -> tuple[np.ndarray, np.ndarray] | None:
        """Separate lips joined by a mouth bag: vertices of the two lips that nearly touch across the mouth
        (under 0.08 eye distances, 5 mm apart) but are far apart over the surface (round the bag, or round the
        mouth corner: over 4 times their distance and 0.05 eye distances).

        Returns the upper and lower sets, each ordered by x with the outermost contacts as corners, or None.
        """
        p, skin = self.points, self.skin
        expected_y = tip[1] - 0.58 * distance
        region = skin[(np.abs(p[skin, 0] - self.mid_x) < 0.6 * distance) & (np.abs(p[skin, 1] - expected_y) < 0.3 * distance)
                      & (p[skin, 2] > tip[2] - 0.6 * distance)]
        if len(region) < 4:
            return None
        pairs = cKDTree(p[region]).query_pairs(0.08 * distance, output_type="ndarray")
        if len(pairs) == 0:
            return None
        first, second = region[pairs[:, 0]], region[pairs[:, 1]]
        if len(first):  # vertices one or two edges apart lie on one surface: skip them before measuring paths
            hops = (graph > 0).astype(np.float64)
            near = hops + hops @ hops
            keep = np.asarray(near[first, second]).ravel() == 0
            first, second = first[keep], second[keep]
        if len(first) < 4:
            return None
        sources = np.unique(first)
        surface = np.full(len(first), np.inf)
        for start in range(0, len(sources), 256):
            batch = sources[start:start + 256]
            reach = dijkstra(graph, directed=False, indices=batch, limit=0.3 * distance)
            inside = (first >= batch[0]) & (first <= batch[-1])
            surface[inside] = reach[np.searchsorted(batch, first[inside]), second[inside]]
        straight = np.linalg.norm(p[first] - p[second], axis=1)
        apart = surface > np.maximum(4.0 * straight, 0.05 * distance)
        if apart.sum() < 4:
            return None
        first, second = first[apart], second[apart]
        depth = 0.5 * (p[first, 2] + p[second, 2])
        front = depth > depth.max() - 0.2 * distance  # the lips, not the walls of the mouth bag behind them
        first, second = first[front], second[front]
        swap = p[first, 1] < p[second, 1]
        top, bottom = np.where(swap, second, first), np.where(swap, first, second)
        # The lip centres: the closest pair across the mouth near the midline (the inner rims themselves).
        middle = np.abs(0.5 * (p[top, 0] + p[bottom, 0]) - self.mid_x)
        gap = np.linalg.norm(p[top] - p[bottom], axis=1) + 1e3 * np.clip(middle - (middle.min() + 0.03 * distance), 0.0, None)
        self.lip_centres = (int(top[np.argmin(gap)]), int(bottom[np.argmin(gap)]))
        upper_set, lower_set = np.setdiff1d(np.unique(top), bottom), np.setdiff1d(np.unique(bottom), top)
        if len(upper_set) < 2 or len(lower_set) < 2 or np.ptp(p[upper_set, 0]) < 0.3 * distance:
            return None
        def corner(sign: float) -> int:
            """Where the lips meet: the outermost vertex of the short surface path joining the outermost
            upper and lower contacts on one side (it runs round the mouth corner)."""
            top = upper_set[np.argmax(sign * p[upper_set, 0])]
            bottom = lower_set[np.argmax(sign * p[lower_set, 0])]
            path, reached = _walk_back(graph, top, bottom, limit=0.3 * distance)
            path = np.asarray(path if reached else [top, bottom])
            return int(path[np.argmax(sign * p[path, 0])])

        corner_l, corner_r = corner(1.0), corner(-1.0)

        def arc(members: np.ndarray) -> np.ndarray:
            members = members[(members != corner_l) & (members != corner_r)]
            return np.concatenate([[corner_r], members[np.argsort(p[members, 0])], [corner_l]]).astype(np.int64)

        return arc(upper_set), arc(lower_set)

    def mouth(self, indices: dict, result: dict, tip: np.ndarray, eye_y: float, distance: float, graph) -> None:
        p = self.points
        loop = self._mouth_loop(eye_y, distance)
        if loop is not None:
            corner_l, corner_r = loop[np.argmax(p[loop, 0])], loop[np.argmin(p[loop, 0])]
            arc_a, arc_b = _split_loop(loop, p, corner_r, corner_l)
            upper, lower = (arc_a, arc_b) if p[arc_a, 1].mean() > p[arc_b, 1].mean() else (arc_b, arc_a)
        else:
            contacts = self._lip_contacts(tip, distance, graph)
            if contacts is None:
                self.warnings.append(WELDED_LIPS_WARNING)
                upper, lower = self._mouth_line(tip, distance, graph)
            else:
                upper, lower = contacts
            corner_r, corner_l = upper[0], upper[-1]
            loop = np.concatenate([upper, lower[-2:0:-1]])

        def centre_of(arc: np.ndarray) -> np.ndarray:
            return p[arc[np.argmin(np.abs(p[arc, 0] - self.mid_x))]]

        indices.update(inner_lip_loop=loop, upper_lip=upper, lower_lip=lower)
        centres = (p[self.lip_centres[0]], p[self.lip_centres[1]]) if self.lip_centres else (centre_of(upper), centre_of(lower))
        result.update(mouth_corner_l=p[corner_l], mouth_corner_r=p[corner_r], upper_lip_centre=centres[0], lower_lip_centre=centres[1])

    # --- the rest ---------------------------------------------------------------------------
    def run(self) -> Landmarks:
        p, skin = self.points, self.skin
        indices: dict[str, np.ndarray] = {}
        result: dict[str, np.ndarray] = {}
        self.eyes(indices, result)
        centres = [result["eye_centre_l"], result["eye_centre_r"]]
        distance = float(np.linalg.norm(centres[0] - centres[1]))
        self.mid_x = 0.5 * (centres[0][0] + centres[1][0])
        eye_y = 0.5 * (centres[0][1] + centres[1][1])
        midline = skin[np.abs(p[skin, 0] - self.mid_x) < 0.05 * distance]
        between = midline[(p[midline, 1] < eye_y - 0.1 * distance) & (p[midline, 1] > eye_y - 0.9 * distance)]
        if "nose_tip" in self.given:
            tip = self.given["nose_tip"]
        elif len(between):
            tip = p[between[np.argmax(p[between, 2])]]
        else:
            raise TalkingFacesError(f"Cannot find the nose tip of this head; {LANDMARKS_HELP} (nose_tip).")
        result["nose_tip"] = tip
        graph = edge_graph(p, self.faces)
        self.mouth(indices, result, tip, eye_y, distance, graph)
        lips_y = result["lower_lip_centre"][1]
        chin_y = lips_y - 0.5 * distance
        result["chin"] = p[_front_vertex_near(p, midline, self.mid_x, chin_y, 0.05 * distance)]
        wing = skin[(p[skin, 1] > tip[1] - 0.2 * distance) & (p[skin, 1] < tip[1] - 0.02 * distance)
                    & (p[skin, 2] > tip[2] - 0.3 * distance) & (np.abs(p[skin, 0] - self.mid_x) < 0.5 * distance)]
        if len(wing) == 0:
            wing = skin[[np.argmin(np.linalg.norm(p[skin] - tip, axis=1))]]
        result["ala_l"], result["ala_r"] = p[wing[np.argmax(p[wing, 0])]], p[wing[np.argmin(p[wing, 0])]]
        front_skin = skin[p[skin, 2] > min(c[2] for c in centres)]
        for side, centre in zip(SIDES, centres):
            outward = np.sign(centre[0] - self.mid_x)
            for name, dx, dy in (("brow_inner", -0.25, 0.42), ("brow_mid", 0.0, 0.47), ("brow_outer", 0.23, 0.40)):
                vertex = _front_vertex_near(p, front_skin, centre[0] + outward * dx * distance, centre[1] + dy * distance, 0.06 * distance)
                result[f"{name}_{side}"] = p[vertex]
        result["jaw_hinge_l"], result["jaw_hinge_r"] = jaw_hinges(p[skin], centres[0], centres[1])
        result.update({k: v for k, v in self.given.items() if k in POINT_NAMES})
        _check_plausible(result)
        return Landmarks(result, indices)
