"""Identity meshes: loading, saving and validating OBJ, PLY, GLB/glTF, NPY and NPZ files.

Every loader keeps the file's own vertices, in their order and count: an OBJ with 26,719 `v` lines is a
26,719-vertex identity whatever its UV seams, normals, quads or materials. Polygons are fanned into
triangles; OBJ groups, objects and materials, and glTF meshes, are kept as named vertex sets (`parts`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import TalkingFacesError

FLAME_NUM_VERTICES = 5023
FLAME_NUM_FACES = 9976
MESH_SUFFIXES = (".obj", ".ply", ".glb", ".gltf", ".npy", ".npz")
# Ear-to-ear width of a head in metres (FLAME: 0.16 m), with room for necks and shoulders.
HEAD_WIDTH_METRES = (0.08, 0.5)
OTHER_UNITS = {"centimetres": 100.0, "millimetres": 1000.0}


@dataclass
class Identity:
    """A neutral face mesh.

    Attributes:
        vertices: `(V, 3)` float32 neutral positions, in the mesh's own units (FLAME: metres).
        faces: `(F, 3)` int64 triangle indices, or None for a bare vertex array.
        name: a short label, for reports and file names.
        parts: named vertex sets `{name: (n,) int64}` from the file (OBJ groups, objects and
            materials; glTF meshes), empty when the file has none.
    """

    vertices: np.ndarray
    faces: np.ndarray | None
    name: str = "identity"
    parts: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def is_flame(self) -> bool:
        """True for FLAME topology (5,023 vertices), what the learned models accept."""
        return self.num_vertices == FLAME_NUM_VERTICES

    @property
    def topology(self) -> str:
        return "flame" if self.is_flame else f"{self.num_vertices}-vertex mesh"


def unit_of_head(vertices: np.ndarray) -> str | None:
    """The unit a head mesh `(V, 3)` is modelled in, judged by its width: "metres", "centimetres",
    "millimetres", or None when the width fits none of them."""
    width = float(np.ptp(vertices[:, 0]))
    low, high = HEAD_WIDTH_METRES
    for unit, per_metre in {"metres": 1.0, **OTHER_UNITS}.items():
        if low * per_metre <= width <= high * per_metre:
            return unit
    return None


def warn_unless_metres(identity: Identity, model: str) -> None:
    """Warn when `identity` looks modelled in centimetres or millimetres, for a `model` that works in metres."""
    unit = unit_of_head(identity.vertices)
    if unit in OTHER_UNITS:
        width = float(np.ptp(identity.vertices[:, 0]))
        warnings.warn(
            f"{identity.name} is {width:.4g} units wide, so it looks modelled in {unit}, but {model} works in metres "
            f"and its motion will look {OTHER_UNITS[unit]:.0f}x too small; scale the mesh by {1 / OTHER_UNITS[unit]:g}.",
            stacklevel=2,
        )


def validate_mesh(vertices: np.ndarray, faces: np.ndarray | None, source: str) -> None:
    """Raise a TalkingFacesError unless the vertices are finite `(V, 3)` and faces index them."""
    if vertices.ndim != 2 or vertices.shape[1] != 3 or vertices.shape[0] == 0:
        raise TalkingFacesError(f"{source}: expected (V, 3) vertices, got shape {tuple(vertices.shape)}; give a triangle mesh.")
    bad = ~np.isfinite(vertices).all(axis=1)
    if bad.any():
        raise TalkingFacesError(
            f"{source}: {int(bad.sum())} vertices are NaN or infinite (first: {int(np.flatnonzero(bad)[0])}); fix or re-export the mesh."
        )
    if faces is not None:
        if faces.ndim != 2 or faces.shape[1] != 3:
            raise TalkingFacesError(f"{source}: faces must be triangles, got shape {tuple(faces.shape)}; triangulate the mesh.")
        if faces.size and (faces.min() < 0 or faces.max() >= vertices.shape[0]):
            raise TalkingFacesError(
                f"{source}: face indices run to {int(faces.max())} but the mesh has {vertices.shape[0]} vertices; the file is corrupt."
            )


def load_identity(path: str | Path) -> Identity:
    """Load a neutral mesh from OBJ, PLY, GLB/glTF, NPY (`(V, 3)` or `(V*3,)` vertices) or NPZ (`vertices`, `faces`).

    Vertex order is kept exactly as in the file, because bases and checkpoints index it.
    """
    path = Path(path)
    if not path.is_file():
        raise TalkingFacesError(f"Identity mesh not found: {path}; pass an existing OBJ, PLY, NPY or NPZ file.")
    suffix = path.suffix.lower()
    if suffix not in MESH_SUFFIXES:
        raise TalkingFacesError(f"Unsupported mesh format {suffix!r} for {path}; use one of {', '.join(MESH_SUFFIXES)}.")
    parts: dict[str, np.ndarray] = {}
    try:
        if suffix == ".npy":
            vertices, faces = np.load(path, allow_pickle=False), None
            vertices = vertices.reshape(-1, 3) if vertices.ndim == 1 and vertices.size % 3 == 0 else vertices
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                vertices = data["vertices"]
                faces = data["faces"] if "faces" in data else None
        elif suffix == ".obj":
            vertices, faces, parts = read_obj(path)
        elif suffix in (".glb", ".gltf"):
            vertices, faces, parts = _read_gltf(path)
        else:
            import trimesh

            mesh = trimesh.load(path, process=False, maintain_order=True, force="mesh")
            vertices, faces = np.asarray(mesh.vertices), np.asarray(mesh.faces)
        if faces is not None and faces.size == 0:
            faces = None
    except TalkingFacesError:
        raise
    except Exception as exc:  # trimesh and numpy raise many types for corrupt files
        raise TalkingFacesError(f"Cannot read mesh {path}: {exc.__class__.__name__}: {exc}; check that it is a valid {suffix[1:].upper()} file.") from None
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = None if faces is None else np.asarray(faces, dtype=np.int64)
    validate_mesh(vertices, faces, str(path))
    return Identity(vertices.astype(np.float32), faces, name=path.stem, parts=parts)


def read_obj(path: str | Path) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Vertices `(V, 3)` (one per `v` line, in file order), fanned triangles `(F, 3)` and named parts of an OBJ.

    Texture and normal indices (`f 1/2/3`) are ignored, so UV seams never split a vertex; negative
    (relative) indices are resolved. Parts are the vertices used by each group (`g`), object (`o`)
    and material (`usemtl`), named `g:NAME`, `o:NAME`, `mtl:NAME`.
    """
    vertices: list[list[float]] = []
    triangles: list[list[int]] = []
    owners: list[tuple[str, ...]] = []  # the current group/object/material names, per triangle
    current = {"g": "", "o": "", "mtl": ""}
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            head, *rest = line.split(None, 1) or [""]  # any whitespace separates the keyword
            rest = rest[0] if rest else ""
            if head == "v":
                values = rest.split()
                if len(values) < 3:
                    raise TalkingFacesError(f"{path}: line {number} is a vertex with fewer than 3 coordinates; the file is corrupt.")
                vertices.append([float(values[0]), float(values[1]), float(values[2])])
            elif head == "f":
                corners = [int(token.split("/")[0]) for token in rest.split()]
                corners = [c - 1 if c > 0 else len(vertices) + c for c in corners]
                if len(corners) < 3:
                    raise TalkingFacesError(f"{path}: line {number} is a face with fewer than 3 corners; the file is corrupt.")
                for k in range(1, len(corners) - 1):  # a fan: exact for the convex quads and n-gons of face meshes
                    triangles.append([corners[0], corners[k], corners[k + 1]])
                    owners.append((current["g"], current["o"], current["mtl"]))
            elif head in ("g", "o", "usemtl"):
                current["mtl" if head == "usemtl" else head] = rest.strip()
    faces = np.asarray(triangles, dtype=np.int64).reshape(-1, 3)
    parts: dict[str, np.ndarray] = {}
    if owners:
        labels = np.asarray(owners)
        for column, prefix in enumerate(("g", "o", "mtl")):
            names = np.unique(labels[:, column])
            if len(names) < 2 and names[0] == "":
                continue
            for name in names:
                if name:
                    parts[f"{prefix}:{name}"] = np.unique(faces[labels[:, column] == name])
    return np.asarray(vertices, dtype=np.float64).reshape(-1, 3), faces, parts


def _read_gltf(path: Path) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Vertices and triangles of every mesh of a GLB/glTF scene, in world space and node order; one part per mesh."""
    import trimesh

    scene = trimesh.load(path, process=False, maintain_order=True, force="scene")
    vertices, faces, parts, count = [], [], {}, 0
    for node in scene.graph.nodes_geometry:
        transform, name = scene.graph[node]
        mesh = scene.geometry[name]
        points = trimesh.transform_points(np.asarray(mesh.vertices), transform)
        vertices.append(points)
        faces.append(np.asarray(mesh.faces, dtype=np.int64) + count)
        parts[f"mesh:{name}"] = np.arange(count, count + len(points))
        count += len(points)
    if not vertices:
        raise TalkingFacesError(f"{path}: the glTF scene holds no mesh; export the head as a mesh.")
    return np.concatenate(vertices), np.concatenate(faces), parts


def save_mesh(path: str | Path, vertices: np.ndarray, faces: np.ndarray | None) -> None:
    """Write `(V, 3)` vertices (and faces) as OBJ, PLY, NPY or NPZ, chosen by the suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        np.save(path, np.asarray(vertices, dtype=np.float32))
    elif suffix == ".npz":
        np.savez(path, vertices=np.asarray(vertices, dtype=np.float32), faces=faces)
    else:
        import trimesh

        trimesh.Trimesh(vertices, faces, process=False).export(path)
