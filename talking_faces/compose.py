"""Composition, the one place where speech and expression offsets meet."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from .basis import blend

if TYPE_CHECKING:
    import numpy as np
    import torch

Array = TypeVar("Array", "np.ndarray", "torch.Tensor")


def compose(neutral: Array, speech_offsets: Array, weights: Array, basis_offsets: Array) -> Array:
    """M = M0 + Offset_spe + Offset_exp, linear, with no clamping or mixing of the two sources.

    All four are numpy arrays, or all are torch tensors on one device.

    Args:
        neutral: `(V, 3)` M0.
        speech_offsets: `(T, V, 3)` Offset_spe from a speech adapter.
        weights: `(T, 32)` AU weights of the emotion track.
        basis_offsets: `(32, V, 3)` the identity's AU basis.
    Returns:
        `(T, V, 3)` animated vertices, of the inputs' kind, on their device.
    """
    return neutral + speech_offsets + blend(weights, basis_offsets)
