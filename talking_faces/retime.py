"""Resampling per-frame arrays between frame rates."""

import torch


def retime(frames: torch.Tensor, src_fps: float, dst_fps: float, num_frames: int, start: int = 0) -> torch.Tensor:
    """Linearly resample `(T, ...)` frames at `src_fps` to frames `start .. start + num_frames - 1` at `dst_fps`.

    Output frame j sits at time j / dst_fps; times past the last source frame hold it, so the result
    always covers the audio. With `start`, a clip can be resampled chunk by chunk with the same values.
    """
    src_len = frames.shape[0]
    if src_fps == dst_fps and start + num_frames <= src_len:
        return frames[start : start + num_frames]
    t = torch.arange(start, start + num_frames, dtype=torch.float64, device=frames.device) * (src_fps / dst_fps)
    t = t.clamp(max=src_len - 1)
    lo = t.floor().long()
    hi = (lo + 1).clamp(max=src_len - 1)
    frac = (t - lo).to(frames.dtype).view(-1, *([1] * (frames.dim() - 1)))
    return frames[lo] + frac * (frames[hi] - frames[lo])
