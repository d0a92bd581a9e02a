"""Speech encoders (wav2vec2, HuBERT) built from transformers' modules, offline.

The speech adapters call the encoders' submodules themselves (CNN -> optional resampling ->
projection -> transformer), because their upstream code inserts a step between the CNN and the
projection. Everything here works without the Hugging Face hub: encoders are built from a
config (weights then come from an adapter checkpoint) or loaded from a local folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talking_faces.errors import TalkingFacesError

EncoderKind = Literal["wav2vec2", "hubert"]
FEATURE_RATE = 50  # CNN feature frames per second of 16 kHz audio (total stride 320)
# Upstream used transformers 4.6.1's processor, whose variance epsilon was 1e-5 (5.x uses 1e-7).
NORMALIZE_EPS = 1e-5
# 4.6.1 attention was the explicit ("eager") softmax(QK^T)V; sdpa differs in the last bits.
ATTENTION = "eager"


def _classes(kind: EncoderKind) -> tuple[type, type]:
    from transformers import HubertConfig, HubertModel, Wav2Vec2Config, Wav2Vec2Model

    classes = {"wav2vec2": (Wav2Vec2Config, Wav2Vec2Model), "hubert": (HubertConfig, HubertModel)}
    if kind not in classes:
        raise TalkingFacesError(f"Unknown audio encoder kind {kind!r}; use one of {', '.join(classes)}.")
    return classes[kind]


def build_audio_encoder(kind: EncoderKind = "wav2vec2", **config: Any) -> nn.Module:
    """A randomly initialised encoder from a config; defaults are the *-base architectures.

    `config` overrides fields of `Wav2Vec2Config` / `HubertConfig` (e.g. `hidden_size=32`).
    """
    config_cls, model_cls = _classes(kind)
    cfg = config_cls(**config)
    cfg._attn_implementation = ATTENTION
    return model_cls(cfg).float()


def load_audio_encoder(path: str | Path, kind: EncoderKind = "wav2vec2") -> nn.Module:
    """Load pretrained encoder weights from a local transformers-format folder (config.json + weights).

    A `*ForCTC` folder (e.g. wav2vec2-base-960h) works too: its head is dropped.
    """
    path = Path(path)
    if not (path / "config.json").is_file():
        raise TalkingFacesError(
            f"Audio encoder folder {path} has no config.json; pass a local transformers folder "
            "(e.g. one written by save_pretrained for facebook/wav2vec2-base-960h)."
        )
    _, model_cls = _classes(kind)
    try:
        model = model_cls.from_pretrained(
            str(path), local_files_only=True, attn_implementation=ATTENTION, dtype=torch.float32
        )
    except (OSError, ValueError) as exc:
        raise TalkingFacesError(f"Cannot load the {kind} encoder from {path}: {exc}; check the folder's files.") from None
    return model


# Config fields that fix an encoder's architecture and training-time regularisation.
ARCHITECTURE_FIELDS = (
    "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act", "layer_norm_eps",
    "conv_dim", "conv_kernel", "conv_stride", "conv_bias", "feat_extract_norm", "feat_extract_activation",
    "num_conv_pos_embeddings", "num_conv_pos_embedding_groups", "do_stable_layer_norm", "hidden_dropout",
    "activation_dropout", "attention_dropout", "feat_proj_dropout", "layerdrop", "mask_time_prob", "mask_time_length",
)


def copy_pretrained(encoder: nn.Module, pretrained: nn.Module, source: str | Path, name: str) -> None:
    """Load `pretrained`'s weights (from `load_audio_encoder(source)`) into a model's `encoder`: all of
    them but `masked_spec_embed` (training-time masking, absent from fine-tuned checkpoints); a one-line
    error naming `source` when they do not fit."""
    missing, unexpected = encoder.load_state_dict(pretrained.state_dict(), strict=False)
    if unexpected or set(missing) - {"masked_spec_embed"}:
        raise TalkingFacesError(f"The audio encoder in {source} does not fit {name}; missing {missing[:3]}, unexpected {unexpected[:3]}.")


def encoder_config(encoder: nn.Module) -> dict[str, Any]:
    """The encoder's architecture as JSON-serialisable config overrides for `build_audio_encoder`."""
    config = encoder.config
    return {name: list(v) if isinstance(v := getattr(config, name), tuple) else v for name in ARCHITECTURE_FIELDS if hasattr(config, name)}


def encoder_config_from_state(state: dict[str, torch.Tensor], prefix: str = "audio_encoder.") -> dict[str, Any]:
    """Config overrides of the encoder stored under `prefix` in `state`, read off the tensor shapes.

    Heads are hidden / 64 and strides the standard (5, 2, ..., 2), as in every wav2vec2/HuBERT
    release. A layer-norm CNN marks the *-large architecture, which is also stable-layer-norm
    (pre-LN with a final norm); `masked_spec_embed` exists only with SpecAugment on, so its
    presence sets mask_time_prob.
    Positional-convolution keys must already use torch's parametrization names.
    """
    convs = sorted(int(k[len(prefix):].split(".")[2]) for k in state
                   if k.startswith(prefix + "feature_extractor.conv_layers.") and k.endswith(".conv.weight"))
    layers = {int(k[len(prefix):].split(".")[2]) for k in state if k.startswith(prefix + "encoder.layers.")}
    conv = [state[f"{prefix}feature_extractor.conv_layers.{i}.conv.weight"] for i in convs]
    pos = state[prefix + "encoder.pos_conv_embed.conv.parametrizations.weight.original1"]
    hidden = state[prefix + "feature_projection.projection.weight"].shape[0]
    layer_norm_cnn = f"{prefix}feature_extractor.conv_layers.1.layer_norm.weight" in state
    return {
        "hidden_size": hidden,
        "num_hidden_layers": len(layers),
        "num_attention_heads": max(1, hidden // 64),
        "intermediate_size": state[prefix + "encoder.layers.0.feed_forward.intermediate_dense.weight"].shape[0],
        "conv_dim": [w.shape[0] for w in conv],
        "conv_kernel": [w.shape[2] for w in conv],
        "conv_bias": f"{prefix}feature_extractor.conv_layers.0.conv.bias" in state,
        "num_conv_pos_embeddings": pos.shape[2],
        "num_conv_pos_embedding_groups": hidden // pos.shape[1],
        "feat_extract_norm": "layer" if layer_norm_cnn else "group",
        "do_stable_layer_norm": layer_norm_cnn,
        "mask_time_prob": 0.05 if prefix + "masked_spec_embed" in state else 0.0,
        "feat_proj_layer_norm": prefix + "feature_projection.layer_norm.weight" in state,
    }


def normalize_audio(audio: np.ndarray | torch.Tensor, eps: float = NORMALIZE_EPS) -> torch.Tensor:
    """Per-utterance zero mean, unit variance, as the upstream processor did.

    Computed with numpy in float32 like the processor, so inputs match upstream bit for bit.

    Args:
        audio: `(N,)` 16 kHz samples.
    Returns:
        `(1, N)` float32 tensor: (x - mean) / sqrt(var + eps), population variance.
    """
    x = audio.detach().cpu().numpy() if isinstance(audio, torch.Tensor) else np.asarray(audio)
    x = x.astype(np.float32, copy=False).reshape(-1)
    x = (x - np.mean(x)) / np.sqrt(np.var(x) + eps)
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).unsqueeze(0)


def num_feature_frames(num_samples: int, encoder: nn.Module) -> int:
    """Length of the CNN output for `num_samples` of audio (50 Hz for the base architectures)."""
    length = num_samples
    for kernel, stride in zip(encoder.config.conv_kernel, encoder.config.conv_stride):
        length = (length - kernel) // stride + 1 if length >= kernel else 0
    return length


def extract_features(encoder: nn.Module, audio: torch.Tensor) -> torch.Tensor:
    """CNN feature encoder.

    Args:
        audio: `(B, N)` normalised 16 kHz samples.
    Returns:
        `(B, L, C)` features at 50 Hz.
    """
    if num_feature_frames(audio.shape[-1], encoder) < 1:
        raise TalkingFacesError(f"The audio is too short ({audio.shape[-1]} samples) for the speech encoder; give at least 0.05 s.")
    return encoder.feature_extractor(audio).transpose(1, 2)


def resample_features(features: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Linear interpolation along time with aligned corners.

    Args:
        features: `(B, L, C)`.
    Returns:
        `(B, num_frames, C)`.
    """
    return F.interpolate(features.transpose(1, 2), size=num_frames, mode="linear", align_corners=True).transpose(1, 2)


def contextualize(encoder: nn.Module, features: torch.Tensor) -> torch.Tensor:
    """Feature projection, SpecAugment (training mode only) and the transformer encoder.

    Args:
        features: `(B, L, C)` CNN features (possibly resampled).
    Returns:
        `(B, L, H)` last hidden state.
    """
    hidden = encoder.feature_projection(features)
    # transformers >= 4.7 returns (projected, normed) here; 4.6.1 returned the projection alone.
    hidden = hidden[0] if isinstance(hidden, tuple) else hidden
    hidden = encoder._mask_hidden_states(hidden)
    return encoder.encoder(hidden).last_hidden_state


def encode_frames(
    encoder: nn.Module, audio: torch.Tensor, fps: float, steps_per_frame: int, num_frames: int | None = None
) -> tuple[torch.Tensor, int]:
    """Encoder states tied to animation frames, the two ways of FaceFormer and its successors.

    `steps_per_frame` 1: the 50 Hz CNN features are linearly resampled to the T frames at `fps`
    (T = int(L / 50 * fps) unless `num_frames` is given) before the transformer. 2: a trailing odd
    50 Hz step is dropped, and with `num_frames` the steps are cut to 2 * min(L // 2, num_frames);
    consecutive pairs belong to one frame.

    Args:
        audio: `(B, N)` normalised 16 kHz samples.
    Returns:
        `(B, T * steps_per_frame, H)` last hidden states and T.
    """
    features = extract_features(encoder, audio)
    length, w = features.shape[1], steps_per_frame
    if w == 1:
        frames = num_frames if num_frames is not None else int(length / float(FEATURE_RATE) * fps)
    else:
        usable = length - length % w
        frames = usable // w if num_frames is None else min(usable // w, num_frames)
    if frames < 1:
        raise TalkingFacesError("The audio is shorter than one animation frame; give at least 0.1 s of speech.")
    features = resample_features(features, frames) if w == 1 else features[:, : frames * w]
    return contextualize(encoder, features), frames
