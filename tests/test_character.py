import json
from importlib.resources import files

import numpy as np
import pytest
from scipy.spatial import cKDTree

from talking_faces.character import default_character_landmarks, is_default_character, load_default_character
from talking_faces.character_build import build_default_head
from talking_faces.landmarks import INDEX_NAMES, POINT_NAMES, Landmarks, boundary_loops, connected_components


@pytest.fixture(scope="module")
def head():
    return load_default_character()


@pytest.fixture(scope="module")
def landmarks():
    return default_character_landmarks()


def test_default_character_arrays(head):
    assert head.name == "default_head"
    assert head.vertices.dtype == np.float32 and head.faces.dtype == np.int64
    assert 4_000 <= head.num_vertices <= 15_000
    assert head.faces.min() == 0 and head.faces.max() == head.num_vertices - 1
    assert not head.is_flame


def test_size_and_axes_are_flame_like(head, landmarks):
    size = head.vertices.max(axis=0) - head.vertices.min(axis=0)
    assert 0.15 <= size[0] <= 0.20  # width, m
    assert 0.28 <= size[1] <= 0.34  # crown to neck
    assert 0.16 <= size[2] <= 0.24  # nose to back of the head
    skin = head.vertices[: landmarks.indices["eyeball_l"].min()]
    # Facing +z: the nose tip is the front-most point; y up: the eyes are above the mouth.
    assert landmarks.points["nose_tip"][2] == pytest.approx(skin[:, 2].max(), abs=1e-6)
    assert landmarks.points["eye_centre_l"][1] > landmarks.points["upper_lip_centre"][1] + 0.05
    assert landmarks.points["eye_centre_l"][0] > 0 > landmarks.points["eye_centre_r"][0]  # left is +x


def test_mesh_is_exactly_symmetric(head):
    mirrored = head.vertices * np.array([-1.0, 1.0, 1.0], np.float32)
    distance, partner = cKDTree(head.vertices).query(mirrored)
    assert distance.max() < 1e-7
    assert len(np.unique(partner)) == head.num_vertices  # a one-to-one mirror map


def test_inner_lips_are_a_boundary_loop_with_distinct_lips(head, landmarks):
    loops = {frozenset(loop.tolist()) for loop in boundary_loops(head.faces)}
    lips = landmarks.indices["inner_lip_loop"]
    assert frozenset(lips.tolist()) in loops
    upper, lower = landmarks.indices["upper_lip"], landmarks.indices["lower_lip"]
    assert set(upper) & set(lower) == {upper[0], upper[-1]}  # only the corners are shared
    assert len(upper) + len(lower) - 2 == len(lips)
    # The lips are parted at the centre (about 1.8 mm) and open towards the corners' line.
    gap = landmarks.points["upper_lip_centre"][1] - landmarks.points["lower_lip_centre"][1]
    assert 0.0005 < gap < 0.005
    corners = landmarks.points["mouth_corner_l"], landmarks.points["mouth_corner_r"]
    assert 0.04 < corners[0][0] - corners[1][0] < 0.06


def test_eye_openings_are_loops_round_separate_eyeballs(head, landmarks):
    loops = {frozenset(loop.tolist()) for loop in boundary_loops(head.faces)}
    components = connected_components(head.num_vertices, head.faces)
    assert len(components) == 3 and len(components[1]) == len(components[2])
    for side in ("l", "r"):
        rim = np.concatenate([landmarks.indices[f"upper_lid_{side}"], landmarks.indices[f"lower_lid_{side}"][1:-1]])
        assert frozenset(rim.tolist()) in loops
        eyeball = landmarks.indices[f"eyeball_{side}"]
        assert any(np.array_equal(np.sort(c), eyeball) for c in components)
        centre = landmarks.points[f"eye_centre_{side}"]
        np.testing.assert_allclose(head.vertices[eyeball].mean(axis=0), centre, atol=2e-4)
        # The lids sit just outside the eyeball, and the eye is open 8-12 mm at its middle.
        radius = np.linalg.norm(head.vertices[eyeball] - centre, axis=1).max()
        lid_radius = np.linalg.norm(head.vertices[rim] - centre, axis=1)
        assert np.all(lid_radius > radius) and np.all(lid_radius < radius + 0.004)  # corners stand off most
        assert np.median(lid_radius) < radius + 0.001
        upper, lower = head.vertices[landmarks.indices[f"upper_lid_{side}"]], head.vertices[landmarks.indices[f"lower_lid_{side}"]]
        assert 0.008 < upper[:, 1].max() - lower[:, 1].min() < 0.012


def test_bundled_assets_are_what_the_builder_makes(head, landmarks):
    vertices, faces, built = build_default_head()
    np.testing.assert_array_equal(vertices, head.vertices)
    np.testing.assert_array_equal(faces, head.faces)
    for name in POINT_NAMES:
        np.testing.assert_allclose(built.points[name], landmarks.points[name], atol=1e-6)
    for name in INDEX_NAMES:
        np.testing.assert_array_equal(built.indices[name], landmarks.indices[name])


def test_assets_are_small_and_landmarks_complete():
    folder = files("talking_faces.assets")
    assert len((folder / "default_head.npz").read_bytes()) < 1_000_000
    data = json.loads((folder / "default_head_landmarks.json").read_text())
    assert set(data["points"]) == set(POINT_NAMES) and set(data["indices"]) == set(INDEX_NAMES)
    landmarks = Landmarks.from_json(json.dumps(data))
    assert Landmarks.from_json(landmarks.to_json()).to_json() == landmarks.to_json()


def test_default_character_is_recognised_through_a_round_trip(head, tmp_path):
    from talking_faces.identity import load_identity, save_mesh

    path = tmp_path / "head.obj"
    save_mesh(path, head.vertices, head.faces)
    assert is_default_character(load_identity(path).vertices)
    assert not is_default_character(head.vertices * 1.01)
    assert not is_default_character(head.vertices[:100])
