"""The FaceFormer network (Fan et al., CVPR 2022): wav2vec2 encoder, autoregressive transformer decoder.

Pure functions build the positional encoding and the two attention biases; `FaceFormer` holds the
parameters and decodes either incrementally (key/value cache, O(T) per frame) or by recomputing
the whole prefix each frame as upstream does (`decode_reference`, kept as the test oracle).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .audio_encoders import build_audio_encoder, encode_frames


@dataclass(frozen=True)
class FaceFormerConfig:
    """Dimensions and data conventions of one FaceFormer.

    Attributes:
        vertice_dim: V*3 (VOCASET 15069, BIWI 70110).
        feature_dim: decoder width F (VOCASET 64, BIWI 128).
        num_styles: length of the one-hot condition (training subjects, plus emotions for MEAD).
        period: period of the positional encoding and of the temporal bias (frames).
        fps: mesh frame rate.
        audio_steps_per_frame: 1 = CNN features are interpolated to `fps` (VOCASET);
            2 = two 50 Hz audio steps per frame, aligned by the memory mask (BIWI).
        n_head: decoder attention heads (upstream: 4).
        num_layers: decoder layers (upstream: 1).
        audio_encoder: overrides of transformers' `Wav2Vec2Config` (empty = wav2vec2-base).
    """

    vertice_dim: int
    feature_dim: int
    num_styles: int
    period: int = 30
    fps: float = 30.0
    audio_steps_per_frame: int = 1
    n_head: int = 4
    num_layers: int = 1
    audio_encoder: dict[str, Any] = field(default_factory=dict)


def alibi_slopes(n_head: int) -> list[float]:
    """ALiBi head slopes: a geometric series from 2^(-8/n) for a power of two n; otherwise the
    slopes of the nearest lower power of two, then every other slope of the next power of two."""

    def power_of_two(n: int) -> list[float]:
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if math.log2(n_head).is_integer():
        return power_of_two(n_head)
    closest = 2 ** math.floor(math.log2(n_head))
    return power_of_two(closest) + alibi_slopes(2 * closest)[0::2][: n_head - closest]


def temporal_bias_row(slopes: torch.Tensor, query: int, period: int) -> torch.Tensor:
    """Bias of query frame `query` over keys 0..query: -slope_h * floor((query - j) / period).

    Args:
        slopes: `(H,)` head slopes.
    Returns:
        `(H, query + 1)`.
    """
    back = torch.arange(query, -1, -1, device=slopes.device)
    return -(slopes[:, None] * torch.div(back, period, rounding_mode="floor").to(slopes.dtype))


def biased_mask(n_head: int, length: int, period: int) -> torch.Tensor:
    """FaceFormer's temporal bias, an additive attention mask.

    mask[h, i, j] = -slope_h * floor((i - j) / period) for j <= i, and -inf for j > i.

    Returns:
        `(n_head, length, length)` float32.
    """
    slopes = torch.tensor(alibi_slopes(n_head))
    i = torch.arange(length)
    back = i[:, None] - i[None, :]
    bias = -(slopes[:, None, None] * torch.div(back, period, rounding_mode="floor").float())
    return bias.masked_fill(back < 0, float("-inf"))


def alignment_mask(num_frames: int, num_steps: int, steps_per_frame: int) -> torch.Tensor:
    """Memory mask: frame i may attend only audio steps [i*w, (i+1)*w), w = `steps_per_frame`.

    Returns:
        `(num_frames, num_steps)` bool, True = may not attend.
    """
    step = torch.arange(num_steps)[None, :]
    first = torch.arange(num_frames)[:, None] * steps_per_frame
    return ~((step >= first) & (step < first + steps_per_frame))


def periodic_encoding(length: int, dim: int, period: int) -> torch.Tensor:
    """Periodic positional encoding: sinusoids over one period, tiled along time.

    pe[t, 2k] = sin((t mod period) * 10000^(-2k/dim)), pe[t, 2k+1] = cos(same).

    Returns:
        `(length, dim)` float32.
    """
    position = torch.arange(period, dtype=torch.float32)[:, None]
    # Same float32 operation order as upstream, so the values match bit for bit.
    div_term = torch.exp(torch.arange(0, dim, 2).float() * (-math.log(10000.0) / dim))
    block = torch.zeros(period, dim)
    block[:, 0::2] = torch.sin(position * div_term)
    block[:, 1::2] = torch.cos(position * div_term)
    return block[torch.arange(length) % period]


@contextmanager
def _cpu_single_thread(device: torch.device) -> Iterator[None]:
    """Run per-frame CPU work on one thread: its ops are so small that OpenMP barriers cost more
    than they save (30x slower on a busy 2-core machine); restores the thread count after."""
    if device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    """`(B, L, F)` -> `(B, H, L, F/H)`."""
    return x.unflatten(-1, (n_head, -1)).transpose(1, 2)


class FaceFormer(nn.Module):
    """FaceFormer. Submodule names are upstream's state_dict prefixes (checkpoint compatibility)."""

    def __init__(self, config: FaceFormerConfig) -> None:
        super().__init__()
        self.config = config
        f = config.feature_dim
        self.audio_encoder = build_audio_encoder("wav2vec2", **config.audio_encoder)
        self.audio_encoder.feature_extractor._freeze_parameters()  # upstream fine-tunes all but the CNN
        self.audio_feature_map = nn.Linear(self.audio_encoder.config.hidden_size, f)
        self.vertice_map = nn.Linear(config.vertice_dim, f)
        layer = nn.TransformerDecoderLayer(f, config.n_head, dim_feedforward=2 * f, batch_first=True)
        self.transformer_decoder = nn.TransformerDecoder(layer, num_layers=config.num_layers)
        self.vertice_map_r = nn.Linear(f, config.vertice_dim)
        self.obj_vector = nn.Linear(config.num_styles, f, bias=False)
        self.ppe_dropout = nn.Dropout(0.1)
        nn.init.zeros_(self.vertice_map_r.weight)
        nn.init.zeros_(self.vertice_map_r.bias)
        self.register_buffer("slopes", torch.tensor(alibi_slopes(config.n_head)), persistent=False)

    # ----- audio -------------------------------------------------------------------------------
    def encode_audio(self, audio: torch.Tensor, num_frames: int | None = None) -> tuple[torch.Tensor, int]:
        """Audio memory for the decoder and the number of mesh frames it covers.

        Args:
            audio: `(B, N)` normalised 16 kHz samples.
            num_frames: ground-truth frame count (training); None derives it from the audio length.
        Returns:
            `(B, S, F)` memory and T, with S = T (interpolated) or S = 2T (paired).
        """
        hidden, frames = encode_frames(self.audio_encoder, audio, self.config.fps, self.config.audio_steps_per_frame, num_frames)
        return self.audio_feature_map(hidden), frames

    def style(self, condition: torch.Tensor) -> torch.Tensor:
        """`(B, K)` one-hot condition -> `(B, F)` style embedding."""
        return self.obj_vector(condition)

    # ----- decoding ----------------------------------------------------------------------------
    def _positional(self, tokens: torch.Tensor) -> torch.Tensor:
        """`(B, L, F)` tokens plus the periodic encoding, then dropout (upstream's PPE module)."""
        pe = periodic_encoding(tokens.shape[1], self.config.feature_dim, self.config.period)
        return self.ppe_dropout(tokens + pe.to(tokens))

    def decode(self, memory: torch.Tensor, style: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Autoregressive decoding with a key/value cache: each frame costs O(T).

        Token 0 is the style alone; token i+1 = vertice_map(displacement i) + style. In a
        post-norm decoder each layer's keys and values come from that layer's input, which for
        earlier tokens never changes, so they are computed once and cached. Cross-attention keys
        and values of the audio memory are computed once for the whole utterance.

        Args:
            memory: `(B, S, F)` audio memory.
            style: `(B, F)` style embedding.
        Returns:
            `(B, T, V*3)` displacements from the template.
        """
        layers = list(self.transformer_decoder.layers)
        cross = [self._memory_kv(layer, memory) for layer in layers]
        caches: list[tuple[list[torch.Tensor], list[torch.Tensor]]] = [([], []) for _ in layers]
        pe = periodic_encoding(num_frames, self.config.feature_dim, self.config.period).to(memory)
        token = style.unsqueeze(1)
        outputs = []
        with _cpu_single_thread(memory.device):
            for i in range(num_frames):
                x = self.ppe_dropout(token + pe[i])
                bias = temporal_bias_row(self.slopes, i, self.config.period)[:, None, :]
                for layer, cache, mem in zip(layers, caches, cross):
                    x = self._layer_step(layer, x, cache, mem, bias, i)
                displacement = self.vertice_map_r(x)
                outputs.append(displacement)
                token = self.vertice_map(displacement) + style.unsqueeze(1)
        return torch.cat(outputs, dim=1)

    def _memory_kv(self, layer: nn.TransformerDecoderLayer, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        attn = layer.multihead_attn
        f = self.config.feature_dim
        k = F.linear(memory, attn.in_proj_weight[f : 2 * f], attn.in_proj_bias[f : 2 * f])
        v = F.linear(memory, attn.in_proj_weight[2 * f :], attn.in_proj_bias[2 * f :])
        return _heads(k, self.config.n_head), _heads(v, self.config.n_head)

    def _attend(self, attn: nn.MultiheadAttention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """Scaled dot-product attention of `(B, H, 1, d)` queries, then the output projection -> `(B, 1, F)`."""
        scores = (q / math.sqrt(q.shape[-1])) @ k.transpose(-1, -2)
        if bias is not None:
            scores = scores + bias
        weights = F.dropout(scores.softmax(dim=-1), attn.dropout, self.training)
        return attn.out_proj((weights @ v).transpose(1, 2).flatten(2))

    def _layer_step(
        self,
        layer: nn.TransformerDecoderLayer,
        x: torch.Tensor,
        cache: tuple[list[torch.Tensor], list[torch.Tensor]],
        memory_kv: tuple[torch.Tensor, torch.Tensor],
        bias: torch.Tensor,
        i: int,
    ) -> torch.Tensor:
        """One new token `(B, 1, F)` through a post-norm decoder layer (nn.TransformerDecoderLayer semantics)."""
        h = self.config.n_head
        f = self.config.feature_dim
        # in_proj packs q|k|v along features; split per head after the projection.
        q, k, v = (_heads(t, h) for t in F.linear(x, layer.self_attn.in_proj_weight, layer.self_attn.in_proj_bias).split(f, dim=-1))
        cache[0].append(k)
        cache[1].append(v)
        keys, values = torch.cat(cache[0], dim=2), torch.cat(cache[1], dim=2)
        x = layer.norm1(x + layer.dropout1(self._attend(layer.self_attn, q, keys, values, bias)))
        w = self.config.audio_steps_per_frame
        attn = layer.multihead_attn
        q = _heads(F.linear(x, attn.in_proj_weight[:f], attn.in_proj_bias[:f]), h)
        # The alignment mask leaves frame i only audio steps [i*w, (i+1)*w): attend to that slice.
        mem_k, mem_v = memory_kv[0][:, :, i * w : (i + 1) * w], memory_kv[1][:, :, i * w : (i + 1) * w]
        x = layer.norm2(x + layer.dropout2(self._attend(attn, q, mem_k, mem_v, None)))
        ff = layer.linear2(layer.dropout(layer.activation(layer.linear1(x))))
        return layer.norm3(x + layer.dropout3(ff))

    def decode_reference(self, memory: torch.Tensor, style: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Upstream's decoding: the whole prefix goes through the decoder again for every frame, O(T^2).

        Kept as the oracle for `decode` in tests and the speed benchmark. Batch size 1, like
        upstream, because the 3-D temporal mask is read as (batch*heads, T, T).

        Args:
            memory: `(1, S, F)`; style: `(1, F)`.
        Returns:
            `(1, T, V*3)` displacements.
        """
        tgt_mask = biased_mask(self.config.n_head, num_frames, self.config.period).to(memory)
        memory_mask = alignment_mask(num_frames, memory.shape[1], self.config.audio_steps_per_frame).to(memory.device)
        tokens = style.unsqueeze(1)
        for length in range(1, num_frames + 1):
            out = self.transformer_decoder(
                self._positional(tokens), memory,
                tgt_mask=tgt_mask[:, :length, :length], memory_mask=memory_mask[:length],
            )
            displacement = self.vertice_map_r(out)
            tokens = torch.cat([tokens, self.vertice_map(displacement[:, -1:]) + style.unsqueeze(1)], dim=1)
        return displacement

    def forward(self, audio: torch.Tensor, condition: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """Displacements for normalised audio `(B, N)` and a one-hot condition `(B, K)` -> `(B, T, V*3)`.

        Upstream predicts `template + displacements`; the template only enters at that sum.
        """
        memory, frames = self.encode_audio(audio, num_frames)
        return self.decode(memory, self.style(condition), frames)
