"""Exports (.glb, .csv, .json), the ARKit-52 shapes and the fitting solvers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pygltflib
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import head_variants as hv  # noqa: E402
from talking_faces.arkit import ARKIT_FACS, ARKIT_NAMES, arkit_shapes  # noqa: E402
from talking_faces.aus import AU_INDEX, AU_NAMES, emotion_weights  # noqa: E402
from talking_faces.errors import TalkingFacesError  # noqa: E402
from talking_faces.exporters import export_animation, export_rig  # noqa: E402
from talking_faces.exporters.gltf import read_glb  # noqa: E402
from talking_faces.exporters.livelink import HEADER, read_live_link_csv, timecode  # noqa: E402
from talking_faces.identity import Identity  # noqa: E402
from talking_faces.rig import analyse_identity, build_rig_basis  # noqa: E402
from talking_faces.solve import GramSolver, fit_weights, pca_to_tolerance  # noqa: E402

FPS = 25.0


@pytest.fixture(scope="module")
def head():
    """The character as a Z-up centimetre head (a user frame), its rig and analysis."""
    v, f = hv.character()
    identity = Identity(hv.to_user(v, hv.Z_UP, 100.0).astype(np.float32), f, "cm_head")
    analysis = analyse_identity(identity)
    return identity, build_rig_basis(identity, analysis=analysis), analysis


def _speech_weights(frames: int = 40) -> np.ndarray:
    """AU weights of a talking, smiling face: the jaw opens and closes, happy:0.7 throughout."""
    t = np.arange(frames)
    weights = np.zeros((frames, 32), np.float32)
    weights[:, AU_INDEX["AU26"]] = np.clip(np.sin(t / 3.0), 0, None)
    weights[:, AU_INDEX["AU25"]] = 0.5 * np.clip(np.sin(t / 3.0), 0, None)
    weights[:10] = 0.0  # leading silence
    for k, w in emotion_weights("happy", 0.7).items():
        weights[:, k] += w
    return weights


def _vertices(identity, basis, weights, speech=None):
    out = identity.vertices[None] + np.einsum("tk,kvc->tvc", weights, basis.offsets)
    return out if speech is None else out + speech


def test_glb_round_trip_reproduces_the_vertices_in_the_users_frame(head, tmp_path):
    identity, basis, analysis = head
    weights = _speech_weights()
    [report] = export_animation(tmp_path / "a.glb", identity, basis, FPS, au_weights=weights, audio=np.zeros(16000, np.float32), analysis=analysis)
    glb = read_glb(tmp_path / "a.glb")
    np.testing.assert_array_equal(glb["vertices"], identity.vertices)  # user's units, axes and order
    np.testing.assert_array_equal(glb["faces"], identity.faces)
    assert glb["names"] == list(AU_NAMES)
    np.testing.assert_allclose(glb["times"], np.arange(len(weights)) / FPS, atol=1e-6)
    back = glb["vertices"][None] + np.einsum("tk,kvc->tvc", glb["weights"], glb["targets"])
    np.testing.assert_allclose(back, _vertices(identity, basis, weights), atol=1e-4)  # 1 µm in cm
    assert (tmp_path / "a.wav").is_file() and "a.wav" in report.note
    # The node matrix puts the head upright in glTF's frame (metres, Y up, facing +Z).
    gltf = pygltflib.GLTF2().load(str(tmp_path / "a.glb"))
    matrix = np.asarray(gltf.nodes[0].matrix).reshape(4, 4).T
    np.testing.assert_allclose(matrix[:3, :3] @ identity.vertices[0], identity.vertices[0] @ hv.Z_UP / 100.0, atol=1e-7)
    assert gltf.meshes[0].extras["targetNames"] == list(AU_NAMES)


def test_glb_of_learned_offsets_adds_pca_targets_within_a_tenth_of_a_millimetre(head, tmp_path):
    identity, basis, analysis = head
    rng = np.random.default_rng(0)
    frames = 30
    # Offsets outside the AU basis: smooth random fields plus noise below the tolerance.
    fields = rng.normal(size=(4, identity.num_vertices, 3)) * 0.2  # cm
    speech = (np.einsum("tk,kvc->tvc", rng.normal(size=(frames, 4)), fields) + rng.normal(size=(frames, identity.num_vertices, 3)) * 1e-4).astype(np.float32)
    weights = _speech_weights(frames)
    [report] = export_animation(tmp_path / "b.glb", identity, basis, FPS, au_weights=weights, speech_offsets=speech, analysis=analysis)
    glb = read_glb(tmp_path / "b.glb")
    pca = [n for n in glb["names"] if n.startswith("speech_pca_")]
    assert 4 <= len(pca) <= 8 and glb["names"][:32] == list(AU_NAMES)
    back = glb["vertices"][None] + np.einsum("tk,kvc->tvc", glb["weights"], glb["targets"])
    error_mm = 10.0 * np.linalg.norm(back - _vertices(identity, basis, weights, speech), axis=-1).max()
    assert error_mm < 0.1
    assert f"{len(pca)} PCA morph targets" in report.note and "max error" in report.note


def test_json_curves(head, tmp_path):
    identity, basis, analysis = head
    weights = _speech_weights()
    export_animation(tmp_path / "c.json", identity, basis, FPS, au_weights=weights, analysis=analysis)
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["fps"] == FPS and data["aus"] == list(AU_NAMES) and data["frames"] == len(weights)
    np.testing.assert_allclose(np.asarray(data["weights"]), weights, atol=1e-6)


def test_csv_curves_drive_our_arkit_rig_to_the_same_mouth_opening(head, tmp_path):
    identity, basis, analysis = head
    weights = _speech_weights()
    [report] = export_animation(tmp_path / "d.csv", identity, basis, FPS, au_weights=weights, analysis=analysis)
    header = (tmp_path / "d.csv").read_text().splitlines()[0].split(",")
    assert tuple(header) == HEADER and len(header) == 2 + 52 + 9
    curves = read_live_link_csv(tmp_path / "d.csv")
    assert (curves["BlendShapeCount"] == 61).all()
    arkit = np.stack([curves[name[0].upper() + name[1:]] for name in ARKIT_NAMES], axis=1)
    assert arkit.min() >= 0.0 and arkit.max() <= 1.0
    assert arkit[:10].max() < 1e-3 or arkit[:10, ARKIT_NAMES.index("jawOpen")].max() < 1e-3  # rest in silence
    assert arkit[:, ARKIT_NAMES.index("mouthSmileLeft")].min() > 0.5  # happy smiles
    shapes = arkit_shapes(identity, basis.offsets, analysis)
    driven = identity.vertices[None] + np.einsum("tj,jvc->tvc", arkit, shapes)
    reference = _vertices(identity, basis, weights)
    up = hv.Z_UP @ np.array([0.0, 1.0, 0.0])
    lm = analysis.landmarks
    canonical = analysis.frame.to_canonical(identity.vertices)
    upper, lower = (int(np.argmin(np.linalg.norm(canonical - lm.points[k], axis=1))) for k in ("upper_lip_centre", "lower_lip_centre"))

    def opening_mm(frames):
        return 10.0 * ((frames[:, upper] - frames[:, lower]) @ up)

    expected, got = opening_mm(reference), opening_mm(driven)
    assert expected.max() > 5.0  # the jaw really opens
    np.testing.assert_allclose(got, expected, atol=0.3 + 0.05 * expected.max())
    assert "ARKit fit RMS residual" in report.note


def test_speech_offsets_are_solved_to_au_weights(head):
    identity, basis, _ = head
    weights = np.abs(np.random.default_rng(1).normal(size=(20, 32))) * (np.random.default_rng(2).random((20, 32)) > 0.6)
    offsets = np.einsum("tk,kvc->tvc", weights, basis.offsets)
    fitted, residual = fit_weights(offsets, basis.offsets)
    reproduced = np.einsum("tk,kvc->tvc", fitted, basis.offsets)
    assert np.abs(reproduced - offsets).max() < 1e-3  # 10 µm in cm (AU30L/R or 61/62 pairs may trade)
    assert residual.max() < 1e-3


def test_gram_solver_and_pca_against_closed_forms():
    rng = np.random.default_rng(0)
    shapes = rng.normal(size=(6, 50, 3))
    truth = np.abs(rng.normal(size=(8, 6)))
    x = np.einsum("tk,kvc->tvc", truth, shapes)
    solver = GramSolver(shapes)
    rhs = np.einsum("tvc,kvc->tk", x, shapes)
    np.testing.assert_allclose(solver.solve(rhs), truth, atol=1e-4)
    # A target no non-negative mix reaches: minus one shape. The best non-negative answer is 0.
    np.testing.assert_allclose(solver.solve(-rhs[:1]), 0.0, atol=1e-9)
    low_rank = np.einsum("tk,kvc->tvc", rng.normal(size=(12, 3)), shapes[:3])
    components, coefficients, error = pca_to_tolerance(low_rank, 1e-6)
    assert components.shape[0] == 3 and error < 1e-6 and np.abs(coefficients).max() <= 1.0 + 1e-6


def test_arkit_table_and_sides(head):
    identity, basis, analysis = head
    assert len(ARKIT_NAMES) == 52 == len(set(ARKIT_NAMES)) and set(ARKIT_FACS) == set(ARKIT_NAMES)
    shapes = arkit_shapes(identity, basis.offsets, analysis)
    k = {name: j for j, name in enumerate(ARKIT_NAMES)}
    for left, right, au in (("mouthSmileLeft", "mouthSmileRight", "AU12"), ("eyeBlinkLeft", "eyeBlinkRight", "AU45"), ("browDownLeft", "browDownRight", "AU4")):
        np.testing.assert_allclose(shapes[k[left]] + shapes[k[right]], basis.offsets[AU_INDEX[au]], atol=1e-5)
    # mouthSmileLeft moves the subject's left corner (+x canonical), not the right one.
    canonical = analysis.frame.to_canonical(identity.vertices)
    corners = [int(np.argmin(np.linalg.norm(canonical - analysis.landmarks.points[c], axis=1))) for c in ("mouth_corner_l", "mouth_corner_r")]
    lift = analysis.frame.to_canonical(shapes[k["mouthSmileLeft"], corners])[:, 1]
    assert lift[0] > 0.003 and abs(lift[1]) < 1e-4
    # jawOpen opens: the chin goes down.
    chin = int(np.argmin(np.linalg.norm(canonical - analysis.landmarks.points["chin"], axis=1)))
    assert analysis.frame.to_canonical(shapes[k["jawOpen"], chin])[1] < -0.015


def test_timecodes_and_bad_paths(head, tmp_path):
    assert timecode(0, 30) == "00:00:00:00.000" and timecode(31, 30) == "00:00:01:01.000"
    assert timecode(30 * 3661 + 29, 30) == "01:01:01:29.000"
    identity, basis, analysis = head
    with pytest.raises(TalkingFacesError, match="unknown format '.fbx'"):
        export_animation(tmp_path / "x.fbx", identity, basis, FPS, au_weights=_speech_weights())
    with pytest.raises(TalkingFacesError, match="Nothing to export"):
        export_animation(tmp_path / "x.json", identity, basis, FPS)
    assert not list(tmp_path.iterdir())
    from talking_faces.exporters import check_export_path

    with pytest.raises(TalkingFacesError, match="would overwrite the input"):
        check_export_path(tmp_path / "speech.glb", inputs=(tmp_path / "speech.wav",))


def _validator() -> tuple[str, dict] | None:
    """node and the Khronos glTF validator (npm `gltf-validator`), found via NODE_PATH or the global npm root."""
    node = shutil.which("node")
    if node is None:
        return None
    paths = [p for p in os.environ.get("NODE_PATH", "").split(os.pathsep) if p]
    npm = shutil.which("npm")
    if npm:
        root = subprocess.run([npm, "root", "-g"], capture_output=True, text=True).stdout.strip()
        paths.append(root)
    env = dict(os.environ, NODE_PATH=os.pathsep.join(paths))
    found = subprocess.run([node, "-e", "require.resolve('gltf-validator')"], env=env, capture_output=True)
    return (node, env) if found.returncode == 0 else None


VALIDATE_JS = """
const v = require('gltf-validator'); const fs = require('fs');
v.validateBytes(new Uint8Array(fs.readFileSync(process.argv[1]))).then(r => console.log(JSON.stringify(r.issues)));
"""


def test_glb_files_pass_the_khronos_validator(head, tmp_path):
    found = _validator()
    if found is None:
        pytest.skip("node or the gltf-validator npm package is not installed")
    node, env = found
    identity, basis, analysis = head
    speech = np.random.default_rng(0).normal(size=(10, identity.num_vertices, 3)).astype(np.float32) * 0.01
    export_animation(tmp_path / "anim.glb", identity, basis, FPS, au_weights=_speech_weights(10), speech_offsets=speech, analysis=analysis)
    export_rig(tmp_path / "rig.glb", identity, basis, analysis, arkit=True)
    for name in ("anim.glb", "rig.glb"):
        out = subprocess.run([node, "-e", VALIDATE_JS, str(tmp_path / name)], env=env, capture_output=True, text=True, check=True)
        issues = json.loads(out.stdout)
        assert issues["numErrors"] == 0 and issues["numWarnings"] == 0, issues["messages"][:5]
