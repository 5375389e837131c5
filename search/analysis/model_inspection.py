"""One model's held-out predictions (confusion matrix, per-class accuracy), the per-class accuracy of every
model (the overview's class colouring), and a 2-D map of the models by how differently they predict (REMAP's
prediction distance: the share of held-out examples two models label differently). Pure: predictions in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from trellis.search.architectures.projection import classical_mds

Predictions = tuple[np.ndarray, np.ndarray]  # (predicted, labels)


class InspectionInfo(NamedTuple):
    classes: list[int]
    confusion: np.ndarray  # (k, k): rows true class, columns predicted
    per_class: np.ndarray  # (k,): recall of each class
    accuracy: float
    n: int


def _get_inspection_info(predicted: np.ndarray, labels: np.ndarray) -> InspectionInfo:
    k = int(max(predicted.max(initial=0), labels.max(initial=0))) + 1
    confusion = np.zeros((k, k), dtype=int)
    np.add.at(confusion, (labels, predicted), 1)
    support = confusion.sum(axis=1)
    per_class = np.divide(np.diag(confusion), support, out=np.full(k, np.nan), where=support > 0)
    return InspectionInfo(list(range(k)), confusion, per_class, float(np.mean(predicted == labels)), len(labels))


def class_accuracy(predictions: Mapping[str, Predictions | None], run_ids: list[str], cls: int) -> np.ndarray:
    """Each model's accuracy on the examples of class ``cls`` (NaN without predictions or such examples)."""
    out = np.full(len(run_ids), np.nan)
    for i, run_id in enumerate(run_ids):
        found = predictions.get(run_id)
        if found is None:
            continue
        predicted, labels = found
        mask = labels == cls
        if mask.any():
            out[i] = float(np.mean(predicted[mask] == cls))
    return out


def prediction_map(
    predictions: Mapping[str, Predictions | None], run_ids: list[str], children: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(coords (n, 2), drawn mask): the models with predictions on the same held-out set, by prediction
    distance; children are placed from their distances to the other models, which never move for them."""
    n = len(run_ids)
    coords, drawn = np.zeros((n, 2)), np.zeros(n, dtype=bool)
    reference = next((p[1] for r in run_ids if (p := predictions.get(r)) is not None), None)
    if reference is None:
        return coords, drawn
    for i, run_id in enumerate(run_ids):
        found = predictions.get(run_id)
        drawn[i] = found is not None and np.array_equal(found[1], reference)
    roots = np.flatnonzero(drawn & ~children)
    if len(roots) < 2:
        roots = np.flatnonzero(drawn)
    if len(roots) < 2:
        return coords, drawn & False
    landmarks = np.stack([predictions[run_ids[i]][0] for i in roots])
    projection = classical_mds(_disagreement(landmarks, landmarks))
    coords[roots] = projection.coords
    rest = np.setdiff1d(np.flatnonzero(drawn), roots)
    if len(rest):
        others = np.stack([predictions[run_ids[i]][0] for i in rest])
        coords[rest] = projection.place(_disagreement(others, landmarks))
    return coords, drawn


def _disagreement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``prediction_distance`` of every row of ``a`` to every row of ``b`` at once."""
    return (a[:, None, :] != b[None, :, :]).mean(axis=2)
