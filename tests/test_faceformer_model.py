"""FaceFormer network: encodings and masks against their closed forms, cached vs full-recompute decoding."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from faceformer_tiny import tiny_faceformer  # noqa: E402

from talking_faces.adapters.faceformer_model import (  # noqa: E402
    alibi_slopes,
    alignment_mask,
    biased_mask,
    periodic_encoding,
)


def test_alibi_slopes_follow_the_power_of_two_rule():
    assert alibi_slopes(4) == [1 / 4, 1 / 16, 1 / 64, 1 / 256]
    assert alibi_slopes(8) == pytest.approx([2 ** -(i + 1) for i in range(8)])
    # 6 heads: the 4-head slopes, then every other slope of the 8-head series.
    assert alibi_slopes(6) == pytest.approx([1 / 4, 1 / 16, 1 / 64, 1 / 256, 2**-1, 2**-3])


@pytest.mark.parametrize("period", [30, 25, 4])
def test_biased_mask_matches_closed_form(period):
    length = 70
    mask = biased_mask(4, length, period)
    slopes = alibi_slopes(4)
    expected = torch.tensor(
        [[[-slopes[h] * math.floor((i - j) / period) if j <= i else -math.inf for j in range(length)] for i in range(length)] for h in range(4)]
    )
    assert torch.equal(mask, expected)


def test_alignment_masks_vocaset_diagonal_and_biwi_pairs():
    voca = alignment_mask(5, 5, 1)
    assert torch.equal(voca, ~torch.eye(5, dtype=torch.bool))
    biwi = alignment_mask(3, 6, 2)
    allowed = torch.tensor([[1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1]], dtype=torch.bool)
    assert torch.equal(biwi, ~allowed)


def test_periodic_encoding_is_tiled_sinusoid():
    pe = periodic_encoding(65, 8, 30)
    for t in (0, 7, 29, 30, 64):
        p = t % 30
        for k in range(4):
            freq = math.exp(-2 * k * math.log(10000.0) / 8)
            assert pe[t, 2 * k].item() == pytest.approx(math.sin(p * freq), abs=1e-6)
            assert pe[t, 2 * k + 1].item() == pytest.approx(math.cos(p * freq), abs=1e-6)
    assert torch.equal(pe[30:60], pe[:30])


@pytest.mark.parametrize("dataset,frames", [("vocaset", 40), ("BIWI", 33)])
def test_cached_decoding_equals_full_recompute(dataset, frames):
    model = tiny_faceformer(vertice_dim=60, dataset=dataset, num_styles=3)
    steps = model.config.audio_steps_per_frame
    generator = torch.Generator().manual_seed(1)
    memory = torch.randn(1, frames * steps, 16, generator=generator)
    style = model.style(torch.eye(3)[1:2])
    with torch.no_grad():
        fast = model.decode(memory, style, frames)
        slow = model.decode_reference(memory, style, frames)
    assert fast.shape == (1, frames, 60)
    assert slow.abs().max() > 1e-2  # non-trivial output
    assert (fast - slow).abs().max().item() <= 1e-5


def test_decoding_past_upstreams_600_frame_limit():
    """Upstream's last full-recompute pass is one decoder pass over the tokens built from the
    outputs; at a fixed point that pass reproduces the outputs. Checked here at 700 frames."""
    model = tiny_faceformer(vertice_dim=30, num_styles=2)
    frames = 700
    memory = torch.randn(1, frames, 16, generator=torch.Generator().manual_seed(2))
    style = model.style(torch.eye(2)[:1])
    with torch.no_grad():
        fast = model.decode(memory, style, frames)
        tokens = torch.cat([style[:, None], model.vertice_map(fast[:, :-1]) + style[:, None]], dim=1)
        out = model.transformer_decoder(
            tokens + periodic_encoding(frames, 16, 30), memory,
            tgt_mask=biased_mask(4, frames, 30), memory_mask=alignment_mask(frames, frames, 1),
        )
        last_pass = model.vertice_map_r(out)
    assert fast.shape[1] == frames
    assert (fast - last_pass).abs().max().item() <= 1e-5


def test_batched_decoding_equals_per_sample():
    model = tiny_faceformer(vertice_dim=30, num_styles=2)
    memory = torch.randn(2, 12, 16, generator=torch.Generator().manual_seed(3))
    style = model.style(torch.eye(2))
    with torch.no_grad():
        both = model.decode(memory, style, 12)
        single = torch.cat([model.decode_reference(memory[b : b + 1], style[b : b + 1], 12) for b in range(2)])
    assert (both - single).abs().max().item() <= 1e-5


def test_audio_frames_follow_upstream_rates():
    voca = tiny_faceformer(vertice_dim=30, num_styles=2)
    biwi = tiny_faceformer(vertice_dim=30, num_styles=2, dataset="BIWI")
    audio = torch.randn(1, 400 + 103 * 320)  # 104 CNN frames at 50 Hz
    with torch.no_grad():
        memory, frames = voca.encode_audio(audio)
        assert (memory.shape[1], frames) == (62, 62)  # int(104 / 50 * 30)
        memory, frames = voca.encode_audio(audio, num_frames=70)  # training: interpolate to the mesh length
        assert (memory.shape[1], frames) == (70, 70)
        memory, frames = biwi.encode_audio(audio[:, :-320])  # 103 CNN frames: the odd one is dropped
        assert (memory.shape[1], frames) == (102, 51)
        memory, frames = biwi.encode_audio(audio, num_frames=40)  # cut to 2 steps per mesh frame
        assert (memory.shape[1], frames) == (80, 40)
