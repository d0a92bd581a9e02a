"""Resampling per-frame arrays between frame rates."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .arrays import like

if TYPE_CHECKING:
    import torch


def retime(frames: np.ndarray | torch.Tensor, src_fps: float, dst_fps: float, num_frames: int, start: int = 0) -> np.ndarray | torch.Tensor:
    """Linearly resample `(T, ...)` frames at `src_fps` to frames `start .. start + num_frames - 1` at `dst_fps`.

    Output frame j sits at time j / dst_fps; times past the last source frame hold it, so the result
    always covers the audio. With `start`, a clip can be resampled chunk by chunk with the same values.
    `frames` may be a numpy array or a torch tensor; the result is of the same kind, on its device.
    """
    src_len = frames.shape[0]
    if src_fps == dst_fps and start + num_frames <= src_len:
        return frames[start : start + num_frames]
    t = np.minimum(np.arange(start, start + num_frames, dtype=np.float64) * (src_fps / dst_fps), src_len - 1)
    lo = np.floor(t).astype(np.int64)
    hi = np.minimum(lo + 1, src_len - 1)
    frac = like((t - lo).reshape(-1, *([1] * (frames.ndim - 1))), frames)  # in the frames' dtype, as before
    return frames[lo] + frac * (frames[hi] - frames[lo])
