"""`talkface rig`, `talkface landmarks` and `talkface render --export` through the installed console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import head_variants as hv  # noqa: E402
from conftest import write_speech_like  # noqa: E402
from talking_faces.arkit import ARKIT_NAMES  # noqa: E402
from talking_faces.aus import AU_NAMES  # noqa: E402
from talking_faces.exporters.gltf import read_glb  # noqa: E402
from talking_faces.exporters.livelink import read_live_link_csv  # noqa: E402

TALKFACE = Path(sys.executable).parent / "talkface"
if not TALKFACE.exists():
    TALKFACE = Path(shutil.which("talkface") or "talkface")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """All commands started at once (each process spends seconds importing torch), then awaited."""
    folder = tmp_path_factory.mktemp("character_cli")
    v, f = hv.character()
    head = folder / "head_z_up_cm.obj"
    hv.write_quad_obj(head, hv.to_user(v, hv.Z_UP, 100.0), f)
    welded = folder / "welded.obj"
    hv.write_quad_obj(welded, *hv.welded_lips(v, f))
    speech = write_speech_like(folder / "speech.wav", seconds=1.2)
    commands = {
        "rig": ["rig", "--identity", str(head), "--out", str(folder / "rig.glb"), "--arkit"],
        "rig_welded": ["rig", "--identity", str(welded), "--out", str(folder / "welded.glb")],
        "landmarks": ["landmarks", "--identity", str(head), "--out", str(folder / "check.png"), "--save", str(folder / "lm.json"), "--size", "96"],
        "render": ["render", str(speech), "--identity", str(head), "--emotion", "happy:0.7", "--out", str(folder / "out.mp4"),
                   "--size", "64", "--fps", "25", "--save-vertices", str(folder / "v.npy"),
                   "--export", str(folder / "out.glb"), "--export", str(folder / "out.csv"), "--export", str(folder / "out.json")],
        "bad_export": ["render", str(speech), "--out", str(folder / "never.mp4"), "--export", str(folder / "x.fbx")],
        "overwrite": ["landmarks", "--identity", str(head), "--out", str(folder / "never.png"), "--save", str(head)],
    }
    procs = {k: subprocess.Popen([str(TALKFACE), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k, args in commands.items()}
    results = {k: (p.wait(timeout=600), p.stdout.read() + p.stderr.read()) for k, p in procs.items()}
    return folder, results


def test_rig_command_writes_au_and_arkit_targets(runs):
    folder, results = runs
    code, output = results["rig"]
    assert code == 0, output
    glb = read_glb(folder / "rig.glb")
    assert glb["names"] == list(AU_NAMES) + list(ARKIT_NAMES)
    assert glb["vertices"].shape == (len(hv.character()[0]), 3)
    assert "cm, +z up, facing -y" in output


def test_welded_lips_warn(runs):
    code, output = runs[1]["rig_welded"]
    assert code == 0 and "mouth can only open if the upper and lower lips are separate" in " ".join(output.split())


def test_landmarks_command_writes_a_check_image_and_an_editable_file(runs):
    folder, results = runs
    code, output = results["landmarks"]
    assert code == 0, output
    assert (folder / "check.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((folder / "lm.json").read_text())
    known = hv.known_points()
    corner = np.asarray(data["points"]["mouth_corner_l"])  # in the file's own frame: Z-up centimetres
    np.testing.assert_allclose(corner, hv.to_user(known["mouth_corner_l"][None], hv.Z_UP, 100.0)[0], atol=0.3)


def test_render_exports_read_back_as_the_saved_vertices(runs):
    folder, results = runs
    code, output = results["render"]
    assert code == 0, output
    saved = np.load(folder / "v.npy")
    glb = read_glb(folder / "out.glb")
    back = glb["vertices"][None] + np.einsum("tk,kvc->tvc", glb["weights"], glb["targets"])
    np.testing.assert_allclose(back, saved, atol=1e-4)  # 1 µm: the user's centimetres, order and axes
    assert (folder / "out.wav").is_file()
    curves = read_live_link_csv(folder / "out.csv")
    assert len(curves["JawOpen"]) == len(saved) and curves["MouthSmileLeft"].min() > 0.3
    data = json.loads((folder / "out.json").read_text())
    assert data["fps"] == 25.0 and len(data["weights"]) == len(saved)
    assert data["aus"] == list(AU_NAMES)
    # The mouth corners rise (happy) along the head's own up axis, +z, in centimetres.
    neutral = hv.to_user(hv.character()[0], hv.Z_UP, 100.0)
    known = hv.to_user(np.stack([hv.known_points()[k] for k in ("mouth_corner_l", "mouth_corner_r")]), hv.Z_UP, 100.0)
    corners = [int(np.argmin(np.linalg.norm(neutral - p, axis=1))) for p in known]
    lift = saved[:, corners, 2] - neutral[corners, 2]
    assert lift.min() > 0.0 and np.median(lift) > 0.3


def test_bad_exports_and_overwrites_fail_cleanly(runs):
    folder, results = runs
    code, output = results["bad_export"]
    assert code == 2 and "unknown format '.fbx'" in output and "Traceback" not in output
    assert not (folder / "never.mp4").exists()
    code, output = results["overwrite"]
    assert code == 2 and "is the input mesh" in " ".join(output.split())
