"""FLAME model loading (without chumpy) and linear blend skinning, and FLAME-parameter datasets."""

from __future__ import annotations

import dataclasses
import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
from test_eval_synth import write_wav

from talking_faces.errors import TalkingFacesError
from talking_faces.data import read_dataset
from talking_faces.data.flame import flame_pose, flame_vertices, load_flame_model, rodrigues

JAW_ONLY, HALF_JAW, ROOT_ONLY = 0, 1, 2  # vertex roles in the small model's skinning weights


class Ch:
    """Stands for chumpy.ch.Ch while pickling: like chumpy, its value is the `x` of its __dict__."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = x
        self._dirty_vars = set()
        self._itr = None


class Select:
    """Stands for chumpy.reordering.Select: an expression with a chumpy operand, no stored value."""

    def __init__(self, a: Ch, idxs: np.ndarray) -> None:
        self.a = a
        self.idxs = idxs


class _System:
    def __reduce__(self):
        return (os.system, ("true",))


def model_arrays(num_vertices: int, seed: int = 0) -> dict:
    """FLAME-format arrays: 5 joints (root, neck, jaw, eyes), 300 shape + 100 expression components."""
    rng = np.random.default_rng(seed)
    weights = np.zeros((num_vertices, 5))
    weights[:, 1] = 1.0  # the neck by default
    weights[JAW_ONLY] = [0, 0, 1, 0, 0]
    weights[HALF_JAW] = [0, 0.5, 0.5, 0, 0]  # dyadic, so sums are exact
    weights[ROOT_ONLY] = [1, 0, 0, 0, 0]
    regressor = np.abs(rng.normal(size=(5, num_vertices))) * (rng.random((5, num_vertices)) < 0.5)
    regressor /= regressor.sum(axis=1, keepdims=True)
    return {
        "v_template": rng.normal(scale=0.1, size=(num_vertices, 3)),
        "shapedirs": rng.normal(scale=1e-3, size=(num_vertices, 3, 400)),
        "posedirs": rng.normal(scale=1e-3, size=(num_vertices, 3, 36)),
        "J_regressor": scipy.sparse.csc_matrix(regressor),
        "kintree_table": np.array([[2**32 - 1, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64),
        "weights": weights,
        "f": rng.integers(0, num_vertices, size=(2 * num_vertices, 3)).astype(np.uint32),
        "J": rng.normal(size=(5, 3)),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }


def write_model(path: Path, arrays: dict, monkeypatch: pytest.MonkeyPatch, protocol: int = 2) -> Path:
    """Pickle like FLAME's generic_model.pkl: `shapedirs` a chumpy.ch.Ch, `J_regressor` a scipy CSC."""
    chumpy, ch, reordering = (types.ModuleType(n) for n in ("chumpy", "chumpy.ch", "chumpy.reordering"))
    ch.Ch, reordering.Select = Ch, Select
    with monkeypatch.context() as patch:
        for module in (chumpy, ch, reordering):
            patch.setitem(sys.modules, module.__name__, module)
        for cls, module in ((Ch, ch), (Select, reordering)):
            patch.setattr(cls, "__module__", module.__name__)
        wrapped = {k: Ch(v) if k == "shapedirs" else v for k, v in arrays.items()}
        path.write_bytes(pickle.dumps(wrapped, protocol=protocol))
    return path


@pytest.fixture
def small(tmp_path, monkeypatch):
    """(the model as loaded, the arrays it was written from), 8 vertices."""
    arrays = model_arrays(8)
    return load_flame_model(write_model(tmp_path / "generic_model.pkl", arrays, monkeypatch)), arrays


def rotation_x(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


@pytest.mark.parametrize("protocol", [1, 2])
def test_model_loads_without_chumpy(tmp_path, monkeypatch, protocol):
    arrays = model_arrays(8)
    model = load_flame_model(write_model(tmp_path / "m.pkl", arrays, monkeypatch, protocol))
    np.testing.assert_array_equal(model.shapedirs, arrays["shapedirs"])
    np.testing.assert_array_equal(model.J_regressor, arrays["J_regressor"].toarray())
    np.testing.assert_array_equal(model.v_template, arrays["v_template"])
    np.testing.assert_array_equal(model.parents, [-1, 0, 1, 1, 1])
    assert model.shapedirs.dtype == np.float64 and model.faces.shape == (16, 3) and model.num_expressions == 100


def test_zero_parameters_give_the_template(small):
    model, arrays = small
    vertices = flame_vertices(model, None, np.zeros((3, 100)), np.zeros((3, 15)))
    assert vertices.shape == (3, 8, 3)
    np.testing.assert_array_equal(vertices, np.broadcast_to(arrays["v_template"], (3, 8, 3)))


def test_shape_and_expression_are_linear_blendshapes(small):
    model, arrays = small
    rng = np.random.default_rng(1)
    shape, expression = rng.normal(size=7), rng.normal(size=(4, 20))
    dirs = arrays["shapedirs"]
    expected = arrays["v_template"] + dirs[..., :7] @ shape + np.einsum("vck,tk->tvc", dirs[..., 300:320], expression)
    vertices = flame_vertices(model, shape, expression, np.zeros((4, 15)))
    np.testing.assert_allclose(vertices, expected, rtol=0, atol=1e-15)
    per_frame = flame_vertices(model, np.tile(shape, (4, 1)), expression, np.zeros((4, 15)))
    np.testing.assert_allclose(per_frame, expected, rtol=0, atol=1e-15)


def test_rodrigues_matches_a_rotation_about_x():
    np.testing.assert_allclose(rodrigues(np.array([0.3, 0, 0])), rotation_x(0.3), atol=1e-15)
    axis = np.array([1.0, 2.0, -2.0]) / 3
    r = rodrigues(0.7 * axis)
    np.testing.assert_allclose(r @ axis, axis, atol=1e-15)  # the axis is fixed
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-15)
    np.testing.assert_array_equal(rodrigues(np.zeros((2, 3))), np.broadcast_to(np.eye(3), (2, 3, 3)))


def test_jaw_rotates_only_jaw_weighted_vertices_about_the_jaw_joint(small):
    model = dataclasses.replace(small[0], posedirs=np.zeros_like(small[0].posedirs))
    template = model.v_template
    jaw_joint = model.J_regressor[2] @ template
    moved = flame_vertices(model, None, np.zeros((1, 50)), flame_pose(np.array([[0.3, 0, 0]])))[0]
    rotated = (template - jaw_joint) @ rotation_x(0.3).T + jaw_joint
    np.testing.assert_allclose(moved[JAW_ONLY], rotated[JAW_ONLY], rtol=0, atol=1e-15)
    np.testing.assert_allclose(moved[HALF_JAW], 0.5 * (template[HALF_JAW] + rotated[HALF_JAW]), rtol=0, atol=1e-15)
    others = np.setdiff1d(np.arange(8), [JAW_ONLY, HALF_JAW])
    np.testing.assert_array_equal(moved[others], template[others])
    assert np.abs(moved[JAW_ONLY] - template[JAW_ONLY]).max() > 1e-3


def test_global_rotation_turns_the_head_about_the_root_joint(small):
    model = dataclasses.replace(small[0], posedirs=np.zeros_like(small[0].posedirs))
    template, regressor = model.v_template, model.J_regressor
    root, jaw_joint = regressor[0] @ template, regressor[2] @ template
    turn = np.array([[0.0, 0.4, 0.0]])
    moved = flame_vertices(model, None, np.zeros((1, 50)), flame_pose(np.array([[0.3, 0, 0]]), global_rotation=turn))[0]
    g = rodrigues(turn[0])
    jaw_local = (template[JAW_ONLY] - jaw_joint) @ rotation_x(0.3).T + jaw_joint
    np.testing.assert_allclose(moved[JAW_ONLY], (jaw_local - root) @ g.T + root, rtol=0, atol=1e-15)
    np.testing.assert_allclose(moved[ROOT_ONLY], (template[ROOT_ONLY] - root) @ g.T + root, rtol=0, atol=1e-15)


def test_pose_correctives_follow_the_jaw_rotation(small):
    model, arrays = small
    moved = flame_vertices(model, None, np.zeros((1, 50)), flame_pose(np.array([[0.3, 0, 0]])))[0]
    # joints 1..4 (neck, jaw, eyes) each give 9 features R - I; only the jaw's (features 9..17) is nonzero
    feature = np.zeros(36)
    feature[9:18] = (rotation_x(0.3) - np.eye(3)).ravel()
    corrected = arrays["v_template"] + arrays["posedirs"] @ feature
    np.testing.assert_allclose(moved[ROOT_ONLY], corrected[ROOT_ONLY], rtol=0, atol=1e-15)  # the root stays put
    assert np.abs(corrected - arrays["v_template"]).max() > 1e-4


def homogeneous_lbs(arrays: dict, shape: np.ndarray, expression: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """Textbook LBS for one frame with 4x4 matrices: chain the joints' [R | joint offset] transforms,
    remove each joint's rest position, blend the matrices per vertex."""
    dirs = arrays["shapedirs"]
    blend = dirs[..., : shape.size] @ shape + dirs[..., 300 : 300 + expression.size] @ expression
    shaped = arrays["v_template"] + blend
    joints = arrays["J_regressor"].toarray() @ shaped
    rotations = [rodrigues(p) for p in pose.reshape(5, 3)]
    posed = shaped + arrays["posedirs"] @ np.concatenate([(r - np.eye(3)).ravel() for r in rotations[1:]])
    parents = [None, 0, 1, 1, 1]
    world = []
    for j, parent in enumerate(parents):
        local = np.eye(4)
        local[:3, :3] = rotations[j]
        local[:3, 3] = joints[j] - (joints[parent] if parent is not None else 0)
        world.append(local if parent is None else world[parent] @ local)
    skinning = []
    for j, w in enumerate(world):
        rest = np.eye(4)
        rest[:3, 3] = -joints[j]
        skinning.append(w @ rest)
    blended = np.einsum("vj,jab->vab", arrays["weights"], np.stack(skinning))
    return np.einsum("vab,vb->va", blended, np.concatenate([posed, np.ones((len(posed), 1))], axis=1))[:, :3]


def test_full_pose_matches_textbook_homogeneous_lbs(tmp_path, monkeypatch):
    arrays = model_arrays(8)
    arrays["weights"] = np.random.default_rng(2).dirichlet(np.ones(5), size=8)  # every joint, any fraction
    model = load_flame_model(write_model(tmp_path / "m.pkl", arrays, monkeypatch))
    rng = np.random.default_rng(3)
    shape, expression, pose = rng.normal(size=(2, 10)), rng.normal(size=(2, 30)), rng.normal(scale=0.4, size=(2, 15))
    expected = [homogeneous_lbs(arrays, shape[t], expression[t], pose[t]) for t in range(2)]
    np.testing.assert_allclose(flame_vertices(model, shape, expression, pose), expected, rtol=0, atol=1e-14)


def test_restricted_unpickler_still_refuses_code(tmp_path, monkeypatch):
    arrays = model_arrays(8)
    arrays["weights"] = _System()
    with pytest.raises(TalkingFacesError, match=r"refusing to load (posix|nt)\.system"):
        load_flame_model(write_model(tmp_path / "evil.pkl", arrays, monkeypatch))
    reconstruct_set = tmp_path / "set.pkl"  # copyreg._reconstructor(set, object, None): not an allowed object
    reconstruct_set.write_bytes(b"ccopy_reg\n_reconstructor\n(c__builtin__\nset\nc__builtin__\nobject\nNtR.")
    with pytest.raises(TalkingFacesError, match="refusing to load copyreg._reconstructor for set"):
        load_flame_model(reconstruct_set)


def test_bad_model_files_are_named(tmp_path, monkeypatch):
    with pytest.raises(TalkingFacesError, match="FLAME model not found: .*nowhere.pkl; pass --flame-model"):
        load_flame_model(tmp_path / "nowhere.pkl")
    arrays = model_arrays(8)
    del arrays["posedirs"]
    with pytest.raises(TalkingFacesError, match=r"m.pkl is not a FLAME model: it lacks posedirs"):
        load_flame_model(write_model(tmp_path / "m.pkl", arrays, monkeypatch))
    arrays = model_arrays(8)
    arrays["weights"] = arrays["weights"][:, :4]
    with pytest.raises(TalkingFacesError, match=r"'weights' has shape \(8, 4\), expected \(8, 5\)"):
        load_flame_model(write_model(tmp_path / "m.pkl", arrays, monkeypatch))
    arrays = model_arrays(8)
    arrays["posedirs"] = Select(Ch(arrays["posedirs"]), np.arange(3))
    with pytest.raises(TalkingFacesError, match=r"m.pkl\['posedirs'\]: A pickled chumpy.reordering.Select holds no"):
        load_flame_model(write_model(tmp_path / "m.pkl", arrays, monkeypatch))


# --- datasets stored as FLAME parameters (5023-vertex model) ---


@pytest.fixture(scope="module")
def flame5023(tmp_path_factory):
    """(path of a 5023-vertex FLAME-format pickle, the model as loaded)."""
    path = tmp_path_factory.mktemp("flame") / "generic_model.pkl"
    with pytest.MonkeyPatch.context() as patch:
        write_model(path, model_arrays(5023, seed=3), patch)
    return path, load_flame_model(path)


def write_emote_params(root: Path, frames: int = 6) -> np.ndarray:
    """One EMOTE/ProbTalk3D param sequence, M003_028_6_2 (pred-test); returns its (T, 403) parameters."""
    rng = np.random.default_rng(4)
    params = np.concatenate([np.tile(rng.normal(size=300), (frames, 1)), rng.normal(size=(frames, 100)),
                             rng.normal(scale=0.1, size=(frames, 3))], axis=1)
    (root / "param").mkdir(parents=True)
    np.save(root / "param" / "M003_028_6_2.npy", params[None].astype(np.float32))
    write_wav(root / "wav" / "M003_028_6_2.wav", frames / 25)
    (root / "templates.pkl").write_bytes(pickle.dumps({"M003": np.zeros((5023, 3))}))
    return params.astype(np.float32).astype(np.float64)


def write_lgldm_params(root: Path, frames: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """One LG-LDM sequence (M037, test split) as FLAME parameters; returns (expression (T, 50), pose (T, 6))."""
    rng = np.random.default_rng(5)
    expression, pose = rng.normal(size=(frames, 50)), rng.normal(scale=0.1, size=(frames, 6))
    (root / "FLAME_ALL" / "M037").mkdir(parents=True)
    np.savez(root / "FLAME_ALL" / "M037" / "M037-surprised-level_3-001.npz", expression=expression, pose=pose)
    write_wav(root / "AUDIO" / "M037" / "surprised" / "level_3" / "001.wav", frames / 25)
    return expression, pose


def test_emote_param_layout_is_evaluated(tmp_path, flame5023):
    path, model = flame5023
    params = write_emote_params(tmp_path / "mead")
    (seq,) = read_dataset("mead", tmp_path / "mead", "pred-test", flame_model=path)
    expected = flame_vertices(model, params[:, :300], params[:, 300:400], flame_pose(params[:, 400:]))
    vertices = seq.load_vertices()
    assert vertices.shape == (6, 5023, 3) and vertices.dtype == np.float64
    np.testing.assert_array_equal(vertices, expected)
    assert np.abs(vertices - model.v_template).max() > 1e-3  # parameters do move the mesh


def test_lgldm_layout_is_evaluated_with_the_model_template(tmp_path, flame5023):
    path, model = flame5023
    expression, pose = write_lgldm_params(tmp_path / "MEAD")
    (seq,) = read_dataset("mead", tmp_path / "MEAD", flame_model=path)
    np.testing.assert_array_equal(seq.template, model.v_template)  # no FLAME_template.npy: FLAME at zero
    expected = flame_vertices(model, None, expression, flame_pose(pose[:, 3:], global_rotation=pose[:, :3]))
    np.testing.assert_array_equal(seq.load_vertices(), expected)
    with pytest.raises(TalkingFacesError, match="FLAME_template.npy is missing"):
        read_dataset("mead", tmp_path / "MEAD")


def test_parameter_files_of_unexpected_shape_are_named(tmp_path, flame5023, monkeypatch):
    path, _ = flame5023
    root = tmp_path / "mead"
    write_emote_params(root)
    np.save(root / "param" / "M003_028_6_2.npy", np.zeros((1, 6, 400)))
    with pytest.raises(TalkingFacesError, match=r"M003_028_6_2.npy: expected FLAME parameters of shape \(1, T, 403\) "
                                                r"or \(T, 403\) .*got \(1, 6, 400\)"):
        read_dataset("mead", root, "pred-test", flame_model=path)
    lgldm = tmp_path / "MEAD"
    write_lgldm_params(lgldm)
    npz = lgldm / "FLAME_ALL" / "M037" / "M037-surprised-level_3-001.npz"
    np.savez(npz, expression=np.zeros((5, 50)), pose=np.zeros((5, 3)))
    with pytest.raises(TalkingFacesError, match=r"001.npz: expected FLAME parameters `expression` \(T, E\) and `pose` "
                                                r"\(T, 6\) .*got \{'expression': \(5, 50\), 'pose': \(5, 3\)\}"):
        read_dataset("mead", lgldm, flame_model=path)
    np.savez(npz, expression=np.zeros((5, 120)), pose=np.zeros((5, 6)))
    with pytest.raises(TalkingFacesError, match="001.npz has 120 expression parameters but .* only 100"):
        read_dataset("mead", lgldm, flame_model=path)
    small = write_model(tmp_path / "small.pkl", model_arrays(8), monkeypatch)
    with pytest.raises(TalkingFacesError, match="small.pkl has 8 vertices; the MEAD datasets use FLAME's 5023"):
        read_dataset("mead", lgldm, flame_model=small)
    with pytest.raises(TalkingFacesError, match="FLAME model not found"):
        read_dataset("mead", lgldm, flame_model=tmp_path / "missing.pkl")
