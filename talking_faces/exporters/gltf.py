"""Binary glTF (.glb) files of a head, its morph targets and an animation of their weights (pygltflib).

One mesh, one primitive: POSITION is the neutral in the identity's own units, axes and vertex order
(NORMAL its smooth normals),
each morph target a POSITION displacement, target names in `mesh.extras.targetNames` (as Blender
and three.js read them). An animation, when given, is one LINEAR sampler of the weights at the
frame times. A head that is not Y-up in metres gets a node matrix to glTF's frame (metres, Y up,
facing +Z), so viewers show it upright while the mesh data stays as the user's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pygltflib

from talking_faces.atomic import atomic_write
from talking_faces.errors import TalkingFacesError

ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963


class _Blob:
    """The binary chunk, built view by view (each 4-byte aligned)."""

    def __init__(self, gltf: pygltflib.GLTF2) -> None:
        self.gltf, self.data = gltf, bytearray()

    def accessor(self, array: np.ndarray, kind: str, component: int, target: int | None = None, bounds: bool = False) -> int:
        raw = np.ascontiguousarray(array).tobytes()
        self.data += b"\x00" * (-len(self.data) % 4)
        self.gltf.bufferViews.append(pygltflib.BufferView(buffer=0, byteOffset=len(self.data), byteLength=len(raw), target=target))
        self.data += raw
        count = array.shape[0]
        accessor = pygltflib.Accessor(bufferView=len(self.gltf.bufferViews) - 1, componentType=component, count=count, type=kind)
        if bounds:
            flat = array.reshape(count, -1)
            accessor.min, accessor.max = flat.min(axis=0).tolist(), flat.max(axis=0).tolist()
        self.gltf.accessors.append(accessor)
        return len(self.gltf.accessors) - 1


def _unit_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Smooth unit normals `(V, 3)` float32 of the neutral (viewers would shade a glTF without them flat);
    vertices in no face get +z, as glTF requires unit normals."""
    from talking_faces.render import smooth_normals, vertex_normals_operator

    points = np.asarray(vertices, dtype=np.float64)
    normals = smooth_normals(points, faces, vertex_normals_operator(faces, len(points))).astype(np.float64)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = np.where(length > 0.5, normals / np.maximum(length, 1e-12), np.array([0.0, 0.0, 1.0]))
    return normals.astype(np.float32)


def write_glb(
    path: str | Path,
    vertices: np.ndarray,
    faces: np.ndarray,
    targets: np.ndarray,
    names: list[str],
    weights: np.ndarray | None = None,
    fps: float | None = None,
    to_gltf_frame: np.ndarray | None = None,
) -> None:
    """Write a .glb atomically.

    Args:
        vertices: `(V, 3)` neutral positions.
        faces: `(F, 3)` triangles.
        targets: `(K, V, 3)` morph target displacements, named by `names` (K).
        weights: `(T, K)` animation of the target weights at `fps`, or None for a still rig.
        to_gltf_frame: `(3, 3)` linear map from the mesh's frame to metres, Y up, facing +Z, or None.
    """
    if faces is None:
        raise TalkingFacesError("A glTF export needs a mesh with faces; load the identity from OBJ, PLY, GLB or NPZ with faces.")
    if len(names) != len(targets):
        raise TalkingFacesError(f"{len(targets)} morph targets but {len(names)} names.")
    gltf = pygltflib.GLTF2(asset=pygltflib.Asset(generator="talking_faces", version="2.0"))
    gltf.buffers.append(pygltflib.Buffer())
    blob = _Blob(gltf)
    float32 = np.float32
    position = blob.accessor(np.asarray(vertices, float32), "VEC3", pygltflib.FLOAT, ARRAY_BUFFER, bounds=True)
    normal = blob.accessor(_unit_normals(vertices, faces), "VEC3", pygltflib.FLOAT, ARRAY_BUFFER)
    indices = blob.accessor(np.asarray(faces, np.uint32).reshape(-1), "SCALAR", pygltflib.UNSIGNED_INT, ELEMENT_ARRAY_BUFFER)
    morphs = [{"POSITION": blob.accessor(np.asarray(t, float32), "VEC3", pygltflib.FLOAT, ARRAY_BUFFER, bounds=True)} for t in targets]
    primitive = pygltflib.Primitive(attributes=pygltflib.Attributes(POSITION=position, NORMAL=normal), indices=indices, targets=morphs or None)
    gltf.meshes.append(pygltflib.Mesh(name="head", primitives=[primitive], weights=[0.0] * len(targets) or None,
                                      extras={"targetNames": list(names)}))
    node = pygltflib.Node(name="head", mesh=0)
    if to_gltf_frame is not None and not np.allclose(to_gltf_frame, np.eye(3)):
        matrix = np.eye(4)
        matrix[:3, :3] = to_gltf_frame
        node.matrix = matrix.T.reshape(-1).tolist()  # glTF matrices are column-major
    gltf.nodes.append(node)
    gltf.scenes.append(pygltflib.Scene(nodes=[0]))
    gltf.scene = 0
    if weights is not None and len(weights):
        weights = np.asarray(weights, float32)
        times = (np.arange(weights.shape[0]) / float(fps)).astype(float32)
        time_accessor = blob.accessor(times, "SCALAR", pygltflib.FLOAT, bounds=True)
        weight_accessor = blob.accessor(weights.reshape(-1), "SCALAR", pygltflib.FLOAT)
        gltf.animations.append(pygltflib.Animation(
            name="speech",
            samplers=[pygltflib.AnimationSampler(input=time_accessor, output=weight_accessor, interpolation="LINEAR")],
            channels=[pygltflib.AnimationChannel(sampler=0, target=pygltflib.AnimationChannelTarget(node=0, path="weights"))],
        ))
    blob.data += b"\x00" * (-len(blob.data) % 4)
    gltf.buffers[0].byteLength = len(blob.data)
    gltf.set_binary_blob(bytes(blob.data))
    atomic_write(path, lambda tmp: gltf.save_binary(str(tmp)))


def _read_accessor(gltf: pygltflib.GLTF2, blob: bytes, index: int) -> np.ndarray:
    accessor = gltf.accessors[index]
    view = gltf.bufferViews[accessor.bufferView]
    dtype = {pygltflib.FLOAT: np.float32, pygltflib.UNSIGNED_INT: np.uint32, pygltflib.UNSIGNED_SHORT: np.uint16}[accessor.componentType]
    width = {"SCALAR": 1, "VEC3": 3}[accessor.type]
    start = (view.byteOffset or 0) + (accessor.byteOffset or 0)
    array = np.frombuffer(blob, dtype=dtype, count=accessor.count * width, offset=start)
    return array.reshape(accessor.count, width) if width > 1 else array


def read_glb(path: str | Path) -> dict:
    """The head of a .glb written by `write_glb`: `vertices (V, 3)`, `faces (F, 3)`, `targets (K, V, 3)`,
    `names`, and when animated `times (T,)` and `weights (T, K)` (mesh data, without the node matrix)."""
    gltf = pygltflib.GLTF2().load(str(path))
    blob = gltf.binary_blob()
    primitive = gltf.meshes[0].primitives[0]
    out = {
        "vertices": _read_accessor(gltf, blob, primitive.attributes.POSITION),
        "faces": _read_accessor(gltf, blob, primitive.indices).reshape(-1, 3).astype(np.int64),
        "targets": np.stack([_read_accessor(gltf, blob, t["POSITION"]) for t in primitive.targets or []]) if primitive.targets else np.zeros((0,)),
        "names": list((gltf.meshes[0].extras or {}).get("targetNames", [])),
    }
    if gltf.animations:
        sampler = gltf.animations[0].samplers[0]
        out["times"] = _read_accessor(gltf, blob, sampler.input)
        out["weights"] = _read_accessor(gltf, blob, sampler.output).reshape(len(out["times"]), -1)
    return out
