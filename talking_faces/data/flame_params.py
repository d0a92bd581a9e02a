"""Sequences stored as FLAME parameters, turned into vertices with the user's FLAME model.

    EMOTE / ProbTalk3D  param/<name>.npy     (1, T, 403) or (T, 403): shape 300 + expression 100 + jaw 3;
                                             global rotation 0 (ProbTalk3D's `param_to_vert.py`)
    LG-LDM              FLAME_ALL/.../*.npz  `expression` (T, E) (E = 50) and `pose` (T, 6) = [global 3, jaw 3];
                                             shape 0 (identity removed)

Neck and eyes stay at rest. The model (`generic_model.pkl`, never shipped) must have 5023 vertices;
it is read once per process. Files are checked when the dataset is read; vertices are computed lazily.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, partial
from pathlib import Path

import numpy as np

from talking_faces.errors import TalkingFacesError

from .flame import SHAPE_COMPONENTS, FlameModel, flame_pose, flame_vertices, load_flame_model

FLAME_VERTICES = 5023
EMOTE_WIDTH = SHAPE_COMPONENTS + 100 + 3  # shape, expression, jaw
EMOTE_SHAPE = "(1, T, 403) or (T, 403) (shape 300 + expression 100 + jaw 3)"
LGLDM_SHAPE = "`expression` (T, E) and `pose` (T, 6) = [global 3, jaw 3]"


def flame_vertices_loader(path: Path, flame_model: Path | None) -> Callable[[], np.ndarray]:
    """A loader of the `(T, 5023, 3)` float64 vertices of a FLAME-parameter file (`.npy` EMOTE, `.npz` LG-LDM).

    The model and the file's array shapes are checked now, so a bad file fails when the dataset is read.
    """
    if flame_model is None:
        raise TalkingFacesError(
            f"{path} holds FLAME parameters, not vertices; pass --flame-model generic_model.pkl, or give the "
            "dataset as vertex arrays."
        )
    model = dataset_flame_model(Path(flame_model))
    num_expressions = _parameters(path, mmap=True)["expression"].shape[1]
    if num_expressions > model.num_expressions:
        raise TalkingFacesError(
            f"{path} has {num_expressions} expression parameters but {flame_model} only {model.num_expressions}; "
            "pass a FLAME model with more expression components."
        )
    return partial(_load_vertices, path, Path(flame_model))


def flame_template(flame_model: Path) -> np.ndarray:
    """`(5023, 3)` FLAME at zero shape, expression and pose, i.e. the model's `v_template`."""
    return dataset_flame_model(Path(flame_model)).v_template.copy()


@lru_cache(maxsize=2)
def dataset_flame_model(path: Path) -> FlameModel:
    """The FLAME model at `path`, loaded once per process; raises unless it has 5023 vertices."""
    model = load_flame_model(path)
    if model.num_vertices != FLAME_VERTICES:
        raise TalkingFacesError(
            f"{path} has {model.num_vertices} vertices; the MEAD datasets use FLAME's {FLAME_VERTICES}. "
            "Pass FLAME's generic_model.pkl."
        )
    return model


def _load_vertices(path: Path, flame_model: Path) -> np.ndarray:
    params = _parameters(path)
    pose = flame_pose(params["jaw"], params.get("global_rotation"))
    return flame_vertices(dataset_flame_model(flame_model), params.get("shape"), params["expression"], pose)


def _parameters(path: Path, mmap: bool = False) -> dict[str, np.ndarray]:
    """A parameter file's arrays, shapes checked: `expression` (T, E), `jaw` (T, 3), and `shape` (T, 300)
    (EMOTE) or `global_rotation` (T, 3) (LG-LDM). With `mmap` an `.npy` is only mapped (its header read)."""
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in ("expression", "pose") if key in data}
        else:
            arrays = {"params": np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)}
    except Exception as exc:  # numpy and zipfile raise many types for damaged files
        raise TalkingFacesError(f"Cannot read {path}: {exc}; the file is truncated or corrupt.") from None
    if "params" in arrays:
        params = arrays["params"]
        params = params[0] if params.ndim == 3 and params.shape[0] == 1 else params
        if params.ndim != 2 or params.shape[1] != EMOTE_WIDTH or params.shape[0] == 0:
            got = arrays["params"].shape
            raise TalkingFacesError(f"{path}: expected FLAME parameters of shape {EMOTE_SHAPE}, got {got}.")
        shape, expression, jaw = params[:, :SHAPE_COMPONENTS], params[:, SHAPE_COMPONENTS:-3], params[:, -3:]
        return {"shape": shape, "expression": expression, "jaw": jaw}
    expression, pose = arrays.get("expression"), arrays.get("pose")
    if expression is None or pose is None or expression.ndim != 2 or 0 in expression.shape \
            or pose.shape != (expression.shape[0], 6):
        shapes = {key: value.shape for key, value in arrays.items()}
        raise TalkingFacesError(f"{path}: expected FLAME parameters {LGLDM_SHAPE}, got {shapes or 'neither'}.")
    return {"expression": expression, "jaw": pose[:, 3:], "global_rotation": pose[:, :3]}
