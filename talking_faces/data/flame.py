"""FLAME: the user's `generic_model.pkl` read without chumpy, and its vertices for given parameters.

The model is standard linear blend skinning (LBS) over 5 joints (0 global/root, 1 neck, 2 jaw,
3 left eye, 4 right eye): identity and expression blendshapes, pose-corrective blendshapes driven by
the non-root joint rotations, then skinning along the kinematic chain. Everything is float64.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talking_faces.errors import TalkingFacesError

from .safe_pickle import load_pickle

SHAPE_COMPONENTS = 300  # FLAME's shapedirs hold 300 identity components, then the expression components
FLAME_JOINTS = 5  # global (root), neck, jaw, left eye, right eye
JAW_JOINT = 2
MODEL_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "kintree_table", "weights", "f")


@dataclass(frozen=True)
class FlameModel:
    """The arrays of a FLAME model (V vertices, J joints, K = 300 + expression components).

    Attributes:
        v_template: `(V, 3)` mean head, metres.
        shapedirs: `(V, 3, K)` identity (first 300) then expression blendshapes.
        posedirs: `(V, 3, 9 * (J - 1))` pose correctives, driven by the flattened `R - I` of joints 1..J-1.
        J_regressor: `(J, V)` joint locations from the shaped mesh (dense).
        parents: `(J,)` parent joint of each joint, -1 for the root; parents come before children.
        weights: `(V, J)` skinning weights.
        faces: `(F, 3)` triangle vertex indices.
    """

    v_template: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray
    J_regressor: np.ndarray
    parents: np.ndarray
    weights: np.ndarray
    faces: np.ndarray

    @property
    def num_vertices(self) -> int:
        return self.v_template.shape[0]

    @property
    def num_joints(self) -> int:
        return self.parents.shape[0]

    @property
    def num_expressions(self) -> int:
        return self.shapedirs.shape[2] - SHAPE_COMPONENTS


def load_flame_model(path: str | Path) -> FlameModel:
    """Read a FLAME `generic_model.pkl` (2017-2023 releases; chumpy arrays and a sparse `J_regressor`
    are read without chumpy). Any vertex count is accepted; callers that need 5023 check it."""
    path = Path(path)
    if not path.is_file():
        raise TalkingFacesError(f"FLAME model not found: {path}; pass --flame-model path/to/generic_model.pkl.")
    raw = load_pickle(path)
    if not isinstance(raw, dict):
        raise _not_flame(path, f"it holds a pickled {type(raw).__name__}")
    missing = [key for key in MODEL_KEYS if key not in raw]
    if missing:
        raise _not_flame(path, f"it lacks {', '.join(missing)}")
    arrays = {key: _dense(raw[key], path, key) for key in MODEL_KEYS}
    _check_shapes(arrays, path)
    parents = arrays["kintree_table"][0].astype(np.int64)
    parents[0] = -1  # the root's parent is stored as 2**32 - 1
    if not all(0 <= p < i for i, p in enumerate(parents[1:], 1)):
        raise _not_flame(path, f"its kinematic tree {arrays['kintree_table'].tolist()} lists a child before its parent")
    return FlameModel(
        v_template=arrays["v_template"].astype(np.float64),
        shapedirs=arrays["shapedirs"].astype(np.float64),
        posedirs=arrays["posedirs"].astype(np.float64),
        J_regressor=arrays["J_regressor"].astype(np.float64),
        parents=parents,
        weights=arrays["weights"].astype(np.float64),
        faces=arrays["f"].astype(np.int64),
    )


def _dense(value: object, path: Path, key: str) -> np.ndarray:
    """A numpy, chumpy or scipy-sparse value as a dense ndarray."""
    try:
        return np.asarray(value.toarray() if hasattr(value, "toarray") else value)
    except TalkingFacesError as exc:  # a chumpy expression rather than a stored array
        raise TalkingFacesError(f"{path}['{key}']: {exc}") from None


def _check_shapes(arrays: dict[str, np.ndarray], path: Path) -> None:
    """Raise unless the arrays agree on V vertices, J joints and K > 300 blendshapes."""
    shape = {key: array.shape for key, array in arrays.items()}
    v = shape["v_template"][0] if shape["v_template"] else 0
    j = shape["kintree_table"][-1] if shape["kintree_table"] else 0
    k = shape["shapedirs"][-1] if shape["shapedirs"] else 0
    expected = {
        "v_template": (v, 3), "shapedirs": (v, 3, k), "posedirs": (v, 3, 9 * (j - 1)), "J_regressor": (j, v),
        "kintree_table": (2, j), "weights": (v, j), "f": (shape["f"][0] if shape["f"] else 0, 3),
    }
    for key, want in expected.items():
        if shape[key] != want or 0 in want:
            raise _not_flame(path, f"'{key}' has shape {shape[key]}, expected {want}")
    if k <= SHAPE_COMPONENTS:
        raise _not_flame(path, f"'shapedirs' has {k} components, expected {SHAPE_COMPONENTS} shape + expression ones")


def _not_flame(path: Path, problem: str) -> TalkingFacesError:
    return TalkingFacesError(f"{path} is not a FLAME model: {problem}; pass FLAME's generic_model.pkl.")


def flame_pose(jaw: np.ndarray, global_rotation: np.ndarray | None = None) -> np.ndarray:
    """`(T, 15)` FLAME pose (global, neck, jaw, left eye, right eye) from a `(T, 3)` jaw rotation and an
    optional `(T, 3)` global rotation; neck and eyes stay at rest."""
    jaw = np.asarray(jaw, dtype=np.float64)
    pose = np.zeros((jaw.shape[0], FLAME_JOINTS, 3))
    pose[:, JAW_JOINT] = jaw
    if global_rotation is not None:
        pose[:, 0] = global_rotation
    return pose.reshape(jaw.shape[0], -1)


def rodrigues(axis_angle: np.ndarray) -> np.ndarray:
    """`(..., 3, 3)` rotation matrices of `(..., 3)` axis-angle vectors (angle = norm); zero gives exactly I."""
    angle = np.linalg.norm(axis_angle, axis=-1, keepdims=True)
    axis = axis_angle / np.where(angle > 0, angle, 1.0)
    x, y, z = np.moveaxis(axis, -1, 0)
    zero = np.zeros_like(x)
    cross = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(*axis.shape[:-1], 3, 3)
    sin, cos = np.sin(angle)[..., None], np.cos(angle)[..., None]
    return np.eye(3) + sin * cross + (1 - cos) * (cross @ cross)


def flame_vertices(
    model: FlameModel, shape: np.ndarray | None, expression: np.ndarray, pose: np.ndarray
) -> np.ndarray:
    """`(T, V, 3)` float64 vertices of FLAME for T frames.

    Args:
        model: the FLAME model.
        shape: `(S,)` or `(T, S)` identity coefficients, S <= 300, or None for the mean identity.
        expression: `(T, E)` expression coefficients, E <= the model's expression components.
        pose: `(T, 3 * J)` axis-angle rotations of the joints (FLAME: global, neck, jaw, left eye, right
            eye); see `flame_pose`.
    """
    expression = np.asarray(expression, dtype=np.float64)
    pose = np.asarray(pose, dtype=np.float64)
    shape = np.zeros(0) if shape is None else np.asarray(shape, dtype=np.float64)
    frames, num_expressions = expression.shape
    num_vertices, num_joints = model.num_vertices, model.num_joints
    if num_expressions > model.num_expressions:
        raise TalkingFacesError(
            f"{num_expressions} expression coefficients given, but the FLAME model has {model.num_expressions}; "
            "pass a FLAME model with enough expression components."
        )
    if shape.shape[-1] > SHAPE_COMPONENTS or shape.shape[:-1] not in ((), (frames,)):
        raise TalkingFacesError(f"FLAME shape of shape {shape.shape}; pass (S,) or ({frames}, S) with S <= 300")
    if pose.shape != (frames, 3 * num_joints):
        raise TalkingFacesError(f"FLAME pose of shape {pose.shape}; pass ({frames}, {3 * num_joints}), see flame_pose")
    coefficients = np.zeros((frames, model.shapedirs.shape[2]))
    coefficients[:, : shape.shape[-1]] = shape  # (S,) broadcasts over frames
    coefficients[:, SHAPE_COMPONENTS : SHAPE_COMPONENTS + num_expressions] = expression
    blendshapes = coefficients @ model.shapedirs.reshape(num_vertices * 3, -1).T
    v_shaped = model.v_template + blendshapes.reshape(frames, num_vertices, 3)
    joints = model.J_regressor @ v_shaped  # (T, J, 3)

    rotations = rodrigues(pose.reshape(frames, num_joints, 3))
    pose_feature = (rotations[:, 1:] - np.eye(3)).reshape(frames, -1)
    correctives = pose_feature @ model.posedirs.reshape(num_vertices * 3, -1).T
    v_posed = v_shaped + correctives.reshape(frames, num_vertices, 3)

    # Each joint's world transform x -> R x + t. A joint rotates about its rest position c:
    # locally x -> R_j (x - c) + c, composed after its parent's transform. (At rest t is exactly 0.)
    world_r = np.empty_like(rotations)
    world_t = np.empty_like(joints)
    for j in range(num_joints):
        local_t = joints[:, j] - np.einsum("tab,tb->ta", rotations[:, j], joints[:, j])
        parent = model.parents[j]
        if parent < 0:
            world_r[:, j], world_t[:, j] = rotations[:, j], local_t
        else:
            world_r[:, j] = world_r[:, parent] @ rotations[:, j]
            world_t[:, j] = np.einsum("tab,tb->ta", world_r[:, parent], local_t) + world_t[:, parent]
    vertices = np.zeros_like(v_posed)
    for j in range(num_joints):  # skinning, one joint at a time to keep memory at (T, V, 3)
        moved = v_posed @ world_r[:, j].transpose(0, 2, 1) + world_t[:, j, None]
        vertices += model.weights[:, j, None] * moved
    return vertices
