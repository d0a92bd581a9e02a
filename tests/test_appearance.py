import numpy as np
import pytest
import trimesh

from talking_faces.appearance import IRIS, PUPIL, SCLERA, SKIN, eye_albedo, vertex_albedo
from talking_faces.aus import AU_INDEX
from talking_faces.character import default_character_landmarks, load_default_character
from talking_faces.render import FaceRenderer
from talking_faces.rig import build_rig_basis


def test_eye_albedo_puts_pupil_and_iris_at_the_front_pole():
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.012)
    vertices = np.asarray(sphere.vertices) + [0.03, 0.02, 0.03]
    colours = eye_albedo(vertices)
    front, back = int(np.argmax(vertices[:, 2])), int(np.argmin(vertices[:, 2]))
    np.testing.assert_array_equal(colours[front], PUPIL)
    np.testing.assert_array_equal(colours[back], SCLERA)
    dark = np.all(colours == IRIS, axis=1) | np.all(colours == PUPIL, axis=1)
    # the iris disc covers 1 - cos(32 deg) of the sphere's two halves: about 7.6 % of its area
    assert dark.mean() == pytest.approx((1 - np.cos(np.deg2rad(32))) / 2, abs=0.02)


def test_default_character_gets_eyes_and_lips_and_other_meshes_skin():
    head, landmarks = load_default_character(), default_character_landmarks()
    albedo = vertex_albedo(head.vertices, head.faces)
    assert albedo.shape == (head.num_vertices, 3) and albedo.dtype == np.float32
    for side in ("l", "r"):
        eye = landmarks.indices[f"eyeball_{side}"]
        assert np.all(albedo[eye].sum(axis=1) != SKIN.sum())
    lips = landmarks.indices["inner_lip_loop"]
    assert np.all(albedo[lips, 0] / albedo[lips, 2] > SKIN[0] / SKIN[2] * 1.1)  # redder than skin
    forehead = int(np.argmax(head.vertices[:, 1]))
    np.testing.assert_array_equal(albedo[forehead], SKIN)
    blob = trimesh.creation.icosphere(subdivisions=2, radius=0.1)
    np.testing.assert_array_equal(vertex_albedo(np.asarray(blob.vertices), np.asarray(blob.faces)), np.repeat(SKIN[None], len(blob.vertices), 0))


def test_gaze_moves_the_rendered_iris():
    head = load_default_character()
    offsets = build_rig_basis(head).offsets
    with FaceRenderer(head.vertices, head.faces, size=384, albedo=vertex_albedo(head.vertices, head.faces)) as renderer:
        neutral = renderer.render(head.vertices)
        looking = renderer.render(head.vertices + offsets[AU_INDEX["AU61"]])  # eyes turn to the subject's left
    def iris_columns(image):
        dark = image.sum(axis=2) < 140  # iris and pupil: darker than skin and the background
        dark[: image.shape[0] // 4] = dark[image.shape[0] // 2 :] = False  # the eye band only
        return np.nonzero(dark)[1]
    still, turned = iris_columns(neutral), iris_columns(looking)
    assert still.size > 20 and turned.size > 20
    # the subject's left is the image's right: the dark pixels move right
    assert turned.mean() > still.mean() + 1.0
    without = FaceRenderer(head.vertices, head.faces, size=384)
    assert (iris_columns(without.render(head.vertices)).size < still.size / 4)
    without.close()
