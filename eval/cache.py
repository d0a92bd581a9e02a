"""Per-sequence results on disk, so an interrupted evaluation resumes where it stopped.

Layout: `<out>/cache/<config hash>/<sequence>.npz`. The hash covers everything that changes the
numbers (dataset, split, regions, predictions or checkpoint files, options), so a changed
configuration never reuses stale results; each file also records a per-sequence fingerprint (the
stamps of its prediction files). Files are written to a temporary name and renamed.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from talking_faces.atomic import atomic_write

from .scoring import FIELDS, MethodScores

CACHE_VERSION = 1


def config_hash(config: dict[str, Any]) -> str:
    text = json.dumps({"cache_version": CACHE_VERSION, **config}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ResultCache:
    """Reads and writes one configuration's per-sequence `MethodScores`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, name: str) -> Path:
        return self.folder / f"{name}.npz"

    def load(self, name: str, fingerprint: str) -> dict[str, MethodScores] | None:
        """The cached scores of a sequence, or None when absent, unreadable or for other inputs."""
        path = self._path(name)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["fingerprint"]) != fingerprint:
                    return None
                return {
                    str(method): MethodScores(
                        **{f: data[f"{i}.{f}"] for f in FIELDS}, diversity=float(data[f"{i}.diversity"]),
                        sample_diversity=float(data[f"{i}.sample_diversity"]),
                    )
                    for i, method in enumerate(data["methods"])
                }
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):  # a damaged file is recomputed
            return None

    def save(self, name: str, fingerprint: str, scores: dict[str, MethodScores]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {"fingerprint": np.asarray(fingerprint), "methods": np.asarray(list(scores))}
        for i, method_scores in enumerate(scores.values()):
            arrays.update({f"{i}.{f}": np.asarray(getattr(method_scores, f), dtype=np.float64) for f in FIELDS})
            arrays[f"{i}.diversity"] = np.asarray(method_scores.diversity, dtype=np.float64)
            arrays[f"{i}.sample_diversity"] = np.asarray(method_scores.sample_diversity, dtype=np.float64)
        atomic_write(self._path(name), lambda tmp: np.savez(tmp, **arrays))
