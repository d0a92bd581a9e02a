"""The animation types: a whole clip of vertices (`Animation`) and a clip composed chunk by chunk (`AnimationStream`).

Both give their frames as chunks `(start, (n, V, 3) float32)`, so renderers and writers take either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .basis import AUBasis

# Frames composed at a time: large enough to batch the blend, small enough that a chunk of
# 5,023- or 12k-vertex frames stays under 10 MB.
CHUNK_FRAMES = 64

# `(start, stop, sample) -> (stop - start, V, 3)` float32 vertices of frames start:stop of one sample.
ComposeChunk = Callable[[int, int, int], np.ndarray]


@dataclass
class Animation:
    """An animated identity held whole, ready to render (the Python API's result).

    Attributes:
        vertices: `(T, V, 3)` float32 final positions M = M0 + Offset_spe + Offset_exp.
        faces: `(F, 3)` int64 triangles of the identity.
        fps: frame rate of `vertices`.
        audio_path: the speech the animation was made from (muxed into the video).
        duration: audio duration in seconds.
        neutral: `(V, 3)` the identity's neutral M0 (frames the camera), or None to use the first frame.
        albedo: `(V, 3)` linear-RGB per-vertex base colours (eyes, lips), or None to compute them from `neutral`.
        view: `(3, 3)` rotation that shows the head upright and facing the camera, or None when it already is.
    """

    vertices: np.ndarray
    faces: np.ndarray | None
    fps: float
    audio_path: Path
    duration: float
    neutral: np.ndarray | None = None
    albedo: np.ndarray | None = None
    view: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[1])

    def chunks(self, sample: int = 0, size: int = CHUNK_FRAMES) -> Iterator[tuple[int, np.ndarray]]:
        """`(start, (n, V, 3))` views of the vertices, `size` frames at a time (one sample only)."""
        if sample != 0:
            raise IndexError(f"an Animation holds one sample, not sample {sample}")
        for start in range(0, self.num_frames, size):
            yield start, self.vertices[start : start + size]


@dataclass
class AnimationStream:
    """An animation composed on demand, one chunk of frames at a time, for S samples of one speech.

    Nothing of size `(T, V, 3)` is held: `compose(start, stop, sample)` builds the frames asked for.

    Attributes:
        compose: the chunk function (see `ComposeChunk`).
        num_frames: T, frames per sample.
        num_samples: S, the samples drawn by the speech model.
        faces, fps, audio_path, duration, neutral, albedo, view: as in `Animation`.
        basis: the AU basis the frames were composed on (None for a neutral offsets model), for exports.
        curves: `sample -> ((T, 32) AU weights, (T, V, 3) speech offsets or None)` of the whole clip,
            for exports (the offsets are those of learned adapters, which speak in vertex offsets).
        moving: `(V,)` bool, the only vertices that can leave the neutral (those the AU basis moves,
            when all motion is on the basis), or None (any may): the renderer shades the rest once.
    """

    compose: ComposeChunk
    num_frames: int
    faces: np.ndarray | None
    fps: float
    audio_path: Path
    duration: float
    neutral: np.ndarray
    albedo: np.ndarray | None = None
    num_samples: int = 1
    view: np.ndarray | None = None
    basis: AUBasis | None = None
    curves: Callable[[int], tuple[np.ndarray, np.ndarray | None]] | None = None
    moving: np.ndarray | None = None

    @property
    def num_vertices(self) -> int:
        return int(self.neutral.shape[0])

    def chunks(self, sample: int = 0, size: int = CHUNK_FRAMES) -> Iterator[tuple[int, np.ndarray]]:
        """`(start, (n, V, 3) float32)` for consecutive chunks of `size` frames of `sample`."""
        if not 0 <= sample < self.num_samples:
            raise IndexError(f"sample {sample} of {self.num_samples}")
        for start in range(0, self.num_frames, size):
            yield start, self.compose(start, min(start + size, self.num_frames), sample)

    def collect(self, sample: int = 0) -> Animation:
        """Sample `sample` as a whole `Animation` (holds `(T, V, 3)`: for short clips and library users)."""
        vertices = np.empty((self.num_frames, self.neutral.shape[0], 3), dtype=np.float32)
        for start, chunk in self.chunks(sample):
            vertices[start : start + chunk.shape[0]] = chunk
        return Animation(vertices, self.faces, self.fps, self.audio_path, self.duration, self.neutral, self.albedo, self.view)
