"""Tiny official-format AUBlendNet checkpoints and synthetic AUBlendSet identities, shared by the AUBlendNet tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from talking_faces.aublendnet.checkpoints import codebook_state_dict, predictor_state_dict, save_checkpoint
from talking_faces.aublendnet.codebook import AUCodebook, CodebookConfig
from talking_faces.aublendnet.predictor import PredictorConfig, StyleBlendNet
from talking_faces.basis import AUBLENDSET_TARGETS, AUBLENDSET_TEMPLATE

from conftest import SHARED_FIXTURES

HEADS = 2


@pytest.fixture()
def single_thread():
    """One intra-op thread: tiny models only lose to thread hand-offs on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_configs(num_vertices: int, heads: int = HEADS) -> tuple[CodebookConfig, PredictorConfig]:
    """Small dims: hidden 32, 2 layers, codebook 16 x 8 (4 codes per token)."""
    cb = CodebookConfig(vertex_dim=3 * num_vertices, hidden=32, num_layers=2, num_heads=heads, intermediate=48, num_codes=16, code_dim=8)
    pr = PredictorConfig(vertex_dim=3 * num_vertices, feature_dim=32, num_layers=2, num_heads=heads, mlp_hidden=64, code_width=32)
    return cb, pr


def tiny_models(num_vertices: int, seed: int = 0, heads: int = HEADS) -> StyleBlendNet:
    """A random tiny predictor with its codebook; codes spread and feat_map non-zero so outputs depend on T."""
    torch.manual_seed(seed)
    cb_cfg, pr_cfg = tiny_configs(num_vertices, heads)
    codebook = AUCodebook(cb_cfg)
    model = StyleBlendNet(pr_cfg, codebook)
    with torch.no_grad():
        codebook.quantize.embedding.weight.normal_(0.0, 1.0)
        model.feat_map.weight.normal_(0.0, 0.3)
        model.learnable_style_emb.weight.mul_(50.0)  # templates are ~0.1 m: make the style matter
    return model.eval()


def leftover_keys(cfg: PredictorConfig) -> dict[str, torch.Tensor]:
    """The never-used upstream stage-2 modules, as they appear in official files."""
    f = cfg.feature_dim
    keys = {"vertice_map.weight": torch.randn(f, cfg.vertex_dim), "vertice_map.bias": torch.randn(f), "PPE.pe": torch.randn(1, 630, f)}
    for k in range(cfg.num_layers):
        p = f"transformer_decoder.layers.{k}."
        keys.update({p + "self_attn.in_proj_weight": torch.randn(3 * f, f), p + "linear1.weight": torch.randn(2 * f, f),
                     p + "norm3.bias": torch.randn(f)})
    return keys


def write_checkpoints(model: StyleBlendNet, folder: Path, with_leftovers: bool = True) -> tuple[Path, Path]:
    """Write (stage2, stage1) official-format files of `model`."""
    stage1, stage2 = folder / "vqvae.pth.tar", folder / "aublendnet.pth.tar"
    save_checkpoint(codebook_state_dict(model.autoencoder), stage1)
    state = predictor_state_dict(model)
    if with_leftovers:
        state.update(leftover_keys(model.config))
    save_checkpoint(state, stage2)
    return stage2, stage1


def synthetic_head(num_vertices: int, rng: np.random.Generator) -> np.ndarray:
    """A randomly stretched ellipsoid head `(V, 3)` in metres."""
    golden = np.pi * (3.0 - np.sqrt(5.0))
    i = np.arange(num_vertices)
    y = 1 - 2 * (i + 0.5) / num_vertices
    r = np.sqrt(1 - y**2)
    unit = np.stack([r * np.cos(golden * i), y, r * np.sin(golden * i)], axis=1)
    return (unit * np.array([0.08, 0.11, 0.09]) * rng.uniform(0.85, 1.15, size=3)).astype(np.float32)


def synthetic_targets(head: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """32 smooth AU displacement fields on a head: Gaussian bumps at fixed anchors, scaled by head size."""
    anchors = np.random.default_rng(7).normal(size=(32, 3))
    anchors /= np.linalg.norm(anchors, axis=1, keepdims=True)
    directions = np.random.default_rng(8).normal(size=(32, 3))
    unit = head / np.linalg.norm(head, axis=1, keepdims=True)
    weight = np.exp(-np.sum((unit[None] - anchors[:, None]) ** 2, axis=-1) / 0.3)  # (32, V)
    size = np.linalg.norm(head, axis=1).mean() / 0.1
    amplitude = 0.004 * size * rng.uniform(0.8, 1.2, size=(32, 1, 1))
    return (head[None] + amplitude * weight[..., None] * directions[:, None]).astype(np.float32)


def write_synthetic_aublendset(root: Path, num_identities: int, num_vertices: int, seed: int = 0) -> Path:
    """One folder per identity with template.npy (1, V*3) and new_AU_vertice32.npy (32, V*3)."""
    rng = np.random.default_rng(seed)
    for n in range(num_identities):
        head = synthetic_head(num_vertices, rng)
        folder = root / str(n)
        folder.mkdir(parents=True)
        np.save(folder / AUBLENDSET_TEMPLATE, head.reshape(1, -1))
        np.save(folder / AUBLENDSET_TARGETS, synthetic_targets(head, rng).reshape(32, -1))
    return root


FLAME_PLY = SHARED_FIXTURES / "flame_sample.ply"


def write_rig_aublendset(root: Path, num_identities: int, seed: int = 0) -> Path:
    """Identities made by the procedural rig on randomly perturbed FLAME heads (needs the FLAME fixture)."""
    from talking_faces.identity import Identity, load_identity
    from talking_faces.rig import build_rig_basis

    flame = load_identity(FLAME_PLY)
    rng = np.random.default_rng(seed)
    for n in range(num_identities):
        v = flame.vertices
        bend = rng.normal(0.0, 0.01, size=3) * np.sin(v[:, [1, 2, 0]] * 20.0)  # smooth, mm-scale shape change
        head = (v * rng.uniform(0.9, 1.1, size=3) + bend).astype(np.float32)
        basis = build_rig_basis(Identity(head, flame.faces, name=f"synthetic{n}"))
        folder = root / str(n)
        folder.mkdir(parents=True)
        np.save(folder / AUBLENDSET_TEMPLATE, head.reshape(1, -1))
        np.save(folder / AUBLENDSET_TARGETS, (head[None] + basis.offsets).reshape(32, -1))
    return root
