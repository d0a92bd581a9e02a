"""Tiny FaceDiffuser checkpoints in the official format, for tests (`from facediffuser_tiny import ...`).

Same key names as upstream's files (legacy `weight_g`/`weight_v`, 232 keys with a 12-layer HuBERT;
fewer here), small widths. HuBERT's hidden size 64 gives one head, as the loader infers (hidden / 64).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from talking_faces.adapters.facediffuser import VARIANTS, Variant, official_state_dict, sidecar_dict
from talking_faces.adapters.facediffuser_model import FaceDiff, FaceDiffConfig

TINY_HUBERT = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 1,
    "intermediate_size": 32,
    "conv_dim": [8] * 7,
    "num_conv_pos_embeddings": 8,
    "num_conv_pos_embedding_groups": 4,
}


def tiny_facediffuser(dataset: str = "vocaset", vertice_dim: int = 60, diffusion_steps: int = 100, num_conditions: int | None = None,
                      seed: int = 0) -> FaceDiff:
    """A randomly initialised tiny FaceDiff in eval mode (non-zero final layer, unlike upstream's init)."""
    torch.manual_seed(seed)
    variant = VARIANTS[dataset]
    config = FaceDiffConfig(
        vertice_dim=vertice_dim, latent_dim=8, gru_dim=8, gru_layers=2, diffusion_steps=diffusion_steps,
        num_conditions=num_conditions or variant.width, style_target="audio" if variant.emotions else "output",
        fps=variant.fps, audio_encoder=dict(TINY_HUBERT),
    )
    model = FaceDiff(config)
    with torch.no_grad():
        model.final_layer.weight.normal_(0, 0.05)
        model.final_layer.bias.normal_(0, 0.01)
        model.obj_vector.weight.normal_(0, 1.0)
    return model.eval()


def write_tiny_facediffuser(path: str | Path, dataset: str = "vocaset", vertice_dim: int = 60, diffusion_steps: int = 100,
                            sidecar: bool = True, seed: int = 0) -> Path:
    """Write `path` (bare upstream-format state_dict) and, with `sidecar`, `path.with_suffix('.json')`. Returns `path`."""
    path = Path(path)
    model = tiny_facediffuser(dataset, vertice_dim, diffusion_steps, seed=seed)
    torch.save(official_state_dict(model), path)
    if sidecar:
        variant: Variant = VARIANTS[dataset]
        path.with_suffix(".json").write_text(json.dumps(sidecar_dict(variant, model)))
    return path
