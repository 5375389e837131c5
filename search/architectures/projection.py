"""Two-dimensional maps of models from a distance matrix, with new models placed without recomputing.

Classical (Torgerson) MDS embeds the distance matrix of the models already shown; a new model (an ablation's
or a variation's child) is placed from its distances to them alone by the landmark formula (de Silva and
Tenenbaum; the out-of-sample extension REMAP cites), so the models already drawn never move. A model whose
distances match a landmark's lands on that landmark.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Projection:
    coords: np.ndarray  # (n, dims): the embedded models
    axes: np.ndarray  # (n, dims): eigenvectors scaled by 1 / sqrt(eigenvalue), for placing new models
    mean_sq: np.ndarray  # (n,): mean squared distance of each embedded model to all of them

    def place(self, distances: np.ndarray) -> np.ndarray:
        """Coordinates of new models from their distances to the embedded ones, shape (m, n) or (n,)."""
        d = np.atleast_2d(np.asarray(distances, dtype=float))
        return -0.5 * (d**2 - self.mean_sq) @ self.axes


def classical_mds(distances: np.ndarray, dims: int = 2) -> Projection:
    """Embed a symmetric distance matrix in ``dims`` dimensions (fewer positive eigenvalues: zero columns)."""
    d = np.asarray(distances, dtype=float)
    n = len(d)
    sq = d**2
    centre = np.eye(n) - 1.0 / n
    b = -0.5 * centre @ sq @ centre
    values, vectors = np.linalg.eigh((b + b.T) / 2)
    order = np.argsort(values)[::-1][:dims]
    values, vectors = values[order], vectors[:, order]
    keep = values > 1e-9 * max(values.max(initial=0.0), 1.0)
    coords = np.zeros((n, dims))
    axes = np.zeros((n, dims))
    coords[:, : keep.sum()] = vectors[:, keep] * np.sqrt(values[keep])
    axes[:, : keep.sum()] = vectors[:, keep] / np.sqrt(values[keep])
    return Projection(coords, axes, sq.mean(axis=1))


def prediction_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The share of held-out examples two models label differently (0: same predictions everywhere)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"predictions on different held-out sets: {a.shape} and {b.shape}")
    return float(np.mean(a != b))
