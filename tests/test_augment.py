"""`talkface augment`: the AU prior, exact labels, the CSV layout, reproducibility and resume."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import pickle
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from talking_faces.augment import AugmentOptions, AUPrior, CharacterSource, occurrence, run_augment
from talking_faces.augment import job as augment_job
from talking_faces.augment.identities import AUBlendSetSource, vary_character
from talking_faces.augment.plan import Views, plan_sample, rotation
from talking_faces.augment.png import encode_png
from talking_faces.aus import AU_INDEX, AU_NAMES, EMOTION_AUS, EXPRESSIVE_EMOTIONS
from talking_faces.character import default_character_landmarks, load_default_character
from talking_faces.errors import TalkingFacesError
from talking_faces.render import FaceRenderer

PAPER_AUS = ("AU1", "AU2", "AU4", "AU6", "AU9", "AU12", "AU25", "AU26")
CONTRADICTIONS = (("AU24", "AU26"), ("AU24", "AU27"), ("AU24", "AU25"), ("AU26", "AU27"), ("AU61", "AU62"), ("AU63", "AU64"))
SMALL = dict(size=48, seed=3)


def _read_labels(folder: Path) -> tuple[list[str], list[dict[str, str]]]:
    with (folder / "labels.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames), list(reader)


def _weights(row: dict[str, str]) -> np.ndarray:
    return np.array([float(row[au]) for au in AU_NAMES])


@pytest.fixture(scope="module")
def draws() -> np.ndarray:
    prior = AUPrior()
    return np.stack([prior.sample(np.random.default_rng([11, i])) for i in range(4000)])


def test_prior_marginals_of_the_paper_aus(draws):
    on = draws >= 0.2
    for au in PAPER_AUS:
        assert on[:, AU_INDEX[au]].mean() >= 0.15, au
    assert 1.5 < (draws > 0).sum(axis=1).mean() < 4.5  # sparse combinations
    assert draws.min() >= 0.0 and draws.max() <= 1.0
    active = draws[draws > 0]
    assert active.min() >= 0.05 - 1e-6
    # FACS levels A..E are equally likely for single AUs: each fifth of [0.05, 1] holds a fair share.
    counts = np.histogram(active, bins=[0.05, 0.2, 0.4, 0.6, 0.8, 1.0])[0] / active.size
    assert counts.min() > 0.08


def test_prior_never_draws_contradictions(draws):
    for first, second in CONTRADICTIONS:
        both = (draws[:, AU_INDEX[first]] > 0) & (draws[:, AU_INDEX[second]] > 0)
        assert not both.any(), (first, second)


def test_prior_weights_are_what_the_csv_holds(draws):
    np.testing.assert_array_equal(np.array([[float(f"{w:.4f}") for w in row] for row in draws[:50]], dtype=np.float32), draws[:50])


def test_emotion_prior_draws_only_emfacs_prototypes():
    prior = AUPrior.emotions_only()
    prototypes = {frozenset(EMOTION_AUS[e]) for e in EXPRESSIVE_EMOTIONS}
    for i in range(300):
        weights = prior.sample(np.random.default_rng([5, i]))
        assert frozenset(AU_NAMES[k] for k in np.flatnonzero(weights)) in prototypes


def test_occurrence_threshold_is_level_b():
    np.testing.assert_array_equal(occurrence(np.array([0.0, 0.19, 0.2, 0.95])), [0, 0, 1, 1])


def test_rotation_conventions():
    front = np.array([0.0, 0.0, 1.0])
    np.testing.assert_allclose(rotation(90, 0, 0) @ front, [1, 0, 0], atol=1e-12)  # yaw to the face's left (+x)
    np.testing.assert_allclose(rotation(0, 90, 0) @ front, [0, 1, 0], atol=1e-12)  # pitch up
    np.testing.assert_allclose(rotation(0, 0, 90) @ np.array([0.0, 1.0, 0.0]), [-1, 0, 0], atol=1e-12)  # top to its right


def test_png_encoder_round_trips():
    rng = np.random.default_rng(0)
    for shape in ((5, 7, 3), (48, 48, 3)):
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(encode_png(image)))), image)
    rgbx = rng.integers(0, 256, (9, 6, 4), dtype=np.uint8)[::-1]  # a flipped view, as GL read-backs are
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(encode_png(rgbx)))), rgbx[:, :, :3])


def test_varied_character_keeps_surface_landmarks_on_their_vertices():
    head, landmarks = load_default_character(), default_character_landmarks()
    vertices, varied = vary_character(head.vertices, landmarks, np.random.default_rng(1))
    assert vertices.shape == head.vertices.shape and np.abs(vertices - head.vertices).max() > 1e-3
    for name in ("mouth_corner_l", "upper_lip_centre", "nose_tip", "chin"):
        nearest = np.argmin(np.linalg.norm(head.vertices - landmarks.points[name], axis=1))
        np.testing.assert_allclose(varied.points[name], vertices[nearest], atol=1e-6)
    # Left/right symmetry survives: the mirror image of the varied head is the varied head.
    mirrored = vertices * np.array([-1.0, 1.0, 1.0])
    from scipy.spatial import cKDTree

    assert cKDTree(vertices).query(mirrored)[0].max() < 1e-5


def test_projection_matches_the_rendered_silhouette():
    head = load_default_character()
    with FaceRenderer(head.vertices, head.faces, size=96) as renderer:
        renderer.set_background((0.0, 1.0, 0.0))
        image = renderer.render(head.vertices)
        pixels = renderer.project(head.vertices)
    covered = np.argwhere((image != [0, 255, 0]).any(axis=2))
    (top, left), (bottom, right) = covered.min(axis=0), covered.max(axis=0)
    assert abs(pixels[:, 0].min() - left) < 1.5 and abs(pixels[:, 0].max() - right - 1) < 1.5
    assert abs(pixels[:, 1].min() - top) < 1.5 and abs(pixels[:, 1].max() - bottom - 1) < 1.5


@pytest.fixture(scope="module")
def reference_set(tmp_path_factory) -> Path:
    """A finished set: 2 varied characters, 10 images, meshes and landmarks saved."""
    out = tmp_path_factory.mktemp("augment") / "set"
    sources = [CharacterSource(3, 0), CharacterSource(3, 1)]
    run_augment(out, sources, AugmentOptions(count=10, save_meshes=True, landmarks=True, **SMALL))
    return out


def test_csv_layout(reference_set):
    columns, rows = _read_labels(reference_set)
    assert columns == ["image", "identity", "yaw", "pitch", "roll", *AU_NAMES, *[f"{au}_on" for au in AU_NAMES]]
    assert len(AU_NAMES) == 32 and columns[5] == "AU1" and columns[36] == "AU64"
    assert len(rows) == 10 and sorted(p.name for p in (reference_set / "images").iterdir()) == [r["image"] for r in rows]
    for row in rows:
        weights = _weights(row)
        assert [int(row[f"{au}_on"]) for au in AU_NAMES] == [int(w >= 0.2) for w in weights]
        assert row["identity"] in ("character_000", "character_001")
        assert abs(float(row["yaw"])) <= 30 and abs(float(row["pitch"])) <= 15 and abs(float(row["roll"])) <= 10
        image = Image.open(reference_set / "images" / row["image"])
        assert image.format == "PNG" and image.size == (48, 48) and image.mode == "RGB"
    manifest = json.loads((reference_set / "manifest.json").read_text())
    assert manifest["complete"] and manifest["seed"] == 3 and manifest["count"] == 10 and manifest["project_version"]
    assert manifest["prior"]["occurrence_threshold"] == 0.2 and manifest["options"]["size"] == 48
    landmarks = list(csv.reader((reference_set / "landmarks.csv").open()))
    assert len(landmarks) == 11 and landmarks[0][:3] == ["image", "eye_centre_l_x", "eye_centre_l_y"]
    points = np.array([[float(v) for v in row[1:]] for row in landmarks[1:]])
    assert np.isfinite(points).all() and points.min() > 0 and points.max() < 48


def test_labels_are_exact(reference_set):
    _, rows = _read_labels(reference_set)
    for row in rows:
        folder = reference_set / "identities" / row["identity"]
        neutral = np.load(folder / "neutral.npy").astype(np.float64)
        bases = np.load(folder / "bases.npy").astype(np.float64)
        assert bases.shape == (32, *neutral.shape)
        mesh = np.load(reference_set / "meshes" / row["image"].replace(".png", ".npy"))
        assert mesh.shape == neutral.shape
        expected = neutral + np.einsum("k,kvc->vc", _weights(row), bases)
        np.testing.assert_allclose(mesh, expected, atol=2e-6, rtol=0)


def test_same_seed_same_set_and_other_seed_differs(reference_set, tmp_path):
    sources = [CharacterSource(3, 0), CharacterSource(3, 1)]
    again = tmp_path / "again"
    run_augment(again, sources, AugmentOptions(count=10, save_meshes=True, landmarks=True, **SMALL), workers=2)
    assert (again / "labels.csv").read_bytes() == (reference_set / "labels.csv").read_bytes()
    for image in (reference_set / "images").iterdir():
        assert (again / "images" / image.name).read_bytes() == image.read_bytes()
    other = tmp_path / "other"
    run_augment(other, sources, AugmentOptions(count=10, size=48, seed=4))
    assert (other / "labels.csv").read_bytes() != (reference_set / "labels.csv").read_bytes()


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is not installed (optional extra 'ray')")
def test_ray_local_makes_the_same_set(reference_set, tmp_path):
    sources = [CharacterSource(3, 0), CharacterSource(3, 1)]
    on_ray = tmp_path / "ray"
    run_augment(on_ray, sources, AugmentOptions(count=10, save_meshes=True, landmarks=True, **SMALL), workers=2,
                ray_address="local")
    for path in reference_set.rglob("*"):
        if path.is_file() and path.name != "manifest.json":
            assert (on_ray / path.relative_to(reference_set)).read_bytes() == path.read_bytes(), path.name


def test_resume_after_an_interruption(reference_set, tmp_path, monkeypatch):
    sources = [CharacterSource(3, 0), CharacterSource(3, 1)]
    options = AugmentOptions(count=10, save_meshes=True, landmarks=True, chunk=2, **SMALL)
    out = tmp_path / "set"
    write, calls = augment_job._write_sample, []

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        write(*args)

    monkeypatch.setattr(augment_job, "_write_sample", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_augment(out, sources, options)
    monkeypatch.setattr(augment_job, "_write_sample", write)
    assert not (out / "labels.csv").exists()
    assert not json.loads((out / "manifest.json").read_text())["complete"]
    leftovers = [p.name for p in out.rglob("*") if p.name.startswith(".")]
    assert leftovers == []  # no half-written file
    before = len(list((out / "images").iterdir()))
    assert 0 < before < 10
    result = run_augment(out, sources, options)
    assert (result.rendered, result.existing) == (10 - before, before)
    assert (out / "labels.csv").read_bytes() == (reference_set / "labels.csv").read_bytes()
    for image in (reference_set / "images").iterdir():
        assert (out / "images" / image.name).read_bytes() == image.read_bytes()
    with pytest.raises(TalkingFacesError, match="other settings"):
        run_augment(out, sources, AugmentOptions(count=10, size=48, seed=9))


def test_a_larger_count_appends(reference_set, tmp_path):
    import shutil

    out = tmp_path / "set"
    shutil.copytree(reference_set, out)
    sources = [CharacterSource(3, 0), CharacterSource(3, 1)]
    result = run_augment(out, sources, AugmentOptions(count=12, save_meshes=True, landmarks=True, **SMALL))
    assert (result.rendered, result.existing) == (2, 10)
    _, rows = _read_labels(out)
    _, first = _read_labels(reference_set)
    assert rows[:10] == first and len(rows) == 12


def test_refuses_a_folder_it_did_not_make(tmp_path):
    (tmp_path / "mine.txt").write_text("keep")
    with pytest.raises(TalkingFacesError, match="not empty"):
        run_augment(tmp_path, [CharacterSource(0, 0)], AugmentOptions(count=1, size=32))


def test_flame_identity_with_an_aublendset_basis(shared_fixture, tmp_path):
    flame, aublendset = shared_fixture("flame_sample.ply"), shared_fixture("aublendset_sample.npy")
    out = tmp_path / "set"
    run_augment(out, [AUBlendSetSource(str(aublendset), str(flame))], AugmentOptions(count=4, save_meshes=True, size=48))
    rows = np.load(aublendset).reshape(33, -1, 3).astype(np.float64)
    _, labels = _read_labels(out)
    for row in labels:
        mesh = np.load(out / "meshes" / row["image"].replace(".png", ".npy"))
        np.testing.assert_allclose(mesh, rows[0] + np.einsum("k,kvc->vc", _weights(row), rows[1:] - rows[0]), atol=2e-6)


def _flame_model_pickle(path: Path, template: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """A FLAME-format generic_model.pkl on `template`: 301 smooth identity/expression directions, all
    skinning on the root joint and no pose correctives (so at rest the mesh is exactly the blendshapes).
    Returns the `(V, 3, 301)` directions."""
    rng = np.random.default_rng(7)
    centred = (template - template.mean(axis=0)) / np.ptp(template, axis=0).max()
    x, y, z = centred.T
    monomials = np.stack([x, y, z, x * x, y * y, z * z, x * y, y * z, x * z, np.ones_like(x)], axis=1)  # (V, 10)
    directions = np.einsum("vm,kmc->vck", monomials, rng.normal(scale=1e-3, size=(301, 10, 3))).astype(np.float32)
    count = len(template)
    weights = np.zeros((count, 5))
    weights[:, 0] = 1.0
    model = {"v_template": template, "shapedirs": directions, "posedirs": np.zeros((count, 3, 36)),
             "J_regressor": np.full((5, count), 1.0 / count), "weights": weights, "f": faces.astype(np.uint32),
             "kintree_table": np.array([[2**32 - 1, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64)}
    path.write_bytes(pickle.dumps(model, protocol=2))
    return directions


def test_random_flame_heads_have_exact_labels_and_are_reproducible(shared_fixture, tmp_path, monkeypatch):
    from talking_faces.cli import main
    from talking_faces.identity import load_identity

    flame = load_identity(shared_fixture("flame_sample.ply"))
    directions = _flame_model_pickle(tmp_path / "generic_model.pkl", flame.vertices, flame.faces)
    sets = [tmp_path / "set", tmp_path / "again"]
    for out in sets:
        monkeypatch.setattr(sys, "argv", ["talkface", "augment", "--out", str(out), "--count", "6", "--size", "32",
                                          "--flame-model", str(tmp_path / "generic_model.pkl"), "--flame-heads", "2",
                                          "--seed", "5", "--save-meshes"])
        with pytest.raises(SystemExit) as exit_info:
            main()
        assert exit_info.value.code == 0
    _, labels = _read_labels(sets[0])
    assert {row["identity"] for row in labels} == {"flame_000", "flame_001"}
    heads = {}
    for name in ("flame_000", "flame_001"):
        folder = sets[0] / "identities" / name
        heads[name] = (np.load(folder / "neutral.npy").astype(np.float64), np.load(folder / "bases.npy").astype(np.float64))
        np.testing.assert_array_equal(np.load(folder / "faces.npy"), flame.faces)
        # The head is the template moved along the first 50 identity directions, and only along them.
        shape = (heads[name][0] - flame.vertices).reshape(-1)
        used = directions[:, :, :50].reshape(-1, 50).astype(np.float64)
        coefficients, *_ = np.linalg.lstsq(used, shape, rcond=None)
        np.testing.assert_allclose(used @ coefficients, shape, atol=1e-6)
        assert 0.3 < coefficients.std() < 3.0  # drawn at unit spread
    assert np.abs(heads["flame_000"][0] - heads["flame_001"][0]).max() > 1e-3
    for row in labels:
        neutral, bases = heads[row["identity"]]
        mesh = np.load(sets[0] / "meshes" / row["image"].replace(".png", ".npy"))
        np.testing.assert_allclose(mesh, neutral + np.einsum("k,kvc->vc", _weights(row), bases), atol=2e-6)
    for path in sets[0].rglob("*"):  # the same seed makes the same set
        if path.is_file():
            assert (sets[1] / path.relative_to(sets[0])).read_bytes() == path.read_bytes(), path.name


def test_cli_bad_input_exits_2(tmp_path, monkeypatch, capsys):
    from talking_faces.cli import main

    monkeypatch.setattr(sys, "argv", ["talkface", "augment", "--out", str(tmp_path / "o"), "--count", "2",
                                      "--au-basis", str(tmp_path / "basis.npy")])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    assert "--au-basis applies to --identity" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_renderer_options_default_to_the_plain_frame():
    from talking_faces.render import BACKGROUND, DEFAULT_LIGHTING

    head = load_default_character()
    with FaceRenderer(head.vertices, head.faces, size=64) as renderer:
        plain = renderer.render(head.vertices)
        np.testing.assert_array_equal(renderer.render(head.vertices, lighting=DEFAULT_LIGHTING), plain)
        np.testing.assert_array_equal(renderer.render(head.vertices, pose=np.eye(4)), plain)
        renderer.set_background(np.asarray(BACKGROUND))
        np.testing.assert_array_equal(renderer.render(head.vertices), plain)
        renderer.set_background(np.random.default_rng(0).uniform(size=(3, 3, 3)))
        renderer.set_interior(None)
        renderer.set_background(BACKGROUND)  # the grid stays, in one colour
        assert np.abs(renderer.render(head.vertices).astype(int) - plain).max() <= 1


def test_gl_head_pose_equals_turning_the_vertices():
    identity = CharacterSource(0, 0).build()
    mesh = identity.neutral
    lighting = plan_sample(5, 0, 1, AUPrior(), Views()).lighting
    with FaceRenderer(identity.neutral, identity.faces, size=96, albedo=identity.albedo) as renderer:
        renderer.frame(identity.frame_box)
        for yaw, pitch, roll in ((30.0, 0.0, 0.0), (-20.0, 15.0, -10.0)):
            pose = augment_job.head_pose(identity, SimpleNamespace(yaw=yaw, pitch=pitch, roll=roll))
            in_gl = renderer.render(mesh, lighting=lighting, pose=pose).astype(int)
            on_cpu = renderer.render(mesh @ pose[:3, :3].T + pose[:3, 3], lighting=lighting).astype(int)
            difference = np.abs(in_gl - on_cpu).max(axis=2)
            assert np.mean(difference <= 2) > 0.99  # float rounding moves a few silhouette pixels
            assert np.abs(in_gl - on_cpu).mean() < 0.5


def test_background_grid_is_blended_across_the_frame():
    head = load_default_character()
    left, right = np.array([0.9, 0.1, 0.2]), np.array([0.1, 0.3, 1.0])
    grid = np.stack([np.stack([left, right])] * 2)  # (2, 2, 3): left column, right column
    with FaceRenderer(head.vertices, head.faces, size=64) as renderer:
        renderer.frame(np.array([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]))  # the head small in the middle
        renderer.set_background(grid)
        image = renderer.render(head.vertices).astype(float)
    share = (np.arange(64) + 0.5) / 64
    expected = 255 * (left + (right - left) * share[:, None])  # (64, 3) along a row
    np.testing.assert_allclose(image[0], expected, atol=1.5)
    np.testing.assert_allclose(image[-1], expected, atol=1.5)


def test_mouth_interior_is_seen_only_through_the_open_mouth():
    from talking_faces.render import INTERIOR

    identity = CharacterSource(0, 1).build()
    weights = np.zeros(len(AU_NAMES), dtype=np.float32)
    weights[[AU_INDEX["AU25"], AU_INDEX["AU27"]]] = 1.0
    wide_open = identity.neutral + augment_job.expression_offsets(identity, weights)
    dark = np.round(np.array(INTERIOR) * 255)
    with FaceRenderer(identity.neutral, identity.faces, size=96, albedo=identity.albedo) as renderer:
        renderer.frame(identity.frame_box)
        renderer.set_background((0.0, 0.0, 1.0))
        for yaw, pitch in ((0.0, 0.0), (30.0, 15.0), (-30.0, -15.0)):
            pose = augment_job.head_pose(identity, SimpleNamespace(yaw=yaw, pitch=pitch, roll=0.0))
            seen = []
            for mesh in (wide_open, identity.neutral):
                renderer.set_interior(None)
                without = renderer.render(mesh, pose=pose)
                renderer.set_interior(identity.interior)
                inside = renderer.render(mesh, pose=pose)
                changed = (inside != without).any(axis=2)
                # Where the background showed through the mouth (or, at the widest poses, a few pixels
                # of inner lip that lie behind it)
                assert (without[changed] == [0, 0, 255]).all(axis=1).sum() >= 0.95 * changed.sum()
                np.testing.assert_allclose(inside[changed], np.broadcast_to(dark, inside[changed].shape), atol=1)
                rows, cols = np.nonzero(changed)
                face = (without != [0, 0, 255]).any(axis=2)
                for row, col in zip(rows, cols):  # within the face, seen through it: face on all four sides
                    assert face[row, :col].any() and face[row, col:].any() and face[:row, col].any() and face[row:, col].any()
                seen.append(changed.sum())
            assert seen[0] > 40 and seen[1] < 0.2 * seen[0], seen  # the closed mouth's lips meet, nearly
