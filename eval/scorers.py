"""What is scored for each sequence: precomputed prediction files, or a speech adapter's output.

Each kind has a picklable spec (sent to worker processes or Ray actors, hashed for the cache) that
builds its scorer once per worker; `scorer.score(sequence)` returns the terms of every method.
"""

from __future__ import annotations

import glob
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from talking_faces.errors import TalkingFacesError

from .metrics import as_frames, condition_diversity
from .regions import Regions
from .scoring import MethodScores, score_animations
from talking_faces.data.sequences import Sequence

CONDITION_TAG = "_condition_"
EMOTION_ROW_SUFFIX = "+AUBlendNet"


class MissingPredictions(TalkingFacesError):
    """A sequence of the split has no prediction file."""


class Scorer(Protocol):
    def score(self, sequence: Sequence) -> dict[str, MethodScores]:
        """Method name -> that method's terms on `sequence`."""


class ScorerSpec(Protocol):
    """A picklable description of what to score; `build()` makes the scorer (once per worker)."""

    regions: Regions

    def methods(self) -> list[str]:
        """Row names, in table order."""

    def config(self) -> dict[str, Any]:
        """JSON-able settings that change the numbers (hashed to key the cache)."""

    def fingerprint(self, sequence: Sequence) -> str:
        """Per-sequence inputs beyond `config()`, e.g. prediction file stamps."""

    def build(self) -> Scorer: ...


def file_stamp(path: Path | None) -> list[Any] | None:
    """Name, size and modification time: enough to notice a replaced file."""
    if path is None:
        return None
    stat = path.stat()
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]


def regions_digest(regions: Regions) -> str:
    digest = hashlib.sha256(regions.lips.tobytes() + b"|" + regions.upper.tobytes()).hexdigest()[:16]
    return f"{regions.source}#{digest}"


def ground_truth(sequence: Sequence, regions: Regions) -> tuple[np.ndarray, np.ndarray]:
    """`(T, V, 3)` float64 ground truth and `(V, 3)` float64 template, checked against the regions."""
    template = np.asarray(sequence.template, dtype=np.float64)
    regions.check_fits(template.shape[0], f"the template of {sequence.subject}")
    return as_frames(sequence.load_vertices(), template.shape[0]), template


# --- precomputed predictions -------------------------------------------------------------------

@dataclass(frozen=True)
class PredictionSpec:
    """Prediction files `{sequence}_condition_{condition}.npy`, `(T, V*3)` or `(T, V, 3)`, in one folder."""

    predictions: Path
    regions: Regions
    method: str

    def methods(self) -> list[str]:
        return [self.method]

    def config(self) -> dict[str, Any]:
        return {"mode": "predictions", "predictions": str(self.predictions.resolve()), "method": self.method,
                "regions": regions_digest(self.regions)}

    def files(self, sequence: Sequence) -> list[Path]:
        pattern = glob.escape(f"{sequence.name}{CONDITION_TAG}") + "*.npy"
        return sorted(self.predictions.glob(pattern))

    def fingerprint(self, sequence: Sequence) -> str:
        files = self.files(sequence)
        if not files:
            raise MissingPredictions(
                f"No prediction for {sequence.name}: expected "
                f"{self.predictions / (sequence.name + CONDITION_TAG)}<condition>.npy; "
                "write it, or pass --skip-missing to score the rest."
            )
        return json.dumps([file_stamp(f) for f in files])

    def build(self) -> "PredictionScorer":
        return PredictionScorer(self)


def load_prediction(path: Path, num_vertices: int) -> np.ndarray:
    """A prediction file as float64 `(T, V, 3)`, or an error naming the file."""
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises many types for a corrupt file
        raise TalkingFacesError(f"Cannot read prediction {path}: {exc}; re-write it as a .npy array.") from None
    try:
        frames = as_frames(array, num_vertices)
    except ValueError:
        frames = None
    if frames is None or frames.shape[0] == 0 or not np.isfinite(frames).all():
        raise TalkingFacesError(
            f"Prediction {path} has shape {array.shape}; expected finite (T, {num_vertices * 3}) or "
            f"(T, {num_vertices}, 3) vertices, T >= 1."
        )
    return frames


class PredictionScorer:
    """Scores every condition of a sequence and pools them; diversity across the conditions present."""

    def __init__(self, spec: PredictionSpec) -> None:
        self.spec = spec

    def score(self, sequence: Sequence) -> dict[str, MethodScores]:
        gt, template = ground_truth(sequence, self.spec.regions)
        animations = [load_prediction(path, template.shape[0]) for path in self.spec.files(sequence)]
        scores = score_animations(animations, gt, template, self.spec.regions)
        diversity = condition_diversity(animations)
        scores.diversity = float("nan") if diversity is None else diversity
        return {self.spec.method: scores}


# --- a speech adapter, with and without AU-basis emotion offsets --------------------------------

@dataclass(frozen=True)
class AdapterSpec:
    """A registered speech adapter and, optionally, the basis source for the "+AUBlendNet" row."""

    model: str
    checkpoint: Path | None
    regions: Regions
    device: str = "cpu"
    style: str | None = None
    style_diversity: bool = True
    au_basis: Path | None = None
    aublendnet: Path | None = None
    codebook: Path | None = None
    seed: int | None = None
    num_samples: int = 1
    model_options: tuple[tuple[str, Any], ...] = ()  # from_checkpoint options, e.g. (("sampler", "dpmpp"),)
    save_predictions: Path | None = None

    @property
    def with_emotions(self) -> bool:
        return any(p is not None for p in (self.au_basis, self.aublendnet, self.codebook))

    def methods(self) -> list[str]:
        return [self.model] + ([self.model + EMOTION_ROW_SUFFIX] if self.with_emotions else [])

    def config(self) -> dict[str, Any]:
        return {
            "mode": "adapter", "model": self.model, "checkpoint": file_stamp(self.checkpoint), "style": self.style,
            "style_diversity": self.style_diversity, "au_basis": file_stamp(self.au_basis),
            "aublendnet": file_stamp(self.aublendnet), "codebook": file_stamp(self.codebook),
            "regions": regions_digest(self.regions), "seed": self.seed, "num_samples": self.num_samples,
            "model_options": [[k, file_stamp(v) if isinstance(v, Path) else v] for k, v in self.model_options],
        }

    def fingerprint(self, sequence: Sequence) -> str:
        return ""

    def build(self) -> Scorer:
        from .adapter_scorer import AdapterScorer

        return AdapterScorer(self)
