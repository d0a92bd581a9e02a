"""The record every dataset reader yields, shared by evaluation and training."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Sequence:
    """One recorded utterance of a dataset.

    Attributes:
        name: unique stem, e.g. `FaceTalk_170809_00138_TA_sentence21`; prediction files are
            `{name}_condition_{condition}.npy`.
        subject: speaker id (VOCASET subject, MEAD `M003`, ...).
        audio_path: the utterance's audio file.
        template: `(V, 3)` neutral mesh of the subject, native units, at the file's precision.
        fps: frame rate of the ground truth returned by `load_vertices`.
        load_vertices: returns the `(T, V, 3)` ground truth at the file's precision (float64 data stays
            float64 so metrics stay exact), loaded lazily because datasets are large.
        emotion: canonical emotion name (neutral, happy, sad, surprise, fear, angry, disgust, contempt) or None.
        intensity: MEAD intensity level 1..3, or None.
        sentence: sentence id within the subject, or None.
    """

    name: str
    subject: str
    audio_path: Path
    template: np.ndarray
    fps: float
    load_vertices: Callable[[], np.ndarray]
    emotion: str | None = None
    intensity: int | None = None
    sentence: str | None = None
