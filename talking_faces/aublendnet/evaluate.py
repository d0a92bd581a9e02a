"""Scoring predicted bases against AUBlendSet ground truth: MSE_S and MSE_M over a split."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..aus import AU_NAMES, EXPRESSIVE_EMOTIONS
from .bases import predict_rows
from .data import AUBlendSetDataset
from .metrics import emotion_weight_matrix, multi_au_errors, single_au_errors
from .predictor import StyleBlendNet


@dataclass
class AUBlendNetScores:
    """Means over identities, in m² per coordinate; per-AU and per-emotion breakdowns likewise."""

    split: str
    identities: list[str]
    mse_s: float
    mse_m: float
    per_au: dict[str, float] = field(default_factory=dict)
    per_emotion: dict[str, float] = field(default_factory=dict)
    per_identity: dict[str, dict[str, float]] = field(default_factory=dict)


def evaluate_predictor(
    model: StyleBlendNet,
    dataset: AUBlendSetDataset,
    on_identity: Callable[[str], None] | None = None,
) -> AUBlendNetScores:
    """Predict every identity of `dataset` from its template and score against its GT rows."""
    weights = emotion_weight_matrix()
    single, multi, per_identity = [], [], {}
    for index, name in enumerate(dataset.names):
        rows, template = dataset[index]
        pred = predict_rows(model, template[None])[0].double().cpu().numpy()
        gt = rows.double().numpy()
        # Offsets around the same input template on both sides: T cancels in the difference.
        s = single_au_errors(pred[1:], gt[1:])
        m = multi_au_errors(pred[1:] - gt[0], gt[1:] - gt[0], weights)
        single.append(s)
        multi.append(m)
        per_identity[name] = {"mse_s": float(s.mean()), "mse_m": float(m.mean())}
        if on_identity is not None:
            on_identity(name)
    single_mean, multi_mean = np.mean(single, axis=0), np.mean(multi, axis=0)
    return AUBlendNetScores(
        split=dataset.split,
        identities=list(dataset.names),
        mse_s=float(single_mean.mean()),
        mse_m=float(multi_mean.mean()),
        per_au=dict(zip(AU_NAMES, map(float, single_mean), strict=True)),
        per_emotion=dict(zip(EXPRESSIVE_EMOTIONS, map(float, multi_mean), strict=True)),
        per_identity=per_identity,
    )

