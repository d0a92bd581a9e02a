"""The metrics of speech-driven 3D face animation, as pure float64 array functions in native units.

Notation: prediction P[t, v, :] and ground truth G[t, v, :] are absolute vertex positions, template
tau[v, :] is the subject's neutral mesh. The per-frame functions return one value per frame so that
a runner can pool the frames of every sequence before averaging (CodeTalker's arithmetic):

    LVE   = mean over pooled frames t of  max_{v in lips} ||P[t,v] - G[t,v]||^2          (squared, m^2)
    V-LVE = mean over pooled frames t of  max_{v in lips} ||dP[t,v] - dG[t,v]||^2,
            dX[t] = X[t+1] - X[t]                                                        (squared, m^2)
    FDD   = unweighted mean over sequences of  D(G) - D(P),                              (signed, m^2)
            D(X) = mean_{v in upper} std_t ||X[t,v] - tau[v]||^2   (population std, ddof=0)
    MVE   = mean over pooled frames and all vertices of ||P[t,v] - G[t,v]||             (m)

Before any comparison the prediction is cut to the ground-truth length (P = P[:T_gt]), as the
reference does; should a prediction be shorter, the ground truth is cut to it as well.
"""

from __future__ import annotations

from collections.abc import Sequence as Seq

import numpy as np


def as_frames(array: np.ndarray, num_vertices: int | None = None) -> np.ndarray:
    """`(T, V*3)` or `(T, V, 3)` vertices as a float64 `(T, V, 3)` array."""
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 2:
        array = array.reshape(array.shape[0], -1, 3)
    if array.ndim != 3 or array.shape[2] != 3 or (num_vertices is not None and array.shape[1] != num_vertices):
        raise ValueError(f"expected (T, V*3) or (T, V, 3) vertices, got {array.shape}")
    return array


def truncate(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`pred[:T_gt]`, and `gt` cut to the prediction when the prediction is the shorter one."""
    length = min(pred.shape[0], gt.shape[0])
    return pred[:length], gt[:length]


def lip_errors(pred: np.ndarray, gt: np.ndarray, lips: np.ndarray) -> np.ndarray:
    """Per-frame LVE terms: m[t] = max_{v in lips} sum_xyz (P[t,v] - G[t,v])^2.

    Args:
        pred, gt: `(T, V, 3)` vertices (truncated to a common length).
        lips: `(L,)` int lip vertex indices, de-duplicated.
    Returns:
        `(T,)` float64 squared distances.
    """
    diff = pred[:, lips] - gt[:, lips]
    return np.einsum("tvc,tvc->tv", diff, diff).max(axis=1)


def velocity_lip_errors(pred: np.ndarray, gt: np.ndarray, lips: np.ndarray) -> np.ndarray:
    """Per-frame V-LVE terms: `lip_errors` of the frame differences, `(T-1,)` float64."""
    return lip_errors(np.diff(pred, axis=0), np.diff(gt, axis=0), lips)


def upper_face_dynamics(vertices: np.ndarray, template: np.ndarray, upper: np.ndarray) -> float:
    """D(X) = mean_{v in upper} std_t ||X[t,v] - tau[v]||^2, the population std (ddof=0).

    Args:
        vertices: `(T, V, 3)`; template: `(V, 3)`; upper: `(U,)` de-duplicated upper-face indices.
    """
    motion = vertices[:, upper] - template[upper]
    return float(np.einsum("tvc,tvc->tv", motion, motion).std(axis=0).mean())


def fdd_term(pred: np.ndarray, gt: np.ndarray, template: np.ndarray, upper: np.ndarray) -> float:
    """One sequence's signed FDD: D(G) - D(P); positive when the prediction's upper face moves less."""
    return upper_face_dynamics(gt, template, upper) - upper_face_dynamics(pred, template, upper)


def vertex_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-frame MVE terms: the mean over all vertices of ||P[t,v] - G[t,v]||, `(T,)` float64."""
    return np.linalg.norm(pred - gt, axis=2).mean(axis=1)


def mean_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over frames and vertices of ||a[t,v] - b[t,v]|| (not squared), over the common length."""
    a, b = truncate(a, b)
    return float(np.linalg.norm(a - b, axis=2).mean())


def _mean_pairwise_distance(animations: Seq[np.ndarray]) -> float | None:
    pairs = [mean_distance(animations[i], animations[j])
             for i in range(len(animations)) for j in range(i + 1, len(animations))]
    return float(np.mean(pairs)) if pairs else None


def condition_diversity(animations: Seq[np.ndarray]) -> float | None:
    """Diversity of one audio's animations under K conditions (emotions, or training-subject styles).

    div = 2 / (K (K-1)) * sum_{i<j} mean_distance(A_i, A_j), with `(T, V, 3)` animations A_k;
    None when K < 2. The dataset value is the mean of this over sequences (FaceDiffuser's arithmetic;
    unequal lengths are compared over their common length).
    """
    return _mean_pairwise_distance(animations)


def sample_diversity(samples: Seq[np.ndarray]) -> float | None:
    """Diversity of S stochastic samples for the same audio and condition.

    The mean distance over all S (S-1) / 2 unordered pairs of samples. ProbTalk3D pairs a random
    half of 10 samples with the other half instead; its expected value is this same mean, which we
    compute exactly rather than from one random draw. None when S < 2.
    """
    return _mean_pairwise_distance(samples)
