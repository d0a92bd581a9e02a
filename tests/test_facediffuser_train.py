"""FaceDiffuser training: the denoising loss falls on synthetic data; checkpoints are official-format, load back, resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from facediffuser_tiny import TINY_HUBERT

from talking_faces.adapters.facediffuser import load_facediffuser
from talking_faces.adapters.facediffuser_train import make_variant, new_model, resume_or_none, sequence_style, train_facediffuser
from talking_faces.training import TrainOptions
from talking_faces.data.sequences import Sequence
from talking_faces.training import DistributedContext

V = 12
CPU = DistributedContext(0, 1, torch.device("cpu"))


pytestmark = pytest.mark.usefixtures("one_thread")


def _sequences(folder: Path) -> list[Sequence]:
    """Four 1 s utterances at 60 fps whose lips open with the audio envelope."""
    rng = np.random.default_rng(0)
    sequences = []
    for i in range(4):
        t = np.arange(16000) / 16000
        envelope = 0.5 + 0.5 * np.sin(2 * np.pi * (1 + i) * t)
        path = folder / f"s{i}.wav"
        soundfile.write(path, (np.sin(2 * np.pi * 150 * t) * envelope * 0.3).astype(np.float32), 16000)
        template = rng.standard_normal((V, 3)).astype(np.float32)
        vertices = (template + envelope[::266][:60, None, None] * np.ones((1, V, 3)) * 0.3).astype(np.float32)
        sequences.append(Sequence(f"S{i % 2}_s{i}", f"S{i % 2}", path, template, 60.0, lambda v=vertices: v))
    return sequences


def test_training_reduces_loss_writes_official_checkpoints_and_resumes(tmp_path):
    train = _sequences(tmp_path)
    variant = make_variant("vocaset", train)
    assert variant.subjects == ("S0", "S1") and sequence_style(variant, train[1]) == "S1"
    torch.manual_seed(0)
    model = new_model(variant, V * 3, None, diffusion_steps=20, latent_dim=16, audio_config=TINY_HUBERT)
    frozen = [n for n, p in model.audio_encoder.named_parameters() if not p.requires_grad]
    assert any(n.startswith("encoder.layers.1.") for n in frozen) and not any(n.startswith("encoder.layers.2.") for n in frozen)
    results = []
    train_facediffuser(model, variant, train, tmp_path / "run", CPU, TrainOptions(epochs=6, lr=3e-3, save_every=3),
                       on_epoch=results.append)
    losses = [r.train_loss for r in results]
    assert np.mean(losses[-2:]) < 0.5 * losses[0], losses
    state = torch.load(tmp_path / "run" / "6_model.pth", weights_only=True)
    assert "audio_encoder.encoder.pos_conv_embed.conv.weight_g" in state  # upstream's names
    assert json.loads((tmp_path / "run" / "6_model.json").read_text())["subjects"] == ["S0", "S1"]
    loaded, loaded_variant = load_facediffuser(tmp_path / "run" / "6_model.pth")
    assert loaded_variant.subjects == ("S0", "S1") and loaded.config.diffusion_steps == 20
    for name, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name
    resumed_model, _, resume_state = resume_or_none(tmp_path / "run")
    assert resume_state["epoch"] == 6
    more = []
    train_facediffuser(resumed_model, loaded_variant, train, tmp_path / "run", CPU, TrainOptions(epochs=7, lr=3e-3, save_every=3),
                       resume_state=resume_state, on_epoch=more.append)
    assert [r.epoch for r in more] == [7] and (tmp_path / "run" / "7_model.pth").is_file()
