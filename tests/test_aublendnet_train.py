"""AUBlendNet training on synthetic identities: losses fall, official files, resume."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from talking_faces.aublendnet.checkpoints import load_codebook, load_predictor, read_state_dict
from talking_faces.aublendnet.data import AUBlendSetDataset
from talking_faces.aublendnet.predictor import StyleBlendNet
from talking_faces.aublendnet.train import TrainSettings, predictor_loss, train_codebook, train_predictor

from test_aublendnet_helpers import (  # noqa: F401
    FLAME_PLY,
    HEADS,
    single_thread,
    tiny_configs,
    write_rig_aublendset,
    write_synthetic_aublendset,
)

pytestmark = pytest.mark.usefixtures("single_thread")

V = 30


def _training_data(root):
    """6 identities: the procedural rig on perturbed FLAME heads, or smooth bump fields without the FLAME fixture."""
    if FLAME_PLY.is_file():
        return write_rig_aublendset(root, 6), 5023
    return write_synthetic_aublendset(root, num_identities=6, num_vertices=V), V


def test_both_stages_reduce_the_loss_and_write_official_files(tmp_path):
    data, num_vertices = _training_data(tmp_path / "data")
    cb_cfg, pr_cfg = tiny_configs(num_vertices)
    stage1 = train_codebook(data, tmp_path / "s1", cb_cfg, TrainSettings(epochs=15, lr=2e-3), device="cpu")
    assert len(stage1.epoch_losses) == 15
    assert stage1.epoch_losses[-1] < 0.5 * stage1.epoch_losses[0]
    codebook = load_codebook(stage1.checkpoint, HEADS)
    assert set(read_state_dict(stage1.checkpoint, "s1")) == set(codebook.state_dict())
    assert list(torch.load(stage1.checkpoint, weights_only=True)) == ["state_dict"]  # optimiser state lives in the sidecar
    assert (tmp_path / "s1" / "train_state.pt").is_file()

    # stage 2: epoch means jump with the discrete codes, so compare the whole-set loss before and after
    rows = torch.stack([item[0] for item in AUBlendSetDataset(data, "train")])
    torch.manual_seed(131)  # the training seed: this is the initial model
    before = _dataset_loss(StyleBlendNet(pr_cfg, codebook), rows)
    stage2 = train_predictor(data, tmp_path / "s2", stage1.checkpoint, pr_cfg, TrainSettings(epochs=5, lr=1e-3), "cpu", HEADS)
    assert _dataset_loss(load_predictor(stage2.checkpoint, codebook, HEADS), rows) < 0.85 * before
    assert stage2.epoch_losses[-1] < 0.6 * stage2.epoch_losses[0]
    keys = set(read_state_dict(stage2.checkpoint, "s2"))
    assert not any(k.startswith("autoencoder.") for k in keys) and "feat_map.weight" in keys

def _dataset_loss(model, rows):
    with torch.no_grad():
        return predictor_loss(model.eval(), rows, rows[:, 0]).item()


def test_training_resumes_from_the_sidecar(tmp_path):
    data = write_synthetic_aublendset(tmp_path / "data", num_identities=3, num_vertices=V)
    cb_cfg, _ = tiny_configs(V)
    first = train_codebook(data, tmp_path / "s1", cb_cfg, TrainSettings(epochs=2, lr=1e-3), device="cpu")
    again = train_codebook(data, tmp_path / "s1", cb_cfg, TrainSettings(epochs=3, lr=1e-3), device="cpu")
    assert (first.start_epoch, len(first.epoch_losses)) == (0, 2)
    assert (again.start_epoch, len(again.epoch_losses)) == (2, 1)
    state = torch.load(tmp_path / "s1" / "train_state.pt", weights_only=True)
    assert state["epoch"] == 3 and len(state["losses"]) == 3
    assert train_codebook(data, tmp_path / "s1", cb_cfg, TrainSettings(epochs=3, lr=1e-3), device="cpu").epoch_losses == []


def test_torchrun_ddp_two_processes(tmp_path):
    script = Path(sys.executable).with_name("talkface")
    script = script if script.is_file() else Path(shutil.which("talkface") or "talkface")
    data = write_synthetic_aublendset(tmp_path / "data", num_identities=3, num_vertices=V)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "--no-python", str(script),
           "train", "aublendnet", "--stage", "codebook", "--data-root", str(data), "--out", str(tmp_path / "s1"),
           "--epochs", "2", "--lr", "1e-3", "--hidden-size", "32", "--num-layers", "1", "--num-heads", "2",
           "--num-codes", "16", "--code-dim", "8", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # TMPDIR: conftest's, so torchelastic_* folders stay in tmp_path
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    state = torch.load(tmp_path / "s1" / "train_state.pt", weights_only=True)
    assert state["epoch"] == 2 and len(state["losses"]) == 2
    assert load_codebook(tmp_path / "s1" / "model.pth.tar", 2).config.num_layers == 1
    assert sorted(p.name for p in (tmp_path / "s1").iterdir()) == ["model.pth.tar", "train_state.pt"]
