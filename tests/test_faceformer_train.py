"""FaceFormer training: the loss falls on synthetic data; checkpoints are official-format, resumable."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from faceformer_tiny import TINY_AUDIO_ENCODER  # noqa: E402

from talking_faces.adapters.faceformer import load_faceformer  # noqa: E402
from talking_faces.adapters.faceformer_train import (  # noqa: E402
    TrainOptions,
    make_conditioning,
    new_model,
    resume_or_none,
    train_faceformer,
)
from talking_faces.errors import TalkingFacesError  # noqa: E402
from talking_faces.data.sequences import Sequence  # noqa: E402
from talking_faces.training import DistributedContext, shard  # noqa: E402

V = 12
CPU = DistributedContext(0, 1, torch.device("cpu"))


pytestmark = pytest.mark.usefixtures("one_thread")


def _sequences(folder: Path, fps: float = 60.0, emotions: bool = False) -> list[Sequence]:
    """Four 1 s utterances; the lips open with the audio envelope (60 fps ground truth, like raw VOCASET)."""
    rng = np.random.default_rng(0)
    sequences = []
    for i in range(4):
        t = np.arange(16000) / 16000
        envelope = 0.5 + 0.5 * np.sin(2 * np.pi * (1 + i) * t)
        audio = (np.sin(2 * np.pi * 150 * t) * envelope * 0.3).astype(np.float32)
        path = folder / f"s{i}.wav"
        soundfile.write(path, audio, 16000)
        template = rng.standard_normal((V, 3)).astype(np.float32)
        frames = int(fps)
        motion = envelope[:: 16000 // frames][:frames, None, None] * np.ones((1, V, 3)) * 0.3
        vertices = (template + motion).astype(np.float32)
        sequences.append(Sequence(f"S{i % 2}_s{i}", f"S{i % 2}", path, template, fps, lambda v=vertices: v,
                                  emotion=("happy" if i < 2 else "sad") if emotions else None))
    return sequences


def test_training_reduces_loss_and_writes_loadable_checkpoints(tmp_path):
    train = _sequences(tmp_path)
    conditioning = make_conditioning("vocaset", train)
    torch.manual_seed(0)
    model = new_model("vocaset", conditioning, V * 3, None, feature_dim=16, audio_config=TINY_AUDIO_ENCODER)
    assert not any(p.requires_grad for p in model.audio_encoder.feature_extractor.parameters())  # frozen CNN
    results = []
    train_faceformer(model, conditioning, train, tmp_path / "run", CPU, TrainOptions(epochs=4, lr=1e-3, save_every=2),
                     val=train[:1], on_epoch=results.append)
    losses = [r.train_loss for r in results]
    assert losses[-1] < 0.6 * losses[0], losses
    assert results[-1].val_loss < results[0].val_loss
    assert [r.checkpoint.name if r.checkpoint else None for r in results] == [None, "2_model.pth", None, "4_model.pth"]
    state = torch.load(tmp_path / "run" / "4_model.pth", weights_only=True)
    assert "audio_encoder.encoder.pos_conv_embed.conv.weight_v" in state and state["PPE.pe"].shape == (1, 630, 16)
    sidecar = json.loads((tmp_path / "run" / "4_model.json").read_text())
    assert sidecar["subjects"] == ["S0", "S1"] and sidecar["dataset"] == "vocaset"
    loaded, loaded_conditioning = load_faceformer(tmp_path / "run" / "4_model.pth")
    assert loaded_conditioning.subjects == ["S0", "S1"]
    for name, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value.cpu()), name


def test_resume_continues_after_the_saved_epoch(tmp_path):
    train = _sequences(tmp_path)
    conditioning = make_conditioning("vocaset", train)
    model = new_model("vocaset", conditioning, V * 3, None, feature_dim=16, audio_config=TINY_AUDIO_ENCODER)
    train_faceformer(model, conditioning, train[:2], tmp_path / "run", CPU, TrainOptions(epochs=1, lr=1e-3))
    model, conditioning, state = resume_or_none(tmp_path / "run")
    assert state["epoch"] == 1 and state["checkpoint"] == "1_model.pth"
    epochs = []
    train_faceformer(model, conditioning, train[:2], tmp_path / "run", CPU, TrainOptions(epochs=2, lr=1e-3),
                     resume_state=state, on_epoch=lambda r: epochs.append(r.epoch))
    assert epochs == [2]
    assert resume_or_none(tmp_path / "empty") is None


def test_subject_and_emotion_condition(tmp_path):
    train = _sequences(tmp_path, fps=25.0, emotions=True)
    conditioning = make_conditioning("mead", train, "subject+emotion")
    assert conditioning.subjects == ["S0", "S1"] and conditioning.emotions == ["happy", "sad"]
    assert torch.equal(conditioning.one_hot("S1,sad"), torch.tensor([[0.0, 1.0, 0.0, 1.0]]))
    model = new_model("mead", conditioning, V * 3, None, fps=25.0, feature_dim=16, audio_config=TINY_AUDIO_ENCODER)
    assert (model.config.num_styles, model.config.audio_steps_per_frame, model.config.period) == (4, 2, 25)
    with pytest.raises(TalkingFacesError, match="emotion labels"):
        make_conditioning("vocaset", _sequences(tmp_path), "subject+emotion")


def test_shards_are_equal_and_cover_everything():
    items = list(range(7))
    shards = [shard(items, DistributedContext(r, 3, torch.device("cpu"))) for r in range(3)]
    assert [len(s) for s in shards] == [3, 3, 3]
    assert set(sum(shards, [])) == set(items)


def test_cli_trains_from_a_local_audio_encoder_folder(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import talking_faces.cli.faceformer_cmd  # noqa: F401  (registers the command)
    import talking_faces.data as datasets
    from talking_faces.adapters.audio_encoders import build_audio_encoder
    from talking_faces.cli.common import app

    sequences = _sequences(tmp_path)
    monkeypatch.setattr(datasets, "read_dataset", lambda name, root, split: sequences[:2] if split == "train" else sequences[2:3])
    build_audio_encoder(**TINY_AUDIO_ENCODER).save_pretrained(tmp_path / "w2v")
    args = ["train", "faceformer", "--dataset", "vocaset", "--data-root", str(tmp_path), "--out", str(tmp_path / "run")]
    refused = CliRunner().invoke(app, args)
    assert isinstance(refused.exception, TalkingFacesError) and "--audio-encoder" in str(refused.exception)
    result = CliRunner().invoke(app, [*args, "--audio-encoder", str(tmp_path / "w2v"), "--epochs", "1"])
    assert result.exit_code == 0, result.output
    model, conditioning = load_faceformer(tmp_path / "run" / "1_model.pth")
    assert model.audio_encoder.config.hidden_size == 32 and conditioning.subjects == ["S0", "S1"]
