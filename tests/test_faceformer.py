"""FaceFormer adapter: official-format checkpoints, conditioning, animate and the render pipeline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from faceformer_tiny import write_tiny_faceformer_checkpoint  # noqa: E402

from talking_faces.adapters import SpeechRequest, adapter_class  # noqa: E402
from talking_faces.adapters.audio_encoders import normalize_audio  # noqa: E402
from talking_faces.adapters.faceformer import FaceFormerAdapter, load_faceformer  # noqa: E402
from talking_faces.errors import TalkingFacesError  # noqa: E402
from talking_faces.identity import Identity, load_identity  # noqa: E402

FLAME_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "flame_sample.ply"

def _speech_offsets(adapter, audio, identity, style=None):
    """`(T, V, 3)` Offset_spe at the adapter's own rate (sample 0), as the adapter returns it."""
    output = adapter.speak(SpeechRequest(audio=audio, identity=identity, style=style))
    assert output.offsets.shape[0] == 1 and output.fps == adapter.fps
    return output.offsets[0]


@pytest.fixture(scope="module")

def tiny_vocaset(tmp_path_factory) -> Path:
    """Tiny checkpoint with FLAME topology (V*3 = 15069) and the 8 VOCASET subjects."""
    return write_tiny_faceformer_checkpoint(tmp_path_factory.mktemp("ff") / "vocaset.pth")


def _flame_identity() -> Identity:
    if FLAME_SAMPLE.is_file():
        return load_identity(FLAME_SAMPLE)
    rng = np.random.default_rng(0)
    faces = np.stack([np.arange(5021), np.arange(1, 5022), np.arange(2, 5023)], axis=1)
    return Identity((rng.standard_normal((5023, 3)) * 0.05).astype(np.float32), faces, "synthetic_flame")


def _speech(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    return (np.sin(2 * np.pi * 140 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) * 0.3 + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def test_official_names_load_strictly(tiny_vocaset):
    state = torch.load(tiny_vocaset, weights_only=True)
    assert "audio_encoder.encoder.pos_conv_embed.conv.weight_g" in state and "PPE.pe" in state
    assert len(state) == 237 - 10 * 16  # the official 237 keys, with 2 of 12 wav2vec2 layers
    model, conditioning = load_faceformer(tiny_vocaset)
    loaded = model.state_dict()
    # weight_g / weight_v land in torch's weight-norm parametrization unchanged.
    assert torch.equal(loaded["audio_encoder.encoder.pos_conv_embed.conv.parametrizations.weight.original0"], state["audio_encoder.encoder.pos_conv_embed.conv.weight_g"])
    assert torch.equal(loaded["audio_encoder.encoder.pos_conv_embed.conv.parametrizations.weight.original1"], state["audio_encoder.encoder.pos_conv_embed.conv.weight_v"])
    assert set(loaded) == {k.replace("conv.weight_g", "conv.parametrizations.weight.original0").replace("conv.weight_v", "conv.parametrizations.weight.original1") for k in state} - {"PPE.pe"}
    assert (model.config.vertice_dim, model.config.feature_dim, model.config.num_styles) == (15069, 16, 8)
    assert (model.config.fps, model.config.period, model.config.audio_steps_per_frame) == (30.0, 30, 1)
    assert conditioning.default_style == "FaceTalk_170913_03279_TA"


def test_dimensions_and_dataset_inferred_without_sidecar(tmp_path):
    path = write_tiny_faceformer_checkpoint(tmp_path / "biwi.pth", vertice_dim=70110, num_subjects=6, dataset="BIWI")
    sidecar = json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".json").unlink()
    # Without the sidecar the head count follows wav2vec2's hidden/64 rule: 1 head for the 32-wide tiny encoder.
    model, conditioning = load_faceformer(path)
    assert (model.config.fps, model.config.period, model.config.audio_steps_per_frame) == (25.0, 25, 2)
    assert model.audio_encoder.config.num_attention_heads == 1
    assert conditioning.subjects == ["F2", "F3", "F4", "M3", "M4", "M5"] and conditioning.default_style == "F2"
    assert sidecar["audio_encoder"]["num_attention_heads"] == 2
    override, _ = load_faceformer(path, dataset="vocaset")
    assert override.config.audio_steps_per_frame == 1


def test_wrong_checkpoint_lists_missing_and_unexpected_keys(tiny_vocaset, tmp_path):
    state = torch.load(tiny_vocaset, weights_only=True)
    del state["transformer_decoder.layers.0.norm3.bias"]
    state["lm_head.weight"] = torch.zeros(3)
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    with pytest.raises(TalkingFacesError, match=r"missing keys transformer_decoder\.layers\.0\.norm3\.bias; unexpected keys lm_head\.weight") as err:
        load_faceformer(bad)
    assert "\n" not in str(err.value)
    foreign = tmp_path / "foreign.pth"
    torch.save({f"layer{i}.weight": torch.zeros(1) for i in range(40)}, foreign)
    with pytest.raises(TalkingFacesError, match=r"not a FaceFormer checkpoint.*\(\+36 more\)"):
        load_faceformer(foreign)


def test_shape_mismatch_and_non_state_dict_are_clear(tiny_vocaset, tmp_path):
    state = torch.load(tiny_vocaset, weights_only=True)
    state["vertice_map_r.bias"] = torch.zeros(7)
    torch.save(state, tmp_path / "shape.pth")
    with pytest.raises(TalkingFacesError, match="tensor shapes do not fit FaceFormer"):
        load_faceformer(tmp_path / "shape.pth")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(TalkingFacesError, match="not a bare state_dict"):
        load_faceformer(tmp_path / "list.pth")
    with pytest.raises(TalkingFacesError, match="not found"):
        load_faceformer(tmp_path / "absent.pth")


def test_style_by_name_index_and_errors(tiny_vocaset):
    adapter = FaceFormerAdapter.from_checkpoint(tiny_vocaset)
    cond = adapter.conditioning
    assert torch.equal(cond.one_hot(None), torch.eye(8)[5:6])
    assert torch.equal(cond.one_hot("FaceTalk_170728_03272_TA"), torch.eye(8)[0:1])
    assert torch.equal(cond.one_hot("7"), torch.eye(8)[7:8])
    with pytest.raises(TalkingFacesError, match="Unknown training subject 'nobody'.*5=FaceTalk_170913_03279_TA"):
        cond.one_hot("nobody")
    with pytest.raises(TalkingFacesError, match="subjects only"):
        cond.one_hot("0,happy")


def test_animate_offsets_equal_upstream_prediction_minus_template(tiny_vocaset):
    adapter = adapter_class("faceformer").from_checkpoint(tiny_vocaset)
    identity = _flame_identity()
    audio = _speech(2.0)
    offsets = _speech_offsets(adapter, audio, identity, style="2")
    assert offsets.shape == (59, 5023, 3) and adapter.fps == 30.0  # int(99 CNN frames / 50 * 30)
    model = adapter.model
    with torch.no_grad():
        memory, frames = model.encode_audio(normalize_audio(audio))
        reference = model.decode_reference(memory, model.style(torch.eye(8)[2:3]), frames)
    template = torch.from_numpy(identity.vertices.reshape(1, 1, -1))
    prediction = reference + template  # upstream's output
    assert (offsets.reshape(1, 59, -1) - (prediction - template)).abs().max().item() <= 1e-5
    assert offsets.abs().max().item() > 1e-3
    # A different style gives different motion.
    assert (_speech_offsets(adapter, audio, identity, style="5") - offsets).abs().max().item() > 1e-4


def test_long_audio_is_not_truncated(tmp_path):
    path = write_tiny_faceformer_checkpoint(tmp_path / "small.pth", vertice_dim=30, num_subjects=2)
    adapter = FaceFormerAdapter.from_checkpoint(path)
    identity = Identity(np.zeros((10, 3), np.float32), None)
    offsets = _speech_offsets(adapter, _speech(25.0), identity)
    assert offsets.shape == (749, 10, 3)  # 25 s at 30 fps, past upstream's 600-frame mask
    assert torch.isfinite(offsets).all() and offsets[600:].abs().max() > 1e-4


def test_wrong_topology_and_missing_checkpoint_are_clear(tiny_vocaset):
    adapter = FaceFormerAdapter.from_checkpoint(tiny_vocaset)
    with pytest.raises(TalkingFacesError, match="5023-vertex meshes.*has 10 vertices"):
        adapter.check_identity(Identity(np.zeros((10, 3), np.float32), None, "cube"))
    with pytest.raises(TalkingFacesError, match="needs weights"):
        FaceFormerAdapter.from_checkpoint(None)


def test_render_pipeline_composes_faceformer_offsets(tiny_vocaset, tmp_path):
    from talking_faces.basis import AUBasis
    from talking_faces.emotion import parse_emotion
    from talking_faces.pipeline import animate

    identity = _flame_identity()
    wav = tmp_path / "speech.wav"
    soundfile.write(wav, _speech(1.5, seed=3), 16000)
    offsets = np.random.default_rng(4).standard_normal((32, 5023, 3)).astype(np.float32) * 1e-3
    basis = AUBasis(offsets, identity.vertices, "test")
    animation = animate(wav, identity=identity, emotion="happy:0.7", model="faceformer", checkpoint=tiny_vocaset,
                        style="FaceTalk_170725_00137_TA", device="cpu", basis=basis)
    assert animation.vertices.shape == (45, 5023, 3) and animation.fps == 30.0
    audio = soundfile.read(wav, dtype="float32")[0]
    speech = _speech_offsets(FaceFormerAdapter.from_checkpoint(tiny_vocaset), audio, identity, style="2").numpy()
    speech = np.concatenate([speech, speech[-1:].repeat(45 - speech.shape[0], 0)])  # retime holds the last frame
    expression = np.einsum("tk,kvc->tvc", parse_emotion("happy:0.7").weights(45, 30.0), offsets)
    expected = identity.vertices + speech + expression
    assert np.abs(animation.vertices - expected).max() <= 1e-5
    assert np.abs(expression).max() > 1e-4
