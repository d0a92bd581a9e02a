"""AUBlendNet bases for an identity: FLAME-only, AUBlendSet layout, offsets, cache, render path."""

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import talking_faces.aublendnet.bases as bases
from talking_faces.cache import CACHE_ENV
from talking_faces.basis_sources import resolve_basis
from talking_faces.compose import compose
from talking_faces.errors import TalkingFacesError
from talking_faces.identity import Identity, load_identity

from test_aublendnet_helpers import FLAME_PLY, tiny_models, write_checkpoints



@pytest.fixture(scope="module")
def flame():
    if not FLAME_PLY.is_file():
        pytest.skip("FLAME fixture absent")
    return load_identity(FLAME_PLY)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Tiny official-format files at FLAME size (V = 5023, hidden 32), with the official 8 heads the render path assumes."""
    model = tiny_models(5023, heads=8)
    folder = tmp_path_factory.mktemp("ckpt")
    return (*write_checkpoints(model, folder), model)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def _predict(identity, stage2, stage1):
    return bases.predict_basis_cached(identity, stage2, stage1, device="cpu")


def test_offsets_are_targets_minus_the_predicted_neutral(flame, checkpoints):
    stage2, stage1, model = checkpoints
    basis = _predict(flame, stage2, stage1)
    with torch.no_grad():
        raw = model(torch.from_numpy(flame.vertices.reshape(1, -1))).rows[0].numpy().reshape(33, -1, 3)
    assert basis.offsets.shape == (32, 5023, 3)
    np.testing.assert_allclose(basis.template, raw[0], atol=1e-6)
    # as upstream's au_control: weight 1 on AU k adds target_k - predicted neutral to the user's identity
    neutral, zero_speech = torch.from_numpy(flame.vertices), torch.zeros(1, 5023, 3)
    for k in (0, 20, 31):
        w = torch.zeros(1, 32)
        w[0, k] = 1.0
        out = compose(neutral, zero_speech, w, torch.from_numpy(basis.offsets))[0].numpy()
        np.testing.assert_allclose(out, flame.vertices + raw[k + 1] - raw[0], atol=1e-6)
    rest = compose(neutral, zero_speech, torch.zeros(1, 32), torch.from_numpy(basis.offsets))[0]
    assert torch.equal(rest, neutral)
    assert float(np.abs(basis.offsets).max()) > 1e-3  # the tiny model predicts real motion


def test_cache_hits_and_checkpoint_bytes_change_the_key(flame, checkpoints, cache, monkeypatch, tmp_path):
    stage2, stage1, model = checkpoints
    first = _predict(flame, stage2, stage1)
    assert len(list((cache / "aublendnet").glob("*.npy"))) == 1
    assert not list((cache / "aublendnet").glob(".*"))  # no temporary files left behind

    def no_model(*args, **kwargs):
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr(bases, "load_predictor", no_model)
    np.testing.assert_array_equal(_predict(flame, stage2, stage1).offsets, first.offsets)

    # the same path with changed bytes must miss (the remembered digest notices the rewrite)
    other = tiny_models(5023, seed=5, heads=8)
    stage2b, stage1b = write_checkpoints(other, tmp_path)
    moving = tmp_path / "moving.pth.tar"
    moving.write_bytes(stage2.read_bytes())
    key_a = bases.cache_key(flame.vertices, moving, stage1)
    assert bases.cache_key(flame.vertices, moving, stage1) == key_a
    moving.write_bytes(stage2b.read_bytes())
    assert bases.cache_key(flame.vertices, moving, stage1) != key_a
    with pytest.raises(AssertionError, match="cache should have answered"):
        _predict(flame, stage2b, stage1b)


def test_non_flame_mesh_points_to_the_procedural_rig(checkpoints):
    stage2, stage1, _ = checkpoints
    head = Identity(np.zeros((100, 3), np.float32), None, name="cube")
    with pytest.raises(TalkingFacesError, match="procedural rig"):
        _predict(head, stage2, stage1)


def test_resolve_basis_feeds_the_render_path(flame, checkpoints):
    stage2, stage1, _ = checkpoints
    basis = resolve_basis(flame, aublendnet=stage2, codebook=stage1, device="cpu")
    np.testing.assert_array_equal(basis.offsets, _predict(flame, stage2, stage1).offsets)
    weights = torch.zeros(2, 32)
    weights[1, 9] = 0.5  # AU12 at half strength
    frames = compose(torch.from_numpy(flame.vertices), torch.zeros(2, 5023, 3), weights, torch.from_numpy(basis.offsets))
    np.testing.assert_allclose(frames[1].numpy() - flame.vertices, 0.5 * basis.offsets[9], atol=1e-7)


def test_bases_command_writes_the_aublendset_layout(flame, checkpoints, tmp_path):
    from talking_faces.cli.common import app
    import talking_faces.cli.aublendnet_cmd  # noqa: F401  registers the command

    stage2, stage1, model = checkpoints
    out = tmp_path / "basis.npy"
    result = CliRunner().invoke(app, ["bases", "--identity", str(FLAME_PLY), "--aublendnet", str(stage2),
                                      "--codebook", str(stage1), "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    rows = np.load(out)
    assert rows.shape == (33, 15069) and rows.dtype == np.float32
    with torch.no_grad():  # upstream's predict output, row for row
        raw = model(torch.from_numpy(flame.vertices.reshape(1, -1))).rows[0].numpy()
    np.testing.assert_allclose(rows, raw, atol=1e-6, rtol=0)


def test_render_pipeline_uses_the_predicted_bases(flame, checkpoints, tmp_path):
    import soundfile as sf

    from talking_faces.pipeline import animate

    stage2, stage1, _ = checkpoints
    audio = tmp_path / "tone.wav"
    sf.write(audio, 0.1 * np.sin(np.linspace(0, 2000, 8000)).astype(np.float32), 16000)
    runs = {e: animate(audio, identity=flame, emotion=e, aublendnet=stage2, codebook=stage1, device="cpu").vertices
            for e in ("neutral", "happy:1")}
    basis = _predict(flame, stage2, stage1)
    # the speech part is the same in both runs, so the difference is exactly the happy blend (AU6 + AU12)
    np.testing.assert_allclose(runs["happy:1"] - runs["neutral"], (basis.offsets[4] + basis.offsets[9])[None].repeat(15, 0), atol=1e-5)
