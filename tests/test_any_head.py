"""Loading, landmarks and the AU rig on heads the project generates from its bundled character."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import head_variants as hv  # noqa: E402
from talking_faces.aus import AU_INDEX, emotion_weights
from talking_faces.errors import TalkingFacesError
from talking_faces.head_frame import HeadFrame, detect_head_frame
from talking_faces.head_landmarks import WELDED_LIPS_WARNING, analyse_head
from talking_faces.identity import Identity, load_identity
from talking_faces.landmarks import connected_components
from talking_faces.rig import build_rig_basis

# Landmarks placed by construction in the character, and detected on every variant within these distances (mm).
TIGHT = ("mouth_corner_l", "mouth_corner_r", "upper_lip_centre", "lower_lip_centre", "eye_centre_l", "eye_centre_r",
         "eye_inner_l", "eye_outer_l", "nose_tip", "chin", "jaw_hinge_l", "jaw_hinge_r")
LOOSE = ("brow_inner_l", "brow_mid_l", "brow_outer_r", "ala_l", "ala_r")  # soft features: placed by rule, not by construction


def _variants() -> dict:
    v, f = hv.character()
    nv, nf = hv.without_eyeballs(v, f)
    wv, wf = hv.welded_lips(v, f)
    bv, bf = hv.mouth_bag(v, f)
    sv, sf = hv.eye_sockets(*hv.mouth_bag(v, f))
    return {
        "z_up_cm": (hv.to_user(v, hv.Z_UP, 100.0), f, hv.Z_UP, 100.0),
        "mm": (hv.to_user(v, np.eye(3), 1000.0), f, np.eye(3), 1000.0),
        "reordered_z_up": (hv.to_user(hv.reorder(v, f)[0], hv.Z_UP, 1.0), hv.reorder(v, f)[1], hv.Z_UP, 1.0),
        "no_eyeballs": (nv, nf, np.eye(3), 1.0),
        "welded_lips": (wv, wf, np.eye(3), 1.0),
        "mouth_bag_mm": (hv.to_user(bv, np.eye(3), 1000.0), bf, np.eye(3), 1000.0),
        "sockets_z_up_cm": (hv.to_user(sv, hv.Z_UP, 100.0), sf, hv.Z_UP, 100.0),
    }


VARIANTS = _variants()


@pytest.mark.parametrize("name", list(VARIANTS))
def test_landmarks_rig_and_happy_on_generated_heads(name):
    vertices, faces, rotation, scale = VARIANTS[name]
    identity = Identity(vertices.astype(np.float32), faces, name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        analysis = analyse_head(identity)
        basis = build_rig_basis(identity)
    # Frame: the canonical frame maps back onto the head's own axes and units.
    np.testing.assert_allclose(analysis.frame.rotation, rotation.T, atol=1e-12)
    assert analysis.frame.scale == pytest.approx(1.0 / scale)
    known = hv.known_points()
    for point in TIGHT:
        assert np.linalg.norm(analysis.landmarks.points[point] - known[point]) < 0.004, point
    for point in LOOSE:
        assert np.linalg.norm(analysis.landmarks.points[point] - known[point]) < 0.008, point
    assert basis.offsets.shape == (32, len(vertices), 3) and basis.template.shape == (len(vertices), 3)
    # happy raises both mouth corners (in the head's own up direction and units), AU26 drops the chin.
    up = rotation @ np.array([0.0, 1.0, 0.0])
    canonical = analysis.frame.to_canonical(vertices)
    corners = [int(np.argmin(np.linalg.norm(canonical - known[c], axis=1))) for c in ("mouth_corner_l", "mouth_corner_r")]
    happy = sum(w * basis.offsets[k] for k, w in emotion_weights("happy", 1.0).items())
    lift_mm = (happy[corners] @ up) / scale * 1000
    assert (lift_mm > 3.0).all() and abs(lift_mm[0] - lift_mm[1]) < 0.2
    chin = int(np.argmin(np.linalg.norm(canonical - known["chin"], axis=1)))
    assert (basis.offsets[AU_INDEX["AU26"], chin] @ up) / scale * 1000 < -5.0
    welded = [str(w.message) for w in caught if str(w.message) == WELDED_LIPS_WARNING]
    assert bool(welded) == (name == "welded_lips")


def test_rig_is_the_same_in_any_frame():
    """The Z-up centimetre head's basis is the canonical basis rotated and scaled: outputs in the user's frame."""
    v, f = hv.character()
    reference = build_rig_basis(Identity(v.astype(np.float32), f, "canonical")).offsets  # bundled landmarks
    user = hv.to_user(v, hv.Z_UP, 100.0)
    offsets = build_rig_basis(Identity(user.astype(np.float32), f, "cm")).offsets
    back = HeadFrame(hv.Z_UP.T, 0.01).to_canonical(offsets)
    # Detected landmarks differ from the bundled ones only in the brows and alae, so the mouth and jaw fields match.
    for au in ("AU12", "AU26", "AU45", "AU25"):
        k = AU_INDEX[au]
        assert np.abs(back[k] - reference[k]).max() < 0.1 * np.abs(reference[k]).max(), au


@pytest.mark.parametrize("sockets", [False, True])
def test_eyes_turn_lids_close_and_clear_the_eyeballs(sockets):
    v, f = hv.eye_sockets(*hv.character()) if sockets else hv.character()
    user = hv.to_user(v, np.eye(3), 1000.0)
    identity = Identity(user.astype(np.float32), f, "mm")
    analysis = analyse_head(identity)
    basis = build_rig_basis(identity)
    points = analysis.frame.to_canonical(user)
    for side in ("l", "r"):
        ball = analysis.landmarks.indices[f"eyeball_{side}"]
        centre = analysis.landmarks.points[f"eye_centre_{side}"]
        radius = np.linalg.norm(points[ball] - centre, axis=1).max()
        turned = analysis.frame.to_canonical(basis.offsets[AU_INDEX["AU61"], ball])
        assert np.linalg.norm(turned, axis=1).max() > 0.002  # the eyeball turns for gaze
        closed = points + analysis.frame.to_canonical(basis.offsets[AU_INDEX["AU45"]])
        up, low = analysis.landmarks.indices[f"upper_lid_{side}"], analysis.landmarks.indices[f"lower_lid_{side}"]
        gap = np.abs(closed[up[1:-1], 1].mean() - closed[low[1:-1], 1].mean())
        assert gap < 0.002  # the lids meet
        skin = connected_components(len(points), f)[0]
        near = skin[np.linalg.norm(points[skin] - centre, axis=1) < 2 * radius]
        assert np.linalg.norm(closed[near] - centre, axis=1).min() > 0.97 * radius  # and stay outside the eyeball


def test_teeth_follow_the_jaw_and_lashes_follow_the_lids():
    v, f = hv.character()
    landmarks = hv.known_points()
    mouth = 0.5 * (landmarks["upper_lip_centre"] + landmarks["lower_lip_centre"])
    import trimesh

    def box(centre, size):
        b = trimesh.creation.box(extents=size)
        return np.asarray(b.vertices) + centre, np.asarray(b.faces)

    parts = [box(mouth + [0, 0.006, -0.012], [0.03, 0.008, 0.01]), box(mouth + [0, -0.006, -0.012], [0.03, 0.008, 0.01]),
             box(landmarks["eye_centre_l"] + [0, 0.012, 0.012], [0.012, 0.001, 0.004])]
    vertices, faces = [v], [f]
    count = len(v)
    ranges = []
    for pv, pf in parts:
        vertices.append(pv)
        faces.append(pf + count)
        ranges.append(np.arange(count, count + len(pv)))
        count += len(pv)
    identity = Identity(np.concatenate(vertices).astype(np.float32), np.concatenate(faces), "with_teeth")
    basis = build_rig_basis(identity)
    jaw = basis.offsets[AU_INDEX["AU26"]]
    upper_teeth, lower_teeth, lash = ranges
    assert np.abs(jaw[upper_teeth]).max() == 0.0
    assert jaw[lower_teeth, 1].max() < -0.002  # lower teeth drop with the jaw, rigidly (all move)
    assert np.abs(basis.offsets[AU_INDEX["AU12"], lower_teeth]).max() == 0.0  # but a smile leaves them
    blink = basis.offsets[AU_INDEX["AU45"], lash]
    assert blink[:, 1].min() < -0.003  # the lash rides down on the upper lid


def test_quad_obj_with_uv_seams_and_materials_keeps_vertex_order(tmp_path):
    v, f = hv.character()
    path = tmp_path / "head.obj"
    quads = hv.write_quad_obj(path, v, f)
    assert quads > 5000
    identity = load_identity(path)
    assert identity.num_vertices == len(v)
    np.testing.assert_allclose(identity.vertices, v, atol=1e-6)  # every v line, in order, whatever the seams
    np.testing.assert_array_equal(np.sort(np.sort(identity.faces, axis=1), axis=0), np.sort(np.sort(f, axis=1), axis=0))
    assert set(identity.parts) == {"g:skin", "g:eyes", "mtl:skin_material", "mtl:eyes_material"}
    assert len(identity.parts["g:eyes"]) == 2 * 314
    assert build_rig_basis(identity).offsets.shape == (32, len(v), 3)


def test_remeshed_head_keeps_its_count_and_is_rigged():
    v, f = hv.character()
    vertices, faces = hv.remesh(v, f)
    identity = Identity(hv.to_user(vertices, hv.Z_UP, 1.0).astype(np.float32), faces, "remeshed")
    analysis = analyse_head(identity)
    known = hv.known_points()
    for point in ("mouth_corner_l", "nose_tip", "eye_centre_r", "chin"):
        assert np.linalg.norm(analysis.landmarks.points[point] - known[point]) < 0.004, point


def test_frame_detection_over_all_axis_aligned_orientations():
    v, f = hv.character()
    skin = connected_components(len(v), f)[0]
    import itertools

    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            rotation = np.zeros((3, 3))
            rotation[np.arange(3), perm] = signs
            if np.linalg.det(rotation) < 0:
                continue
            frame = detect_head_frame(hv.to_user(v, rotation, 10.0), skin)
            np.testing.assert_array_equal(frame.rotation, rotation.T)
            assert frame.unit == "dm"


def test_landmarks_file_overrides_and_unknown_heads(tmp_path):
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.08)
    ball = Identity(np.asarray(sphere.vertices, np.float32), np.asarray(sphere.faces), "ball")
    with pytest.raises(TalkingFacesError, match="--landmarks"):
        build_rig_basis(ball)
    v, f = hv.welded_lips(*hv.character())
    known = hv.known_points()
    import json

    corners = {k: [float(c) for c in known[k]] for k in ("mouth_corner_l", "mouth_corner_r")}
    (tmp_path / "lm.json").write_text(json.dumps({"points": corners}))
    from talking_faces.head_landmarks import read_landmarks_file

    given = read_landmarks_file(tmp_path / "lm.json", v)
    analysis = analyse_head(Identity(v.astype(np.float32), f, "welded"), given)
    assert np.linalg.norm(analysis.landmarks.points["mouth_corner_l"] - known["mouth_corner_l"]) < 1e-9
    (tmp_path / "bad.json").write_text('{"points": {"nose": 3}}')
    with pytest.raises(TalkingFacesError, match="unknown landmark 'nose'"):
        read_landmarks_file(tmp_path / "bad.json", v)


def test_flame_in_any_frame_is_detected_like_flame(shared_fixture):
    """The general detector on a FLAME head (a mesh it was not built for) lands near the FLAME detector's points."""
    from talking_faces.landmarks import POINT_NAMES, detect_flame_landmarks

    flame = load_identity(shared_fixture("flame_sample.ply"))
    reference = detect_flame_landmarks(flame.vertices, flame.faces)
    user = hv.to_user(flame.vertices.astype(np.float64), hv.Z_UP, 1000.0)
    identity = Identity(user.astype(np.float32), flame.faces, "flame_z_up_mm")
    analysis = analyse_head(identity)
    assert analysis.frame.unit == "mm"
    for name in POINT_NAMES:
        assert np.linalg.norm(analysis.landmarks.points[name] - reference.points[name]) < 0.004, name
    basis = build_rig_basis(identity)  # a rotated FLAME takes the general path, in the user's frame
    up = hv.Z_UP @ np.array([0.0, 1.0, 0.0])
    corner = int(np.argmin(np.linalg.norm(flame.vertices - reference.points["mouth_corner_l"], axis=1)))
    happy = sum(w * basis.offsets[k, corner] for k, w in emotion_weights("happy", 0.7).items())
    assert happy @ up > 2.0  # mm


def test_glb_and_ply_heads_keep_their_vertex_order(tmp_path):
    from talking_faces.exporters.gltf import write_glb
    from talking_faces.identity import save_mesh

    vertices, faces, _ = hv.reorder(*hv.character(), seed=3)
    write_glb(tmp_path / "head.glb", vertices, faces, np.zeros((0, len(vertices), 3)), [])
    save_mesh(tmp_path / "head.ply", vertices, faces)
    for name in ("head.glb", "head.ply"):
        identity = load_identity(tmp_path / name)
        np.testing.assert_allclose(identity.vertices, vertices, atol=1e-6)
        np.testing.assert_array_equal(identity.faces, faces)
    assert list(load_identity(tmp_path / "head.glb").parts) == ["mesh:head"]


def test_implausible_landmarks_are_refused(tmp_path):
    v, f = hv.character()
    chin = hv.known_points()["chin"]
    given = {"nose_tip": chin - np.array([0.0, 0.03, 0.0])}  # a nose below the chin
    with pytest.raises(TalkingFacesError, match=r"look wrong \(the nose tip not between the eyes and the mouth\).*nose_tip"):
        analyse_head(Identity(v.astype(np.float32), f, "odd"), given)


def test_saved_landmarks_file_is_used_as_it_is(tmp_path):
    from talking_faces.head_landmarks import read_landmarks_file

    vertices, faces, rotation, scale = VARIANTS["z_up_cm"]
    identity = Identity(vertices.astype(np.float32), faces, "cm")
    analysis = analyse_head(identity)
    (tmp_path / "lm.json").write_text(analysis.landmarks_json())
    again = analyse_head(identity, read_landmarks_file(tmp_path / "lm.json", vertices))
    for name, point in analysis.landmarks.points.items():
        np.testing.assert_allclose(again.landmarks.points[name], point, atol=1e-6)
    for name, index in analysis.landmarks.indices.items():
        np.testing.assert_array_equal(again.landmarks.indices[name], index)
    basis = build_rig_basis(identity, landmarks_file=tmp_path / "lm.json")
    np.testing.assert_allclose(basis.offsets, build_rig_basis(identity).offsets, atol=1e-5)
