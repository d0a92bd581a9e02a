"""Composition, the one place where speech and expression offsets meet."""

import torch

from .basis import blend


def compose(
    neutral: torch.Tensor,
    speech_offsets: torch.Tensor,
    weights: torch.Tensor,
    basis_offsets: torch.Tensor,
) -> torch.Tensor:
    """M = M0 + Offset_spe + Offset_exp, linear, with no clamping or mixing of the two sources.

    Args:
        neutral: `(V, 3)` M0.
        speech_offsets: `(T, V, 3)` Offset_spe from a speech adapter.
        weights: `(T, 32)` AU weights of the emotion track.
        basis_offsets: `(32, V, 3)` the identity's AU basis.
    Returns:
        `(T, V, 3)` animated vertices, on the inputs' device.
    """
    return neutral + speech_offsets + blend(weights, basis_offsets)
