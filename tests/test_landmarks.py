import numpy as np
import pytest
import trimesh

from talking_faces.errors import TalkingFacesError
from talking_faces.landmarks import (
    POINT_NAMES, boundary_loops, connected_components, detect_flame_landmarks, find_landmarks,
)

from conftest import SHARED_FIXTURES

FIXTURES = SHARED_FIXTURES
FLAME_PLY = FIXTURES / "flame_sample.ply"
AUBLENDSET = FIXTURES / "aublendset_sample.npy"


@pytest.fixture(scope="module")
def flame():
    if not FLAME_PLY.is_file():
        pytest.skip("FLAME fixture absent")
    mesh = trimesh.load(FLAME_PLY, process=False)
    return np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int64)


@pytest.fixture(scope="module")
def flame_landmarks(flame):
    return detect_flame_landmarks(*flame)


def _grid(n: int) -> np.ndarray:
    """Faces of an n x n vertex grid (an open square)."""
    j, i = np.meshgrid(np.arange(n - 1), np.arange(n - 1), indexing="ij")
    a = j * n + i
    return np.concatenate([np.stack([a, a + n, a + 1], -1), np.stack([a + 1, a + n, a + n + 1], -1)]).reshape(-1, 3)


def test_boundary_loop_and_components_of_simple_meshes():
    faces = _grid(5)
    loops = boundary_loops(faces)
    assert len(loops) == 1 and len(loops[0]) == 16
    assert set(loops[0].tolist()) == {k for k in range(25) if k // 5 in (0, 4) or k % 5 in (0, 4)}
    two = np.concatenate([faces, faces + 25])
    components = connected_components(50, two)
    assert [len(c) for c in components] == [25, 25]
    assert len(boundary_loops(two)) == 2


def test_flame_topology_landmarks(flame, flame_landmarks):
    vertices, faces = flame
    lm = flame_landmarks
    assert len(lm.indices["inner_lip_loop"]) == 32
    assert len(lm.indices["eyeball_l"]) == len(lm.indices["eyeball_r"]) == 546
    assert lm.indices["eyeball_l"].min() == 3931 and lm.indices["eyeball_r"].min() == 4477  # +x eye is the left
    p = {k: v * 1000 for k, v in lm.points.items()}  # mm
    assert p["nose_tip"][2] == pytest.approx(vertices[:, 2].max() * 1000)
    assert 45 < p["mouth_corner_l"][0] - p["mouth_corner_r"][0] < 60
    assert p["upper_lip_centre"][1] > p["lower_lip_centre"][1]
    assert p["chin"][1] < p["lower_lip_centre"][1] - 20 and p["chin"][2] > 40
    for s in ("l", "r"):
        sign = 1 if s == "l" else -1
        eye = p[f"eye_centre_{s}"]
        assert 25 < sign * eye[0] < 36
        assert sign * (p[f"eye_outer_{s}"][0] - p[f"eye_inner_{s}"][0]) > 18  # outer corner away from the nose
        up, low = vertices[lm.indices[f"upper_lid_{s}"]] * 1000, vertices[lm.indices[f"lower_lid_{s}"]] * 1000
        assert 6 < up[:, 1].max() - low[:, 1].min() < 14  # the eye is open about 9 mm
        for brow in ("brow_inner", "brow_mid", "brow_outer"):
            assert 15 < p[f"{brow}_{s}"][1] - eye[1] < 40
        assert sign * (p[f"brow_outer_{s}"][0] - p[f"brow_inner_{s}"][0]) > 20
        assert p[f"jaw_hinge_{s}"][2] < eye[2] - 20 and sign * p[f"jaw_hinge_{s}"][0] > 45
        assert p[f"ala_{s}"][1] < p["nose_tip"][1] and 10 < sign * p[f"ala_{s}"][0] < 25


def _vertex_of(vertices: np.ndarray, point: np.ndarray) -> int:
    return int(np.argmin(np.linalg.norm(vertices - point, axis=1)))


def test_another_flame_identity_gets_the_same_landmarks(flame, flame_landmarks):
    if not AUBLENDSET.is_file():
        pytest.skip("AUBlendSet fixture absent")
    vertices, faces = flame
    other = np.load(AUBLENDSET)[0].reshape(-1, 3).astype(np.float64)
    assert np.abs(other - vertices).max() > 0.02  # really a different face
    found = detect_flame_landmarks(other, faces)
    for name in ("inner_lip_loop", "upper_lip", "lower_lip", "eyeball_l", "eyeball_r"):
        assert set(found.indices[name]) == set(flame_landmarks.indices[name])
    for s in ("l", "r"):  # rims follow each face's own lids: same corners, similar openings
        for lm, points in ((found, other), (flame_landmarks, vertices)):
            rel = points[np.concatenate([lm.indices[f"upper_lid_{s}"], lm.indices[f"lower_lid_{s}"]])] - lm.points[f"eye_centre_{s}"]
            assert 22 < np.ptp(rel[:, 0]) * 1000 < 30 and 6 < np.ptp(rel[:, 1]) * 1000 < 17
        for corner in ("eye_inner", "eye_outer"):
            a = found.points[f"{corner}_{s}"] - found.points[f"eye_centre_{s}"]
            b = flame_landmarks.points[f"{corner}_{s}"] - flame_landmarks.points[f"eye_centre_{s}"]
            assert np.linalg.norm(a - b) < 0.004
    # Each point lands on (nearly) the same place of the shared topology.
    for name in POINT_NAMES:
        if name.startswith(("jaw_hinge", "eye_centre", "eye_inner", "eye_outer")):
            continue
        vertex = _vertex_of(vertices, flame_landmarks.points[name])
        assert np.linalg.norm(other[vertex] - found.points[name]) < 0.008, name


@pytest.mark.parametrize("scale,shift,noise", [(1.0, (0, 0, 0), 1e-4), (1.3, (0.1, -0.05, 0.2), 0.0), (0.01, (0, 0, 0), 0.0)])
def test_landmarks_follow_scaling_and_noise(flame, flame_landmarks, scale, shift, noise):
    vertices, faces = flame
    rng = np.random.default_rng(0)
    moved = (vertices + rng.normal(0, noise, vertices.shape)) * scale + np.asarray(shift)
    found = detect_flame_landmarks(moved, faces)
    assert set(found.indices["inner_lip_loop"]) == set(flame_landmarks.indices["inner_lip_loop"])
    for name in POINT_NAMES:
        expected = flame_landmarks.points[name] * scale + np.asarray(shift)
        assert np.linalg.norm(found.points[name] - expected) < 0.004 * scale, name


def test_unknown_meshes_raise_a_helpful_error(flame):
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.1)
    with pytest.raises(TalkingFacesError, match="--au-basis"):
        find_landmarks(np.asarray(sphere.vertices), np.asarray(sphere.faces))
    with pytest.raises(TalkingFacesError, match="--au-basis"):
        find_landmarks(flame[0], None)
    with pytest.raises(TalkingFacesError, match="--au-basis"):  # FLAME-sized but no eyeballs
        find_landmarks(flame[0], flame[1][:5000])


def test_default_character_landmarks_are_bundled():
    from talking_faces.character import default_character_landmarks, load_default_character

    head = load_default_character()
    assert find_landmarks(head.vertices, head.faces) is default_character_landmarks()
