"""Resampling per-frame arrays between frame rates."""

import torch


def retime(frames: torch.Tensor, src_fps: float, dst_fps: float, num_frames: int) -> torch.Tensor:
    """Linearly resample `(T, ...)` frames at `src_fps` to exactly `num_frames` frames at `dst_fps`.

    Times past the last source frame hold it, so the result always covers the audio.
    """
    src_len = frames.shape[0]
    if src_fps == dst_fps and src_len == num_frames:
        return frames
    t = torch.arange(num_frames, dtype=torch.float64, device=frames.device) * (src_fps / dst_fps)
    t = t.clamp(max=src_len - 1)
    lo = t.floor().long()
    hi = (lo + 1).clamp(max=src_len - 1)
    frac = (t - lo).to(frames.dtype).view(-1, *([1] * (frames.dim() - 1)))
    return frames[lo] + frac * (frames[hi] - frames[lo])
