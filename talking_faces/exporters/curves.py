"""The 32 AU weight curves as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from talking_faces.atomic import atomic_write
from talking_faces.aus import AU_DESCRIPTIONS, AU_NAMES


def write_au_json(path: str | Path, weights: np.ndarray, fps: float) -> None:
    """Write `{"fps", "frames", "aus", "descriptions", "weights": [[32 floats] per frame]}` atomically."""
    data = {
        "fps": float(fps),
        "frames": int(len(weights)),
        "aus": list(AU_NAMES),
        "descriptions": [AU_DESCRIPTIONS[au] for au in AU_NAMES],
        "weights": np.round(np.asarray(weights, dtype=np.float64), 6).tolist(),
    }
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data)))
