"""Adapter mode of `talkface eval`, with a fake speech adapter registered for the test."""

import itertools
import json
import pickle

import numpy as np
import pytest
import soundfile
import torch
from test_eval_synth import V, write_masks, write_mead_emote
from typer.testing import CliRunner

from talking_faces.adapters import ADAPTERS, SpeechAdapter, SpeechOutput, SpeechRequest
from talking_faces.aus import EXPRESSIVE_EMOTIONS, NUM_AUS, emotion_weights
from talking_faces.cli import app
from talking_faces.eval.metrics import fdd_term, lip_errors, truncate, velocity_lip_errors
from talking_faces.eval.regions import load_regions

STYLE_GAIN = {None: 1.0, "calm": 0.5, "lively": 2.0}
FLOAT32_REL = 1e-5  # metrics of float32 vertices (what render writes) against a float64 recomputation


class FakeAdapter(SpeechAdapter):
    """Deterministic offsets at 50 fps (twice MEAD's 25), with two styles."""

    name = "fake"
    accepts = frozenset({"style"})
    fps = 50.0
    styles = ("calm", "lively")

    @classmethod
    def from_checkpoint(cls, path, device="cpu", **options):
        adapter = cls(device)
        adapter.gain = float(open(path).read())
        return adapter

    def speak(self, request):
        frames = int(round(request.audio.shape[0] / 16000 * self.fps))
        vertices = request.identity.num_vertices
        phase = torch.arange(frames)[:, None, None] * 0.3 + torch.arange(vertices)[None, :, None] * 0.1
        wave = torch.sin(phase + torch.arange(3)[None, None, :])
        return SpeechOutput(self.fps, offsets=(self.gain * STYLE_GAIN[request.style] * 1e-3 * wave).float()[None])


def _expected_speech(adapter, audio_path, identity_vertices):
    audio = soundfile.read(str(audio_path), dtype="float32")[0]
    offsets = adapter.speak(SpeechRequest(audio, _Identity(identity_vertices))).offsets[0].double().numpy()
    frames = int(round(audio.shape[0] / 16000 * 25))
    return offsets[np.minimum(np.arange(frames) * 2, offsets.shape[0] - 1)]  # 50 -> 25 fps picks every other frame


class _Identity:
    def __init__(self, vertices):
        self.num_vertices = vertices.shape[0]


def _emotion_offsets(basis, emotion, intensity):
    weights = np.zeros(NUM_AUS)
    for k, w in emotion_weights(emotion, intensity).items():
        weights[k] = w
    return np.einsum("k,kvc->vc", weights, basis)


def test_adapter_mode_rows_with_and_without_aublendnet(tmp_path, monkeypatch):
    monkeypatch.setitem(ADAPTERS, "fake", "test_eval_adapter:FakeAdapter")
    root = tmp_path / "mead"
    write_mead_emote(root)
    checkpoint = tmp_path / "fake.ckpt"
    checkpoint.write_text("1.5")
    rows = np.random.default_rng(3).normal(scale=0.01, size=(NUM_AUS + 1, V * 3)).astype(np.float32)
    np.save(tmp_path / "basis.npy", rows)
    masks = write_masks(tmp_path / "FLAME_masks.pkl")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [
        "eval", "--dataset", "mead", "--data-root", str(root), "--split", "pred-test", "--model", "fake",
        "--checkpoint", str(checkpoint),
        "--au-basis", str(tmp_path / "basis.npy"), "--regions", str(masks), "--out", str(out), "--device", "cpu",
    ])
    assert result.exit_code == 0, (result.output, result.exception)
    report = json.loads((out / "results.json").read_text())
    base_row, emo_row = report["rows"]
    assert (base_row["method"], emo_row["method"]) == ("fake", "fake+AUBlendNet")

    # Independent recomputation on the two test sequences (M003_028_6_2 angry level 3, M003_037_0_0 neutral).
    regions = load_regions(masks)
    templates = pickle.loads((tmp_path / "templates_mead_vert.pkl").read_bytes())
    basis = (rows[1:].reshape(NUM_AUS, V, 3) - rows[0].reshape(V, 3)).astype(np.float64)  # float32 bases, as stored
    adapter = FakeAdapter.from_checkpoint(checkpoint)
    terms = {"fake": ([], [], []), "fake+AUBlendNet": ([], [], [])}
    style_div, emo_div = [], []
    for name, emotion in (("M003_028_6_2", "angry"), ("M003_037_0_0", "neutral")):
        tpl = templates["M003"].double().numpy()
        gt = np.load(root / "vertex" / f"{name}.npy").astype(np.float64).reshape(-1, V, 3)
        speech = _expected_speech(adapter, root / "wav" / f"{name}.wav", tpl)
        for method, anim in (("fake", tpl + speech), ("fake+AUBlendNet", tpl + speech + _emotion_offsets(basis, emotion, 1.0))):
            p, g = truncate(anim, gt)
            terms[method][0].append(lip_errors(p, g, regions.lips))
            terms[method][1].append(velocity_lip_errors(p, g, regions.lips))
            terms[method][2].append(fdd_term(p, g, tpl, regions.upper))
        style_div.append(np.abs(2.0 - 0.5) * np.linalg.norm(speech, axis=2).mean())
        shifts = [_emotion_offsets(basis, e, 1.0) for e in EXPRESSIVE_EMOTIONS]
        emo_div.append(np.mean([np.linalg.norm(a - b, axis=1).mean() for a, b in itertools.combinations(shifts, 2)]))
    # Eval scores the float32 vertices that render writes; the recomputation here is in float64.
    for row, method in ((base_row, "fake"), (emo_row, "fake+AUBlendNet")):
        lve, vlve, fdd = terms[method]
        assert row["LVE"] == pytest.approx(np.concatenate(lve).mean(), rel=FLOAT32_REL)
        assert row["V-LVE"] == pytest.approx(np.concatenate(vlve).mean(), rel=FLOAT32_REL)
        assert row["FDD"] == pytest.approx(np.mean(fdd), rel=FLOAT32_REL)
        assert row["sequences"] == 2 and row["frames"] == sum(len(x) for x in lve)
    assert base_row["diversity"] == pytest.approx(np.mean(style_div), rel=1e-6)
    assert emo_row["diversity"] == pytest.approx(np.mean(emo_div), rel=FLOAT32_REL)
    assert emo_row["V-LVE"] == pytest.approx(base_row["V-LVE"], rel=FLOAT32_REL)  # constant emotion offsets cancel
    assert emo_row["LVE"] != base_row["LVE"]
    table = (out / "results.md").read_text()
    assert "| fake+AUBlendNet | mead |" in table


def test_faceformer_rows_on_lgldm_mead(tmp_path):
    import faceformer_tiny
    from test_eval_synth import write_mead_lgldm

    root = tmp_path / "MEAD"
    write_mead_lgldm(root)
    checkpoint = faceformer_tiny.write_tiny_faceformer_checkpoint(tmp_path / "tiny.pth", vertice_dim=V * 3)
    np.save(tmp_path / "basis.npy", np.random.default_rng(4).normal(scale=0.01, size=(NUM_AUS + 1, V * 3)).astype(np.float32))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [
        "eval", "--dataset", "mead", "--data-root", str(root), "--model", "faceformer", "--checkpoint", str(checkpoint),
        "--au-basis", str(tmp_path / "basis.npy"), "--regions", str(write_masks(tmp_path / "m.pkl")), "--out", str(out),
        "--device", "cpu",
    ])
    assert result.exit_code == 0, (result.output, result.exception)
    base_row, emo_row = json.loads((out / "results.json").read_text())["rows"]
    assert (base_row["method"], emo_row["method"]) == ("faceformer", "faceformer+AUBlendNet")
    # test split M037, M040 with 8 and 9 frames at 25 fps; 30 fps output retimed to cover each clip
    assert base_row["sequences"] == emo_row["sequences"] == 2 and base_row["frames"] == emo_row["frames"] == 17
    for row in (base_row, emo_row):
        assert all(np.isfinite(row[m]) and row[m] > 0 for m in ("LVE", "V-LVE", "MVE"))
    assert emo_row["V-LVE"] == pytest.approx(base_row["V-LVE"], rel=FLOAT32_REL)
    assert emo_row["diversity"] > 0
    assert base_row["diversity"] > 0  # over the tiny model's 8 training-subject styles


def test_facediffuser_rows_on_lgldm_mead(tmp_path):
    from facediffuser_tiny import write_tiny_facediffuser
    from test_eval_synth import write_mead_lgldm

    root = tmp_path / "MEAD"
    write_mead_lgldm(root)
    checkpoint = write_tiny_facediffuser(tmp_path / "tiny.pth", "mead", vertice_dim=V * 3, diffusion_steps=100, sidecar=False)
    np.save(tmp_path / "basis.npy", np.random.default_rng(4).normal(scale=0.01, size=(NUM_AUS + 1, V * 3)).astype(np.float32))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [
        "eval", "--dataset", "mead", "--data-root", str(root), "--model", "facediffuser", "--checkpoint", str(checkpoint),
        "--au-basis", str(tmp_path / "basis.npy"), "--regions", str(write_masks(tmp_path / "m.pkl")), "--out", str(out),
        "--device", "cpu", "--seed", "0", "--num-samples", "2", "--sampler", "ddim", "--steps", "3",
    ])
    assert result.exit_code == 0, (result.output, result.exception)
    base_row, emo_row = json.loads((out / "results.json").read_text())["rows"]
    assert (base_row["method"], emo_row["method"]) == ("facediffuser", "facediffuser+AUBlendNet")
    assert base_row["sequences"] == emo_row["sequences"] == 2 and base_row["frames"] == emo_row["frames"] == 17
    assert base_row["diversity"] > 0  # over the 32 training speakers
    assert base_row["sample diversity"] > 0  # two samples of each clip
    assert emo_row["diversity"] > 0


def test_lgldm_rows_on_lgldm_mead(tmp_path):
    lgldm_tiny = pytest.importorskip("lgldm_tiny")
    from test_eval_synth import write_mead_lgldm

    root = tmp_path / "MEAD"
    write_mead_lgldm(root)
    folder = tmp_path / "lgldm"
    folder.mkdir()
    stage2, stage1 = lgldm_tiny.write_pair(folder, mead=True, num_vertices=V)
    np.save(tmp_path / "basis.npy", np.random.default_rng(4).normal(scale=0.01, size=(NUM_AUS + 1, V * 3)).astype(np.float32))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [
        "eval", "--dataset", "mead", "--data-root", str(root), "--model", "lgldm", "--checkpoint", str(stage2),
        "--vqvae", str(stage1), "--sampler", "dpmpp", "--steps", "2", "--seed", "3", "--style", "M003,happy",
        "--no-style-diversity", "--au-basis", str(tmp_path / "basis.npy"), "--regions", str(write_masks(tmp_path / "m.pkl")),
        "--out", str(out), "--device", "cpu",
    ])
    assert result.exit_code == 0, (result.output, result.exception)
    base_row, emo_row = json.loads((out / "results.json").read_text())["rows"]
    assert (base_row["method"], emo_row["method"]) == ("lgldm", "lgldm+AUBlendNet")
    assert base_row["sequences"] == 2 and base_row["frames"] == 17
    assert all(np.isfinite(base_row[m]) and base_row[m] > 0 for m in ("LVE", "V-LVE", "MVE"))
    assert emo_row["V-LVE"] == pytest.approx(base_row["V-LVE"], rel=FLOAT32_REL) and emo_row["diversity"] > 0
