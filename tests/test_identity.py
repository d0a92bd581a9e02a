import numpy as np
import pytest
import trimesh

from talking_faces.errors import TalkingFacesError
from talking_faces.identity import (
    FLAME_NUM_FACES, FLAME_NUM_VERTICES, Identity, load_identity, save_mesh, unit_of_head, warn_unless_metres,
)

from conftest import SHARED_FIXTURES

FIXTURES = SHARED_FIXTURES


def _mesh():
    box = trimesh.creation.icosphere(subdivisions=2, radius=0.1)
    return np.asarray(box.vertices, np.float32), np.asarray(box.faces, np.int64)


@pytest.mark.parametrize("suffix", [".obj", ".ply", ".npz"])
def test_round_trip_keeps_vertex_order(tmp_path, suffix):
    vertices, faces = _mesh()
    rng = np.random.default_rng(0)
    vertices = vertices[rng.permutation(len(vertices))]  # order must survive, not be "fixed"
    path = tmp_path / f"m{suffix}"
    save_mesh(path, vertices, faces)
    identity = load_identity(path)
    assert identity.vertices.dtype == np.float32 and identity.faces.dtype == np.int64
    np.testing.assert_allclose(identity.vertices, vertices, atol=1e-6)
    np.testing.assert_array_equal(identity.faces, faces)
    assert identity.name == "m" and not identity.is_flame


def test_npy_vertices_without_faces(tmp_path):
    vertices, _ = _mesh()
    np.save(tmp_path / "flat.npy", vertices.reshape(-1))
    identity = load_identity(tmp_path / "flat.npy")
    assert identity.faces is None and identity.vertices.shape == vertices.shape


def test_non_finite_vertices_are_rejected(tmp_path):
    vertices, faces = _mesh()
    vertices[5, 1] = np.nan
    np.savez(tmp_path / "nan.npz", vertices=vertices, faces=faces)
    with pytest.raises(TalkingFacesError, match="NaN or infinite .*first: 5"):
        load_identity(tmp_path / "nan.npz")


def test_bad_files(tmp_path):
    with pytest.raises(TalkingFacesError, match="not found"):
        load_identity(tmp_path / "missing.obj")
    (tmp_path / "x.stl").write_text("solid")
    with pytest.raises(TalkingFacesError, match="Unsupported mesh format"):
        load_identity(tmp_path / "x.stl")
    (tmp_path / "corrupt.ply").write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 99\n\x00\x01")
    with pytest.raises(TalkingFacesError, match="corrupt.ply"):
        load_identity(tmp_path / "corrupt.ply")
    vertices, faces = _mesh()
    np.savez(tmp_path / "range.npz", vertices=vertices, faces=faces + len(vertices))
    with pytest.raises(TalkingFacesError, match="face indices run to"):
        load_identity(tmp_path / "range.npz")


def test_flame_fixture_topology():
    path = FIXTURES / "flame_sample.ply"
    if not path.is_file():
        pytest.skip("shared fixture flame_sample.ply is absent")
    identity = load_identity(path)
    assert identity.is_flame and identity.topology == "flame"
    assert identity.vertices.shape == (FLAME_NUM_VERTICES, 3)
    assert identity.faces.shape == (FLAME_NUM_FACES, 3)


@pytest.mark.parametrize("scale, unit", [(1.0, "metres"), (100.0, "centimetres"), (1000.0, "millimetres"), (10.0, None)])
def test_the_unit_of_a_head_is_read_from_its_width(scale, unit):
    vertices, faces = _mesh()  # a sphere 0.2 m across, the width of a head with ears
    assert unit_of_head(vertices * scale) == unit
    if unit in ("centimetres", "millimetres"):
        with pytest.warns(UserWarning, match=rf"looks modelled in {unit}.*scale the mesh by {1 / scale:g}"):
            warn_unless_metres(Identity(vertices * scale, faces, "head"), "FaceFormer")
