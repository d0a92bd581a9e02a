"""Heads the tests generate from the bundled character: remeshed, reordered, rotated, rescaled,
without eyeballs, with welded lips, or written as a multi-material quad OBJ with UV seams.

Each variant is `(vertices (V, 3), faces (F, 3), known)`: `known` maps landmark names to their
canonical positions (metres, y up, facing +z), from the character's bundled landmarks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from talking_faces.character import default_character_landmarks, load_default_character
from talking_faces.landmarks import connected_components

# User axes of a Blender-style export: x stays, canonical up (+y) becomes +z, canonical front (+z) becomes -y.
Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # user = Z_UP @ canonical


def character() -> tuple[np.ndarray, np.ndarray]:
    head = load_default_character()
    return head.vertices.astype(np.float64), head.faces


def known_points() -> dict[str, np.ndarray]:
    return dict(default_character_landmarks().points)


def to_user(vertices: np.ndarray, rotation: np.ndarray = np.eye(3), scale: float = 1.0) -> np.ndarray:
    """Canonical metres -> a user frame: `scale` units per metre, axes by `rotation`."""
    return (vertices @ rotation.T) * scale


def reorder(vertices: np.ndarray, faces: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same mesh with its vertices shuffled: returns vertices, faces and `order` (new i = old order[i])."""
    order = np.random.default_rng(seed).permutation(len(vertices))
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return vertices[order], inverse[faces], order


def remesh(vertices: np.ndarray, faces: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A different vertex count and order: every triangle split at its edge midpoints, then shuffled."""
    import trimesh

    denser, dense_faces = trimesh.remesh.subdivide(vertices, faces)
    shuffled, shuffled_faces, _ = reorder(np.asarray(denser), np.asarray(dense_faces), seed)
    return shuffled, shuffled_faces


def without_eyeballs(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The skin alone: the eyeball components removed (vertex indices compacted)."""
    skin = connected_components(len(vertices), faces)[0]
    keep = np.zeros(len(vertices), bool)
    keep[skin] = True
    remap = np.cumsum(keep) - 1
    return vertices[keep], remap[faces[keep[faces].all(axis=1)]]


def welded_lips(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mouth slit closed: each lower inner-lip vertex merged into its upper partner, both at their midpoint."""
    landmarks = default_character_landmarks()
    upper, lower = landmarks.indices["upper_lip"][1:-1], landmarks.indices["lower_lip"][1:-1]
    vertices = vertices.copy()
    vertices[upper] = 0.5 * (vertices[upper] + vertices[lower])
    remap = np.arange(len(vertices))
    remap[lower] = upper
    keep = np.ones(len(vertices), bool)
    keep[lower] = False
    compact = np.cumsum(keep) - 1
    return vertices[keep], compact[remap[faces]]


def write_quad_obj(path: Path, vertices: np.ndarray, faces: np.ndarray) -> int:
    """Write an OBJ with quads where two triangles share a diagonal, a UV per face corner (a seam at
    every face), normals, and two materials (skin, eyes) in two groups. Returns the number of quads."""
    skin = np.zeros(len(vertices), bool)
    skin[connected_components(len(vertices), faces)[0]] = True
    lines = ["mtllib head.mtl"] + [f"v {x:.7f} {y:.7f} {z:.7f}" for x, y, z in vertices]
    polygons, k = [], 0
    while k < len(faces):  # the character's grid triangles come in pairs [a, c, d], [a, d, b]
        a, c, d = faces[k]
        if k + 1 < len(faces) and faces[k + 1][0] == a and faces[k + 1][1] == d:
            polygons.append([a, c, d, faces[k + 1][2]])
            k += 2
        else:
            polygons.append([a, c, d])
            k += 1
    corner = 0
    groups = {"skin": [p for p in polygons if skin[p[0]]], "eyes": [p for p in polygons if not skin[p[0]]]}
    for name, polys in groups.items():
        lines += [f"g {name}", f"usemtl {name}_material"]
        for p in polys:
            lines += [f"vt {0.1 * (i % 7):.3f} {0.1 * (i % 5):.3f}" for i in range(len(p))]
            lines.append("vn 0 0 1")
            lines.append("f " + " ".join(f"{v + 1}/{corner + i + 1}/1" for i, v in enumerate(p)))
            corner += len(p)
    Path(path).write_text("\n".join(lines) + "\n")
    return sum(len(p) == 4 for p in polygons)


def _pocket(vertices: np.ndarray, faces: np.ndarray, loop: np.ndarray, ring: np.ndarray, cap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Close the boundary `loop` with a pocket: a tube to `ring (n, 3)`, then a fan to `cap (3,)`."""
    first = len(vertices)
    ring_index = first + np.arange(len(loop))
    following = np.roll(np.arange(len(loop)), -1)
    # Wind the tube so its faces continue the skin's orientation: the skin runs each boundary edge (b, a) reversed.
    tube = np.concatenate([np.stack([loop[following], loop, ring_index], 1), np.stack([loop[following], ring_index, ring_index[following]], 1)])
    fan = np.stack([ring_index[following], ring_index, np.full(len(loop), first + len(loop))], 1)
    return np.concatenate([vertices, ring, cap[None]]), np.concatenate([faces, tube, fan])


def mouth_bag(vertices: np.ndarray, faces: np.ndarray, depth: float = 0.015) -> tuple[np.ndarray, np.ndarray]:
    """The mouth opening closed by a bag, as production heads have: a tube from the inner-lip loop
    `depth` metres back, capped. The lips stay separate vertices but no boundary loop is left at the mouth."""
    loop = default_character_landmarks().indices["inner_lip_loop"]
    mean_y = vertices[loop, 1].mean()
    ring = vertices[loop] - np.array([0.0, 0.0, depth])
    ring[:, 1] = mean_y + 0.3 * (vertices[loop, 1] - mean_y) + 0.004 * np.sign(vertices[loop, 1] - mean_y)
    return _pocket(vertices, faces, loop, ring, ring.mean(axis=0))


def eye_sockets(vertices: np.ndarray, faces: np.ndarray, gap: float = 0.002) -> tuple[np.ndarray, np.ndarray]:
    """The eye openings closed by sockets round the eyeballs, as production heads have: a tube from each lid
    loop to a ring round the eyeball's equator `gap` outside it, capped behind. No eye-opening loop is left."""
    landmarks = default_character_landmarks()
    for side in ("l", "r"):
        upper, lower = landmarks.indices[f"upper_lid_{side}"], landmarks.indices[f"lower_lid_{side}"]
        loop = np.concatenate([upper, lower[-2:0:-1]])
        ball = landmarks.indices[f"eyeball_{side}"]
        centre = vertices[ball].mean(axis=0)
        radius = np.linalg.norm(vertices[ball] - centre, axis=1).max() + gap
        direction = vertices[loop, :2] - centre[:2]
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        ring = np.column_stack([centre[0] + radius * direction[:, 0], centre[1] + radius * direction[:, 1], np.full(len(loop), centre[2])])
        vertices, faces = _pocket(vertices, faces, loop, ring, centre - np.array([0.0, 0.0, radius]))
    return vertices, faces
