"""Tiny FaceFormer checkpoints in the official format, for tests (importable: `from faceformer_tiny import ...`).

Same key names as upstream's `vocaset.pth` (legacy `weight_g`/`weight_v`, the `PPE.pe` buffer), same
wav2vec2 conv kernel/stride layout, but small widths so a checkpoint is a few hundred kB.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from talking_faces.adapters.faceformer import DATASETS, Conditioning, sidecar_dict, upstream_state_dict
from talking_faces.adapters.faceformer_model import FaceFormer, FaceFormerConfig

TINY_AUDIO_ENCODER = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "conv_dim": [8] * 7,
    "num_conv_pos_embeddings": 8,
    "num_conv_pos_embedding_groups": 2,
}


def tiny_faceformer(
    vertice_dim: int = 15069, feature_dim: int = 16, num_styles: int = 8, dataset: str = "vocaset", seed: int = 0
) -> FaceFormer:
    """A randomly initialised tiny FaceFormer in eval mode (non-zero motion decoder, unlike upstream's init)."""
    torch.manual_seed(seed)
    conventions = DATASETS[dataset]
    config = FaceFormerConfig(
        vertice_dim=vertice_dim, feature_dim=feature_dim, num_styles=num_styles, period=conventions.period,
        fps=conventions.fps, audio_steps_per_frame=conventions.audio_steps_per_frame, audio_encoder=dict(TINY_AUDIO_ENCODER),
    )
    model = FaceFormer(config)
    torch.nn.init.normal_(model.vertice_map_r.weight, std=0.02)
    torch.nn.init.normal_(model.vertice_map_r.bias, std=0.002)
    return model.eval()


def write_tiny_faceformer_checkpoint(
    path: str | Path,
    vertice_dim: int = 15069,
    feature_dim: int = 16,
    num_subjects: int = 8,
    dataset: str = "vocaset",
    seed: int = 0,
) -> Path:
    """Write `path` (bare upstream-format state_dict) and its sidecar `path.with_suffix('.json')`.

    The sidecar carries the tiny wav2vec2 config (its head count cannot be read off tensor shapes)
    and the dataset's official subject names when `num_subjects` matches them. Returns `path`.
    """
    path = Path(path)
    model = tiny_faceformer(vertice_dim, feature_dim, num_subjects, dataset, seed)
    official = list(DATASETS[dataset].subjects)
    subjects = official if len(official) == num_subjects else [f"S{i}" for i in range(num_subjects)]
    default = DATASETS[dataset].default_style if DATASETS[dataset].default_style in subjects else subjects[0]
    torch.save(upstream_state_dict(model), path)
    path.with_suffix(".json").write_text(json.dumps(sidecar_dict(model, Conditioning(dataset, subjects, [], default))))
    return path
