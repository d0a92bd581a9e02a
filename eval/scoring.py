"""Per-sequence metric terms and their pooling into dataset rows.

A sequence's terms are kept unreduced (per-frame arrays, per-condition FDD values) so that pooling
over sequences, cached or not, is exactly the reference arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence as Seq
from dataclasses import dataclass

import numpy as np

from .metrics import fdd_term, lip_errors, truncate, velocity_lip_errors, vertex_errors
from .regions import Regions

FIELDS = ("lve", "vlve", "mve", "fdd")


@dataclass
class MethodScores:
    """The metric terms of one method on one sequence.

    Attributes:
        lve: `(N,)` per-frame max squared lip errors, frames of all scored conditions concatenated.
        vlve: `(N',)` the same on frame differences.
        mve: `(N,)` per-frame mean vertex errors.
        fdd: `(K,)` signed FDD_seq of each scored condition.
        diversity: the sequence's condition diversity, NaN where it does not apply.
        sample_diversity: the diversity of stochastic samples of one condition, NaN where it does not apply.
    """

    lve: np.ndarray
    vlve: np.ndarray
    mve: np.ndarray
    fdd: np.ndarray
    diversity: float = math.nan
    sample_diversity: float = math.nan


def score_animations(animations: Seq[np.ndarray], gt: np.ndarray, template: np.ndarray, regions: Regions) -> MethodScores:
    """Terms of every animation `(T_k, V, 3)` against the ground truth `(T, V, 3)`; each is cut to T first."""
    lve, vlve, mve, fdd = [], [], [], []
    for animation in animations:
        pred, truth = truncate(animation, gt)
        lve.append(lip_errors(pred, truth, regions.lips))
        vlve.append(velocity_lip_errors(pred, truth, regions.lips))
        mve.append(vertex_errors(pred, truth))
        fdd.append(fdd_term(pred, truth, template, regions.upper))
    return MethodScores(np.concatenate(lve), np.concatenate(vlve), np.concatenate(mve), np.asarray(fdd, dtype=np.float64))


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


def pool(scores: Iterable[MethodScores]) -> dict[str, float | int | None]:
    """One dataset row: LVE, V-LVE, MVE pooled over frames; FDD and diversity averaged over sequences.

    FDD is the unweighted mean over all (sequence, condition) terms; diversity the mean over the
    sequences where it applies, None where it applies to none.
    """
    scores = list(scores)
    stacked = {f: np.concatenate([getattr(s, f) for s in scores]) if scores else np.zeros(0) for f in FIELDS}
    def applicable(name: str) -> np.ndarray:
        values = [getattr(s, name) for s in scores]
        return np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=np.float64)

    return {
        "LVE": _mean(stacked["lve"]), "FDD": _mean(stacked["fdd"]), "V-LVE": _mean(stacked["vlve"]),
        "diversity": _mean(applicable("diversity")),
        "sample diversity": _mean(applicable("sample_diversity")), "MVE": _mean(stacked["mve"]),
        "sequences": len(scores), "frames": int(stacked["lve"].size),
    }
