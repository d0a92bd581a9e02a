"""Lip (LVE) and upper-face (FDD) vertex regions, read from files the user supplies.

Two sources are accepted; nothing is shipped:
- FLAME's `FLAME_masks.pkl`: lips = `masks['lips']`, upper face = `masks['forehead'] ∪ masks['eye_region']`;
- a folder with `lve.txt` and `fdd.txt`, each holding comma-separated 0-based indices.
Indices are de-duplicated (FLAME's lips list holds 254 entries, 250 unique).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from talking_faces.errors import TalkingFacesError

from talking_faces.data.safe_pickle import load_pickle

LIP_MASK = "lips"
UPPER_MASKS = ("forehead", "eye_region")
LVE_FILE, FDD_FILE = "lve.txt", "fdd.txt"


@dataclass(frozen=True)
class Regions:
    """De-duplicated vertex indices for the metrics.

    Attributes:
        lips: `(L,)` int64 sorted unique indices for LVE and V-LVE.
        upper: `(U,)` int64 sorted unique indices for FDD.
        source: the file or folder they came from.
        kind: `FLAME_masks.pkl` or `lve.txt/fdd.txt`.
        entries: (lip entries, upper entries) before de-duplication.
    """

    lips: np.ndarray
    upper: np.ndarray
    source: str
    kind: str
    entries: tuple[int, int]

    def describe(self) -> dict[str, Any]:
        """What the report records about the regions."""
        lip_from = f"masks['{LIP_MASK}']" if self.kind == "FLAME_masks.pkl" else LVE_FILE
        upper_from = " ∪ ".join(f"masks['{m}']" for m in UPPER_MASKS) if self.kind == "FLAME_masks.pkl" else FDD_FILE
        return {
            "source": self.source, "kind": self.kind,
            "lve": {"from": lip_from, "entries": self.entries[0], "unique": int(self.lips.size)},
            "fdd": {"from": upper_from, "entries": self.entries[1], "unique": int(self.upper.size)},
        }

    def check_fits(self, num_vertices: int, what: str) -> None:
        """Raise unless every index addresses a vertex of a `num_vertices` mesh."""
        top = int(max(self.lips.max(), self.upper.max()))
        if top >= num_vertices:
            raise TalkingFacesError(
                f"The regions in {self.source} index vertex {top}, but {what} has {num_vertices} vertices; "
                "pass region files made for this topology."
            )


def _indices(values: Any, what: str) -> np.ndarray:
    array = np.asarray(values)
    if array.size == 0 or not np.issubdtype(array.dtype, np.integer) or array.min() < 0:
        raise TalkingFacesError(f"{what} must be a non-empty list of non-negative integer vertex indices.")
    return array.astype(np.int64).ravel()


def _from_masks(path: Path) -> Regions:
    masks = load_pickle(path)
    missing = [k for k in (LIP_MASK, *UPPER_MASKS) if not isinstance(masks, dict) or k not in masks]
    if missing:
        raise TalkingFacesError(f"{path} lacks the masks {', '.join(missing)}; pass FLAME's FLAME_masks.pkl.")
    lips = _indices(masks[LIP_MASK], f"{path}['{LIP_MASK}']")
    upper = np.concatenate([_indices(masks[k], f"{path}['{k}']") for k in UPPER_MASKS])
    return Regions(np.unique(lips), np.unique(upper), str(path), "FLAME_masks.pkl", (lips.size, upper.size))


def _read_index_file(path: Path) -> np.ndarray:
    if not path.is_file():
        raise TalkingFacesError(f"Region file {path} is missing; a regions folder needs {LVE_FILE} and {FDD_FILE}.")
    tokens = [t for t in re.split(r"[,\s]+", path.read_text()) if t]
    try:
        return _indices([int(t) for t in tokens], str(path))
    except ValueError:
        raise TalkingFacesError(f"{path} must hold comma-separated integer vertex indices.") from None


def load_regions(path: str | Path) -> Regions:
    """Regions from a `FLAME_masks.pkl` file or a folder holding `lve.txt` and `fdd.txt`."""
    path = Path(path)
    if path.is_dir():
        lips, upper = _read_index_file(path / LVE_FILE), _read_index_file(path / FDD_FILE)
        return Regions(np.unique(lips), np.unique(upper), str(path), f"{LVE_FILE}/{FDD_FILE}", (lips.size, upper.size))
    if path.is_file():
        return _from_masks(path)
    raise TalkingFacesError(f"Regions not found: {path}; pass FLAME_masks.pkl or a folder with {LVE_FILE} and {FDD_FILE}.")
