"""MSE_S and MSE_M (the paper's Tables 2 and 3) as pure functions, per identity, in m².

For one identity with GT targets P_k, predicted targets P̂_k (k = 1..32, absolute `(V, 3)` meshes)
and neutral T, with offsets B_k = P_k - T and B̂_k = P̂_k - T:

    MSE_S = 1 / (32 * 3V) * sum_k sum_{v,c} (P̂_k - P_k)[v, c]^2
    MSE_M = 1 / (7 * 3V) * sum_e sum_{v,c} (sum_k w_ek (B̂_k - B_k))[v, c]^2

where w_e are the EMFACS weights of the 7 expressive emotions at intensity 1 (`aus.EMOTION_AUS`), so
T + sum_k w_ek B_k is emotion e blended on the GT basis. Reported values are means over identities.
"""

from __future__ import annotations

import numpy as np

from ..aus import EXPRESSIVE_EMOTIONS, NUM_AUS, emotion_weights


def emotion_weight_matrix(emotions: tuple[str, ...] = EXPRESSIVE_EMOTIONS) -> np.ndarray:
    """`(E, 32)` AU weights of the emotions at intensity 1."""
    weights = np.zeros((len(emotions), NUM_AUS))
    for e, name in enumerate(emotions):
        for k, w in emotion_weights(name, 1.0).items():
            weights[e, k] = w
    return weights


def single_au_errors(pred_targets: np.ndarray, gt_targets: np.ndarray) -> np.ndarray:
    """Per-AU mean squared coordinate error `(32,)` of targets `(32, V*3)` (or `(32, V, 3)`)."""
    diff = np.asarray(pred_targets, np.float64) - np.asarray(gt_targets, np.float64)
    return (diff.reshape(NUM_AUS, -1) ** 2).mean(axis=1)


def multi_au_errors(pred_offsets: np.ndarray, gt_offsets: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-expression mean squared coordinate error `(E,)` of blends `weights (E, 32)` of two bases.

    err[e] = mean_{v,c} (sum_k w[e,k] * (pred[k] - gt[k])[v,c])^2, with offsets `(32, V*3)` or `(32, V, 3)`.
    """
    diff = (np.asarray(pred_offsets, np.float64) - np.asarray(gt_offsets, np.float64)).reshape(NUM_AUS, -1)
    return ((weights @ diff) ** 2).mean(axis=1)
