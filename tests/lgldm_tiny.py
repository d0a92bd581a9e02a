"""Tiny LG-LDM models written in the official checkpoint formats, for the tests."""

from __future__ import annotations

from pathlib import Path

import torch

from talking_faces.adapters.lgldm_checkpoints import diffusion_payload, save_payload, vqvae_payload
from talking_faces.adapters.lgldm_denoiser import DenoiserConfig, LatentDenoiser
from talking_faces.adapters.lgldm_vqvae import MotionVQConfig, MotionVQVAE, vocaset_config
from talking_faces.schedulers.lucidrains import cosine_betas_clipped, lucidrains_buffers

NUM_VERTICES = 10
# HuBERT-large's architecture (layer-norm CNN with bias, stable layer norm), scaled down.
TINY_HUBERT = {
    "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 1, "intermediate_size": 32, "conv_dim": [8] * 7,
    "num_conv_pos_embeddings": 8, "num_conv_pos_embedding_groups": 2, "feat_extract_norm": "layer",
    "do_stable_layer_norm": True, "conv_bias": True, "mask_time_prob": 0.05,
}


def tiny_vqvae(mead: bool = True, seed: int = 0, num_vertices: int = NUM_VERTICES) -> MotionVQVAE:
    torch.manual_seed(seed)
    common = {"vertex_dim": num_vertices * 3, "hidden": 16, "num_layers": 1, "num_heads": 8, "intermediate": 8, "code_dim": 4}
    config = MotionVQConfig(**common, num_codes=28, tokens_per_frame=4, num_emotions=7) if mead else vocaset_config(**common, num_codes=6)
    model = MotionVQVAE(config)
    model.quantize.embedding.weight.data.normal_(0, 1)
    return model.eval()


def tiny_denoiser(mead: bool = True, seed: int = 0) -> LatentDenoiser:
    torch.manual_seed(seed)
    config = DenoiserConfig(
        feature_dim=16, n_head=4 if mead else 8, num_layers=2, ffn_dim=32, num_styles=25 if mead else 8,
        num_emotions=7 if mead else 0, audio_steps_per_frame=2 if mead else 1, periodic_position=not mead,
        fps=25.0 if mead else 30.0, audio_encoder=TINY_HUBERT,
    )
    model = LatentDenoiser(config)
    model.latent_decoder.weight.data.normal_(0, 0.2)  # upstream zero-initialises it; a trained one is not zero
    model.latent_decoder.bias.data.normal_(0, 0.2)
    return model.eval()


def write_pair(folder: Path, mead: bool = True, num_vertices: int = NUM_VERTICES) -> tuple[Path, Path]:
    """(stage2, stage1) files: `{'epoch','model','opt'}` and MEAD `{'model'}` / VOCASET `{'state_dict'}` with a DDP prefix."""
    name = "mead" if mead else "vocaset"
    stage2, stage1 = folder / f"{name}_stage2.mpt", folder / f"{name}_stage1.mpt"
    buffers = lucidrains_buffers(cosine_betas_clipped(1000))
    save_payload(diffusion_payload(tiny_denoiser(mead), buffers), stage2)
    payload = vqvae_payload(tiny_vqvae(mead, num_vertices=num_vertices))
    if not mead:
        payload = {"state_dict": {"module." + k: v for k, v in payload["state_dict"].items()}}
    save_payload(payload, stage1)
    return stage2, stage1
