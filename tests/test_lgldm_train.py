"""LG-LDM training: each stage trains on synthetic data and writes files the adapter loads; runs resume."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lgldm_tiny import NUM_VERTICES, TINY_HUBERT  # noqa: E402

from talking_faces.adapters.lgldm import LGLDMAdapter  # noqa: E402
from talking_faces.adapters.lgldm_checkpoints import load_denoiser, load_vqvae  # noqa: E402
from talking_faces.adapters.lgldm_train import (  # noqa: E402
    TrainOptions, emotion_one_hot, new_denoiser, new_vqvae, resume_or_none, speakers_for, train_lgldm,
)
from talking_faces.data.sequences import Sequence  # noqa: E402
from talking_faces.errors import TalkingFacesError  # noqa: E402
from talking_faces.training import DistributedContext  # noqa: E402

CPU = DistributedContext(0, 1, torch.device("cpu"))
SMALL_VQ = {"hidden": 16, "num_layers": 1, "num_heads": 8, "intermediate": 8, "code_dim": 4}


pytestmark = pytest.mark.usefixtures("one_thread")


def _sequences(folder: Path, fps: float, mead: bool) -> list[Sequence]:
    """Three 0.8 s utterances whose lips open with the audio envelope."""
    rng = np.random.default_rng(0)
    template = rng.standard_normal((NUM_VERTICES, 3)).astype(np.float32) * 0.1
    subjects = ("M003", "M005") if mead else ("FaceTalk_170728_03272_TA", "FaceTalk_170904_00128_TA")
    sequences = []
    for i in range(3):
        t = np.arange(12800) / 16000
        envelope = 0.5 + 0.5 * np.sin(2 * np.pi * (1 + i) * t)
        path = folder / f"s{i}.wav"
        soundfile.write(path, (np.sin(2 * np.pi * 150 * t) * envelope * 0.3).astype(np.float32), 16000)
        frames = int(0.8 * fps)
        motion = envelope[:: int(16000 // fps)][:frames, None, None] * np.ones((1, NUM_VERTICES, 3)) * 0.01
        vertices = (template + motion).astype(np.float32)
        sequences.append(Sequence(f"x{i}", subjects[i % 2], path, template, fps, lambda v=vertices: v,
                                  emotion=("happy", "sad", "neutral")[i] if mead else None))
    return sequences


def test_emotion_one_hot_order():
    assert emotion_one_hot("surprise").argmax().item() == 6 and emotion_one_hot("disgust").argmax().item() == 2
    assert not emotion_one_hot("neutral").any() and not emotion_one_hot(None).any()


@pytest.mark.parametrize("mead", [True, False])
def test_both_stages_train_and_write_loadable_files(tmp_path, mead):
    dataset, fps = ("mead", 25.0) if mead else ("vocaset", 30.0)
    sequences = _sequences(tmp_path, fps, mead)
    speakers = speakers_for(dataset, sequences)
    assert len(speakers) == (25 if mead else 8)  # official orders: the subjects are among them
    torch.manual_seed(0)
    vqvae = new_vqvae(dataset, NUM_VERTICES * 3, **SMALL_VQ, **({"num_codes": 28, "tokens_per_frame": 4} if mead else {"num_codes": 8}))
    losses: list[float] = []
    stage1 = train_lgldm("vqvae", vqvae, sequences, tmp_path / "s1", CPU, speakers, TrainOptions(epochs=4, save_every=2),
                         on_epoch=lambda r: losses.append(r.train_loss))
    assert stage1 == tmp_path / "s1" / "model-4.mpt" and losses[-1] < losses[0]
    loaded = load_vqvae(stage1)
    assert set(torch.load(stage1, weights_only=True)) == ({"epoch", "model", "opt"} if mead else {"state_dict"})
    denoiser = new_denoiser(dataset, loaded, len(speakers), None, TINY_HUBERT, num_layers=1)
    stage2 = train_lgldm("diffusion", loaded, sequences, tmp_path / "s2", CPU, speakers, TrainOptions(epochs=1),
                         denoiser=denoiser, vqvae_path=stage1)
    trained, buffers = load_denoiser(stage2)
    for key, value in trained.state_dict().items():
        assert torch.equal(value, denoiser.state_dict()[key]), key
    adapter = LGLDMAdapter.from_checkpoint(stage2, vqvae=stage1, sampler="dpmpp", steps=3)
    offsets = adapter.sample(np.zeros(8000, np.float32) + 0.01, "1" + (",happy" if mead else ""))
    assert offsets.shape[-1] == NUM_VERTICES * 3 and torch.isfinite(offsets).all()
    # Resume: the state names the stage, its speakers and the stage-1 file.
    state = resume_or_none(tmp_path / "s2")
    assert state["stage"] == "diffusion" and state["epoch"] == 1 and Path(state["vqvae"]) == stage1


def test_cli_stage_one_and_bad_stage(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import talking_faces.cli.lgldm_cmd  # noqa: F401  (registers the command)
    import talking_faces.data as datasets
    import talking_faces.adapters.lgldm_train as lgldm_train
    from talking_faces.cli.common import app

    sequences = _sequences(tmp_path, 30.0, mead=False)
    monkeypatch.setattr(datasets, "read_dataset", lambda name, root, split: sequences)
    small = lgldm_train.new_vqvae
    monkeypatch.setattr(lgldm_train, "new_vqvae", lambda dataset, dim: small(dataset, dim, **SMALL_VQ, num_codes=8))
    args = ["train", "lgldm", "--dataset", "vocaset", "--data-root", str(tmp_path), "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(app, [*args, "--stage", "vqvae", "--epochs", "1"])
    assert result.exit_code == 0, result.output
    assert load_vqvae(tmp_path / "run" / "model-1.mpt").config.num_codes == 8
    bad = CliRunner().invoke(app, [*args, "--stage", "latent"])
    assert isinstance(bad.exception, TalkingFacesError) and "--stage" in str(bad.exception)
    refused = CliRunner().invoke(app, [*args[:-1], str(tmp_path / "run2"), "--stage", "diffusion"])
    assert isinstance(refused.exception, TalkingFacesError) and "--vqvae" in str(refused.exception)
