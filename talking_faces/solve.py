"""Fitting per-frame offsets with fixed shapes: batched non-negative least squares, and a PCA to a tolerance.

Both reduce the mesh once (a `(K, K)` Gram matrix of the shapes, or a `(T, T)` Gram matrix of the
frames), so the per-frame work is independent of the vertex count.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy.optimize import nnls

CHUNK = 4096  # vertices per chunk when reducing `(T, V, 3)` offsets


def _flat(shapes: np.ndarray) -> np.ndarray:
    return np.asarray(shapes, dtype=np.float64).reshape(shapes.shape[0], -1)


class GramSolver:
    """min_u |sum_k u_k S_k - x|^2 + ridge |u|^2 subject to u >= 0, for many frames x, with fixed shapes `S (K, V, 3)`.

    With the Gram matrix G = S S^T and H = G + ridge I = L L^T (Cholesky), the objective equals
    |L^T u - L^-1 r|^2 + const, where r = S x: each frame is a K x K NNLS. The tiny ridge (1e-6 of
    the mean shape energy) makes the answer unique when shapes cancel (jawLeft + jawRight) and
    keeps unused shapes at 0.
    """

    RIDGE = 1e-6

    def __init__(self, shapes: np.ndarray) -> None:
        flat = _flat(shapes)
        self.gram = flat @ flat.T
        ridge = self.RIDGE * max(float(np.trace(self.gram)) / max(len(self.gram), 1), 1e-300)
        lower = np.linalg.cholesky(self.gram + ridge * np.eye(len(self.gram)))
        self._a = lower.T  # (K, K)
        self._project = np.linalg.inv(lower)  # b = L^-1 r

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """Non-negative coefficients `(T, K)` for right-hand sides `rhs (T, K)` = per-frame S x."""
        b = np.asarray(rhs, dtype=np.float64) @ self._project.T
        return np.stack([nnls(self._a, row, maxiter=50 * self._a.shape[1])[0] for row in b]) if len(b) else np.zeros((0, self.gram.shape[0]))

    def residual(self, u: np.ndarray, rhs: np.ndarray, norms: np.ndarray) -> np.ndarray:
        """|S^T u - x| per frame `(T,)`, from the coefficients, S x `(T, K)` and |x|^2 `(T,)`."""
        squared = norms - 2 * np.einsum("tk,tk->t", u, rhs) + np.einsum("tk,kl,tl->t", u, self.gram, u)
        return np.sqrt(np.clip(squared, 0.0, None))


def _vertex_chunks(offsets) -> Iterator[tuple[int, np.ndarray]]:
    """`(start, (T, n, 3) float64)` slices of `offsets (T, V, 3)` over CHUNK vertices at a time (a torch
    tensor or a memory map is read one slice at a time)."""
    for start in range(0, offsets.shape[1], CHUNK):
        yield start, np.asarray(offsets[:, start:start + CHUNK], dtype=np.float64)


def fit_weights(offsets: np.ndarray, shapes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative weights `(T, K)` of `shapes (K, V, 3)` that best reproduce `offsets (T, V, 3)`.

    Returns the weights and the RMS per-vertex residual `(T,)` in the offsets' units. The offsets
    are reduced chunk by chunk over vertices (they may be a torch tensor or a memory map).
    """
    num_frames, num_vertices = offsets.shape[0], offsets.shape[1]
    solver = GramSolver(shapes)
    rhs = np.zeros((num_frames, shapes.shape[0]))
    norms = np.zeros(num_frames)
    for start, chunk in _vertex_chunks(offsets):
        chunk = chunk.reshape(num_frames, -1)
        rhs += chunk @ _flat(shapes[:, start:start + CHUNK]).T
        norms += np.einsum("ti,ti->t", chunk, chunk)
    weights = solver.solve(rhs)
    return weights, solver.residual(weights, rhs, norms) / np.sqrt(num_vertices)


def pca_to_tolerance(offsets: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Fewest principal components that reproduce every vertex of `offsets (T, V, 3)` within `tolerance`.

    Components are uncentred (the neutral is the origin) and scaled so their weights lie in [-1, 1].
    Returns components `(K, V, 3)` float32, weights `(T, K)` float32 and the largest per-vertex error.
    """
    num_frames, num_vertices = offsets.shape[0], offsets.shape[1]
    gram = np.zeros((num_frames, num_frames))
    for _, chunk in _vertex_chunks(offsets):
        chunk = chunk.reshape(num_frames, -1)
        gram += chunk @ chunk.T
    values, vectors = np.linalg.eigh(gram)
    order = np.argsort(values)[::-1]
    values, vectors = np.clip(values[order], 0.0, None), vectors[:, order]
    rank = int((values > 1e-12 * max(values[0], 1e-300)).sum()) if len(values) else 0

    errors: dict[int, float] = {}  # each one reads all the offsets: the last k is always one measured

    def max_error(k: int) -> float:
        if k not in errors:
            basis, worst = vectors[:, :k], 0.0
            for _, chunk in _vertex_chunks(offsets):
                flat = chunk.reshape(num_frames, -1)
                rest = (flat - basis @ (basis.T @ flat)).reshape(chunk.shape)
                worst = max(worst, float(np.linalg.norm(rest, axis=-1).max()) if rest.size else 0.0)
            errors[k] = worst
        return errors[k]

    low, high = 0, rank  # the smallest k within tolerance, by bisection (the error falls with k)
    if max_error(high) > tolerance:
        low = high
    while low < high:
        mid = (low + high) // 2
        if max_error(mid) <= tolerance:
            high = mid
        else:
            low = mid + 1
    k = low
    coefficients = vectors[:, :k] * np.sqrt(values[:k])  # (T, k) = U S
    scale = np.maximum(np.abs(coefficients).max(axis=0), 1e-30) if k else np.zeros(0)
    components = np.zeros((k, num_vertices, 3))
    for start, chunk in _vertex_chunks(offsets):
        chunk = chunk.reshape(num_frames, -1)
        # V_k = X^T U / S, times the weight scale so the weights are coefficients / scale.
        part = (vectors[:, :k].T @ chunk) / np.sqrt(values[:k])[:, None] * scale[:, None]
        components[:, start:start + CHUNK] = part.reshape(k, -1, 3)
    return components.astype(np.float32), (coefficients / scale).astype(np.float32), max_error(k)
