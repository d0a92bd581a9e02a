"""LG-LDM checkpoint files: strict loading with sizes from shapes, pair checks, and writing.

Upstream saves `{'epoch', 'model', 'opt'}` (`model-N.mpt`): stage 1 holds the VQ-VAE state_dict,
stage 2 the GaussianDiffusion state_dict, i.e. twelve float32 schedule buffers plus the FDM under
`denoise_fn.` (HuBERT-large included, with the legacy `weight_g`/`weight_v` names). The VOCASET
stage 1 is CodeTalker's `{'state_dict': ...}` file, possibly with a DDP `module.` prefix.
Documented deviations: the positional table `denoise_fn.PE.pe` is accepted and rebuilt at any
length instead of being read; the decoder's head count, which no tensor stores, is upstream's
(4 for the MEAD model, which has an emotion embedding, 8 for VOCASET).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from talking_faces.checkpoints import (
    check_keys, count_layers, legacy_weight_norm_names, load_strict, read_checkpoint, rename_legacy_weight_norm,
)
from talking_faces.errors import TalkingFacesError
from talking_faces.schedulers import BUFFER_NAMES
from talking_faces.schedulers.lucidrains import cosine_betas_clipped, lucidrains_buffers
from talking_faces.training import atomic_torch_save

from .audio_encoders import FEATURE_RATE, encoder_config_from_state
from .lgldm_denoiser import DenoiserConfig, LatentDenoiser
from .lgldm_vqvae import MotionVQConfig, MotionVQVAE

STAGE1 = "LG-LDM stage 1 (VQ-VAE)"
STAGE2 = "LG-LDM stage 2 (diffusion)"
DENOISER_PREFIX = "denoise_fn."
POSITION_KEY = "PE.pe"
VQ_HEADS = 8
MEAD_HEADS, VOCASET_HEADS = 4, 8


def vqvae_config(state: dict[str, torch.Tensor]) -> MotionVQConfig:
    """Stage-1 dimensions from tensor shapes (the head count, 8, is not stored)."""
    hidden, vertex_dim = state["encoder.vertice_mapping.0.weight"].shape
    num_codes, code_dim = state["quantize.embedding.weight"].shape
    post = state.get("encoder.encoder_linear_embedding_post.net.weight")
    emotion = state.get("encoder.emotion_mapping.0.weight")
    return MotionVQConfig(
        vertex_dim=int(vertex_dim), hidden=int(hidden),
        num_layers=count_layers(state, r"encoder\.encoder_transformer\.net\.(\d+)\.") // 2,
        num_heads=VQ_HEADS,
        intermediate=int(state["encoder.encoder_transformer.net.1.fn.fn.l1.weight"].shape[0]),
        num_codes=int(num_codes), code_dim=int(code_dim),
        kernel_size=int(state["encoder.squasher.0.0.weight"].shape[2]),
        tokens_per_frame=int((post.shape[0] if post is not None else hidden) // code_dim),
        num_emotions=int(emotion.shape[1]) if emotion is not None else 0,
    )


def load_vqvae(path: str | Path) -> MotionVQVAE:
    """Stage 1 from `{'model': ...}` (LG-LDM) or `{'state_dict': ...}` (CodeTalker), strictly, in eval mode."""
    state = read_checkpoint(path, STAGE1, container=("model", "state_dict"))
    if any(k.startswith(DENOISER_PREFIX) for k in state):
        raise TalkingFacesError(f"{path} is a stage-2 diffusion file; pass it as --checkpoint and its VQ-VAE as --vqvae.")
    hint = "pass the stage-1 VQ-VAE file (e.g. 3d_mead_stage1.mpt or vocaset_stage1.mpt) as --vqvae"
    try:
        config = vqvae_config(state)
    except (KeyError, IndexError) as exc:
        raise TalkingFacesError(f"{path} is not an {STAGE1} checkpoint (no {exc}); {hint}.") from None
    # Key names depend only on the layer count and the variant: check them on a minimal model first.
    small = replace(config, vertex_dim=2, hidden=config.tokens_per_frame if not config.num_emotions else 2,
                    num_heads=1, intermediate=2, code_dim=1, num_codes=max(config.num_emotions, 1))
    check_keys(path, STAGE1, state, MotionVQVAE(small).state_dict(), hint)
    model = MotionVQVAE(config)
    load_strict(model, state, path, STAGE1, hint)
    return model.eval()


def denoiser_config(state: dict[str, torch.Tensor], position_table: torch.Tensor | None) -> DenoiserConfig:
    """FDM dimensions from the `denoise_fn.*` tensor shapes (prefix removed, weight-norm renamed).

    The positional encoding is periodic when the stored table repeats every 30 rows (VOCASET).
    """
    f = int(state["latent_decoder.weight"].shape[0])
    emotions = int(state["emotion_embedd.weight"].shape[1]) if "emotion_embedd.weight" in state else 0
    audio = encoder_config_from_state(state, "audio_encoder.")
    steps_per_frame = int(state["audio_extract.0.weight"].shape[1]) // audio["hidden_size"]
    period = 30
    periodic = (position_table is not None and position_table.shape[-2] > period
                and torch.equal(position_table[..., 0, :], position_table[..., period, :]))
    return DenoiserConfig(
        feature_dim=f,
        n_head=MEAD_HEADS if emotions else VOCASET_HEADS,
        num_layers=count_layers(state, r"transformer_decoder\.layers\.(\d+)\."),
        ffn_dim=int(state["transformer_decoder.layers.0.linear1.weight"].shape[0]),
        num_styles=int(state["style_embedd.weight"].shape[1]),
        num_emotions=emotions,
        num_timesteps=int(state["time_embedd.0.weight"].shape[1]),
        audio_steps_per_frame=steps_per_frame,
        periodic_position=periodic,
        period=period,
        fps=FEATURE_RATE / steps_per_frame if steps_per_frame > 1 else 30.0,
        audio_encoder=audio,
    )


def load_denoiser(path: str | Path) -> tuple[LatentDenoiser, dict[str, torch.Tensor]]:
    """Stage 2 from `{'model': GaussianDiffusion state}`: the FDM (strict) and the twelve schedule buffers."""
    state = read_checkpoint(path, STAGE2, container="model")
    hint = "pass the stage-2 diffusion file (e.g. 3d_mead_stage2.mpt) as --checkpoint"
    if "quantize.embedding.weight" in state:
        raise TalkingFacesError(f"{path} is a stage-1 VQ-VAE file; pass it as --vqvae and the diffusion file as --checkpoint.")
    buffers = {k: v for k, v in state.items() if k in BUFFER_NAMES}
    inner = {k[len(DENOISER_PREFIX):]: v for k, v in state.items() if k.startswith(DENOISER_PREFIX)}
    stray = [k for k in state if k not in buffers and not k.startswith(DENOISER_PREFIX)]
    check_keys(path, STAGE2, [*buffers, *stray], BUFFER_NAMES, hint)
    position_table = inner.pop(POSITION_KEY, None)
    inner = rename_legacy_weight_norm(inner)
    try:
        config = denoiser_config(inner, position_table)
    except (KeyError, IndexError) as exc:
        raise TalkingFacesError(f"{path} is not an {STAGE2} checkpoint (no denoise_fn.{exc.args[0]}); {hint}.") from None
    model = LatentDenoiser(config)
    load_strict(model, inner, path, STAGE2, hint)
    check_cosine_buffers(buffers, path)
    return model.eval(), buffers


def check_cosine_buffers(buffers: dict[str, torch.Tensor], path: str | Path) -> None:
    """The stored schedule must be the clipped cosine one upstream registers (to float32 rounding)."""
    steps = int(buffers["betas"].shape[0]) if buffers["betas"].dim() == 1 else 0
    expected = lucidrains_buffers(cosine_betas_clipped(steps)) if steps else {}
    wrong = [k for k in BUFFER_NAMES if not steps or buffers[k].shape != expected[k].shape
             or not torch.allclose(buffers[k].float(), expected[k], rtol=1e-5, atol=1e-6)]
    if wrong:
        raise TalkingFacesError(
            f"{path}: the diffusion schedule buffers ({', '.join(wrong[:3])}) are not the cosine schedule LG-LDM trains with; "
            "the file is corrupt or from another diffusion model."
        )


def check_pair(denoiser: LatentDenoiser, vqvae: MotionVQVAE, stage2: str | Path, stage1: str | Path) -> None:
    """One line when the two stages were not trained together (variant or latent width differ)."""
    d, v = denoiser.config, vqvae.config

    def describe(emotions: int, width: int) -> str:
        return f"{'MEAD (emotion-conditioned)' if emotions else 'VOCASET (no emotion)'}, {width} latent values per frame"

    if bool(d.num_emotions) != bool(v.num_emotions) or d.feature_dim != v.latent_width or (v.num_emotions and d.num_emotions != v.num_emotions):
        raise TalkingFacesError(
            f"Stage 2 {stage2} ({describe(d.num_emotions, d.feature_dim)}) does not fit stage 1 {stage1} "
            f"({describe(v.num_emotions, v.latent_width)}); pass the VQ-VAE trained with it as --vqvae."
        )


# ----- writing official-format files ----------------------------------------------------------
def vqvae_payload(model: MotionVQVAE, epoch: int = 0, opt: dict[str, Any] | None = None) -> dict[str, Any]:
    """`{'epoch', 'model', 'opt'}` (MEAD, LG-LDM's trainer) or `{'state_dict'}` (VOCASET, CodeTalker's)."""
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if model.emotional:
        return {"epoch": epoch, "model": weights, "opt": opt or {}}
    return {"state_dict": weights}


def diffusion_payload(model: LatentDenoiser, buffers: dict[str, torch.Tensor], epoch: int = 0,
                      opt: dict[str, Any] | None = None, max_len: int = 5000) -> dict[str, Any]:
    """The GaussianDiffusion file upstream's `load_state_dict` reads: buffers, `denoise_fn.*` with legacy
    weight-norm names, and the positional table at upstream's size (5000 rows, or 630 periodic ones)."""
    c = model.config
    inner = legacy_weight_norm_names({k: v.detach().cpu() for k, v in model.state_dict().items()})
    rows = (600 // c.period + 1) * c.period if c.periodic_position else max_len
    inner[POSITION_KEY] = model.positions(rows, torch.zeros(())).unsqueeze(0)
    weights = {**{k: buffers[k].detach().cpu().float() for k in BUFFER_NAMES}, **{DENOISER_PREFIX + k: v for k, v in inner.items()}}
    return {"epoch": epoch, "model": weights, "opt": opt or {}}


def save_payload(payload: dict[str, Any], path: str | Path) -> None:
    """Write a checkpoint payload atomically."""
    atomic_torch_save(payload, path)
