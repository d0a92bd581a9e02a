"""Shared audio-encoder helpers: offline build/load, normalisation, the split forward."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from faceformer_tiny import TINY_AUDIO_ENCODER  # noqa: E402

from talking_faces.adapters.audio_encoders import (  # noqa: E402
    build_audio_encoder,
    contextualize,
    encoder_config,
    extract_features,
    load_audio_encoder,
    normalize_audio,
    num_feature_frames,
    resample_features,
)
from talking_faces.errors import TalkingFacesError  # noqa: E402


def test_normalize_audio_uses_upstream_epsilon():
    x = np.array([0.0, 0.001, -0.002, 0.003], dtype=np.float32)
    expected = (x - x.mean()) / np.sqrt(x.var() + 1e-5)
    out = normalize_audio(x)
    assert out.shape == (1, 4) and out.dtype == torch.float32
    assert np.allclose(out.numpy()[0], expected, atol=1e-7)
    assert normalize_audio(torch.from_numpy(x)).equal(out)


@pytest.mark.parametrize("kind", ["wav2vec2", "hubert"])
def test_split_forward_equals_transformers_forward(kind):
    torch.manual_seed(0)
    encoder = build_audio_encoder(kind, **TINY_AUDIO_ENCODER).eval()
    assert encoder.config._attn_implementation == "eager"
    audio = torch.randn(1, 16000)
    with torch.no_grad():
        features = extract_features(encoder, audio)
        ours = contextualize(encoder, features)
        stock = encoder(audio).last_hidden_state
    assert features.shape[1] == num_feature_frames(16000, encoder) == 49
    assert (ours - stock).abs().max().item() <= 1e-6


def test_resample_features_is_linear_with_aligned_corners():
    features = torch.tensor([[[0.0], [10.0], [20.0]]])
    assert torch.allclose(resample_features(features, 5), torch.tensor([[[0.0], [5.0], [10.0], [15.0], [20.0]]]))


def test_local_folder_round_trip_and_errors(tmp_path):
    torch.manual_seed(0)
    encoder = build_audio_encoder(**TINY_AUDIO_ENCODER)
    encoder.save_pretrained(tmp_path / "w2v")
    loaded = load_audio_encoder(tmp_path / "w2v")
    assert loaded.config._attn_implementation == "eager"
    for name, value in encoder.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name
    assert build_audio_encoder(**encoder_config(loaded)).config.num_attention_heads == 2
    with pytest.raises(TalkingFacesError, match="no config.json"):
        load_audio_encoder(tmp_path / "missing")
    with pytest.raises(TalkingFacesError, match="too short"):
        extract_features(encoder, torch.zeros(1, 100))
