"""Evaluation of speech-driven face animation: metrics, datasets, regions and the runner."""

from talking_faces.data import read_dataset
from .metrics import (
    condition_diversity, fdd_term, lip_errors, mean_distance, sample_diversity, truncate, upper_face_dynamics,
    velocity_lip_errors, vertex_errors,
)
from .regions import Regions, load_regions
from talking_faces.data.sequences import Sequence

__all__ = [
    "Regions", "Sequence", "condition_diversity", "fdd_term", "lip_errors", "load_regions", "mean_distance",
    "read_dataset", "sample_diversity", "truncate", "upper_face_dynamics", "velocity_lip_errors", "vertex_errors",
]
