"""Official AUBlendNet checkpoint files: strict loading, dimension inference, and writing.

Both stages are `torch.save({'state_dict': weights})` files with the upstream key names:
stage 1 (`VQAutoEncoder`, 147 keys) and stage 2 (`AUBlendNet`, 234 keys, without `autoencoder.*`).
Every dimension comes from the tensors' shapes; only the head count (8 upstream) is not stored.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from ..checkpoints import check_keys, count_layers, load_strict, read_checkpoint
from ..errors import TalkingFacesError
from ..training import atomic_torch_save
from .codebook import AUCodebook, CodebookConfig
from .predictor import PredictorConfig, StyleBlendNet

STATE_KEY = "state_dict"
DEFAULT_HEADS = 8
# Stage-2 leftovers that upstream builds but never calls: accepted when present, dropped, never built.
UNUSED_PREDICTOR_PREFIXES = ("vertice_map.", "PPE.", "transformer_decoder.")


def read_state_dict(path: str | Path, what: str) -> dict[str, torch.Tensor]:
    """The `state_dict` of an official-format file, on CPU, with any DDP `module.` prefix removed."""
    return read_checkpoint(path, what, container=STATE_KEY)


def _shape(state: dict[str, torch.Tensor], key: str, dim: int, default: int) -> int:
    tensor = state.get(key)
    return int(tensor.shape[dim]) if tensor is not None and tensor.dim() > dim else default


def codebook_config(state: dict[str, torch.Tensor], num_heads: int = DEFAULT_HEADS) -> CodebookConfig:
    """Stage-1 dimensions read from tensor shapes (official values where a key is absent)."""
    d = CodebookConfig()
    return CodebookConfig(
        vertex_dim=_shape(state, "encoder.vertice_mapping.0.weight", 1, d.vertex_dim),
        hidden=_shape(state, "encoder.vertice_mapping.0.weight", 0, d.hidden),
        num_layers=count_layers(state, r"encoder\.encoder_transformer\.net\.(\d+)\.") // 2 or d.num_layers,
        num_heads=num_heads,
        intermediate=_shape(state, "encoder.encoder_transformer.net.1.fn.fn.l1.weight", 0, d.intermediate),
        num_codes=_shape(state, "quantize.embedding.weight", 0, d.num_codes),
        code_dim=_shape(state, "quantize.embedding.weight", 1, d.code_dim),
        kernel_size=_shape(state, "encoder.squasher.0.0.weight", 2, d.kernel_size),
    )


def predictor_config(state: dict[str, torch.Tensor], num_heads: int = DEFAULT_HEADS) -> PredictorConfig:
    """Stage-2 dimensions read from tensor shapes (official values where a key is absent)."""
    d = PredictorConfig()
    return PredictorConfig(
        vertex_dim=_shape(state, "feature_map.weight", 1, d.vertex_dim),
        feature_dim=_shape(state, "feature_map.weight", 0, d.feature_dim),
        num_tokens=_shape(state, "onehot_feature_map.weight", 0, d.num_tokens),
        num_layers=count_layers(state, r"blocks\.(\d+)\.") or d.num_layers,
        num_heads=num_heads,
        mlp_hidden=_shape(state, "blocks.0.mlp.fc1.weight", 0, d.mlp_hidden),
        code_width=_shape(state, "feat_map.weight", 0, d.code_width),
    )


def load_codebook(path: str | Path, num_heads: int = DEFAULT_HEADS) -> AUCodebook:
    """Build the stage-1 codebook from an official `model.pth.tar` (147 keys), strictly, on CPU."""
    path = Path(path)
    state = read_state_dict(path, "AU codebook (stage 1)")
    config = codebook_config(state, num_heads)
    # Key names depend only on the layer count: check them on a minimal model before building the real one.
    names = AUCodebook(replace(config, vertex_dim=2, hidden=2, num_heads=1, intermediate=2, code_dim=2, num_codes=1)).state_dict()
    hint = ("this looks like a stage-2 file: pass it as --aublendnet" if "feat_map.weight" in state
            else "pass the stage-1 VQ-VAE model.pth.tar as --codebook")
    check_keys(path, "AU codebook (stage 1)", state, names, hint)
    model = AUCodebook(config)
    load_strict(model, state, path, "AU codebook", hint)
    return model


def load_predictor(path: str | Path, codebook: AUCodebook | str | Path, num_heads: int = DEFAULT_HEADS) -> StyleBlendNet:
    """Build the stage-2 predictor from an official `model.pth.tar` (234 keys) plus its stage-1 codebook."""
    path = Path(path)
    if not isinstance(codebook, AUCodebook):
        codebook = load_codebook(codebook, num_heads)
    state = read_state_dict(path, "AUBlendNet (stage 2)")
    state = {k: v for k, v in state.items() if not k.startswith(UNUSED_PREDICTOR_PREFIXES)}
    hint = ("this looks like a stage-1 file: pass it as --codebook" if "quantize.embedding.weight" in state
            else "pass the stage-2 AUBlendNet model.pth.tar as --aublendnet")
    if "feature_map.weight" not in state or "feat_map.weight" not in state:
        check_keys(path, "AUBlendNet (stage 2)", state, {"feature_map.weight", "feat_map.weight"}, hint)
    config = predictor_config(state, num_heads)
    cb = codebook.config
    if (config.vertex_dim, config.code_width) != (cb.vertex_dim, cb.hidden):
        raise TalkingFacesError(
            f"{path} (vertices {config.vertex_dim // 3}, code width {config.code_width}) was not trained with this codebook "
            f"(vertices {cb.vertex_dim // 3}, hidden {cb.hidden}); pass the matching --codebook."
        )
    model = StyleBlendNet(config, codebook)
    expected = {k for k in model.state_dict() if not k.startswith("autoencoder.")}
    check_keys(path, "AUBlendNet (stage 2)", state, expected, hint)
    state.update({f"autoencoder.{k}": v for k, v in codebook.state_dict().items()})
    load_strict(model, state, path, "AUBlendNet", hint)
    return model


def codebook_state_dict(model: AUCodebook) -> dict[str, torch.Tensor]:
    """The 147 official stage-1 keys, in upstream order, on CPU."""
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def predictor_state_dict(model: StyleBlendNet) -> dict[str, torch.Tensor]:
    """The official stage-2 keys that the model uses: no `autoencoder.*` (as upstream) and no leftovers.

    Upstream loads stage 2 with `strict=False`, so a file without the never-called `vertice_map`,
    `PPE` and `transformer_decoder` (116 M random parameters) loads there unchanged.
    """
    return {k: v.detach().cpu() for k, v in model.state_dict().items() if not k.startswith("autoencoder.")}


def save_checkpoint(state: dict[str, torch.Tensor], path: str | Path) -> None:
    """Write an official-format file `{'state_dict': state}`, atomically."""
    atomic_torch_save({STATE_KEY: state}, path)
