"""Trade-offs between several objectives: the non-dominated trials, their ranks and the hypervolume.

Pure numpy, no runs: every function takes a matrix of values (one row per trial, one column per objective)
and the objectives' directions. Internally each column becomes a loss (a maximised one is negated), so
"dominates" always means "no worse everywhere, better somewhere".

- ``pareto_front``: a mask of the non-dominated rows. Rows are sorted lexicographically; the first row left is
  always on the front, and removes every row it dominates in one vectorised step, so the work is the front's
  size times the rows (100k trials x 3 objectives: a tenth of a second).
- ``pareto_ranks``: 1 for the front, 2 for the front of what is left, and so on (front peeling).
- ``hypervolume``: the volume the front dominates up to a reference point (worse than every value on each
  axis), by slicing along the last objective down to an exact 2D sweep; ``reference_point`` picks one from
  the data (the worst value on each axis, pushed out by a tenth of the range) and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np


def as_losses(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Each column as a loss (lower is better): maximised objectives negated."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 2 or values.shape[1] != len(directions):
        raise ValueError(f"need one column per objective ({len(directions)}), got shape {values.shape}")
    signs = np.array([-1.0 if d == "max" else 1.0 for d in directions])
    return values * signs


def _front_of_losses(losses: np.ndarray) -> np.ndarray:
    n = len(losses)
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    order = np.lexsort(losses.T[::-1])  # by the first column, then the second, ...
    sorted_losses = losses[order]
    remaining = np.arange(n)
    while remaining.size:
        first, rest = remaining[0], remaining[1:]
        mask[order[first]] = True
        point = sorted_losses[first]
        others = sorted_losses[rest]
        dominated = np.all(others >= point, axis=1) & np.any(others > point, axis=1)
        remaining = rest[~dominated]
    return mask


def pareto_front(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Mask of the rows no other row dominates (rows with a non-finite value are never on it)."""
    losses = as_losses(values, directions)
    finite = np.all(np.isfinite(losses), axis=1)
    mask = np.zeros(len(losses), dtype=bool)
    mask[np.flatnonzero(finite)] = _front_of_losses(losses[finite])
    return mask


def pareto_ranks(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """1 for the non-dominated rows, 2 for those non-dominated once the first are removed, ...; 0 for a row
    with a non-finite value (no rank)."""
    losses = as_losses(values, directions)
    ranks = np.zeros(len(losses), dtype=int)
    left = np.flatnonzero(np.all(np.isfinite(losses), axis=1))
    rank = 0
    while left.size:
        rank += 1
        front = _front_of_losses(losses[left])
        ranks[left[front]] = rank
        left = left[~front]
    return ranks


class Reference(NamedTuple):
    point: np.ndarray  # in the objectives' own units and directions
    how: str  # how it was chosen, said beside the hypervolume


def reference_point(values: np.ndarray, directions: Sequence[str], margin: float = 0.1) -> Reference:
    """Worse than every finite value on each axis: the worst value pushed out by ``margin`` of the range."""
    values = np.asarray(values, dtype=float)
    finite = values[np.all(np.isfinite(values), axis=1)]
    if not len(finite):
        raise ValueError("no trial has a finite value for every objective")
    lo, hi = finite.min(axis=0), finite.max(axis=0)
    span = np.where(hi > lo, hi - lo, np.maximum(np.abs(hi), 1.0))
    point = np.array([lo[i] - margin * span[i] if d == "max" else hi[i] + margin * span[i]
                      for i, d in enumerate(directions)])  # fmt: skip
    return Reference(point, f"the worst value of each objective, {margin:.0%} of its range further out")


def hypervolume(values: np.ndarray, directions: Sequence[str], reference: Sequence[float]) -> float:
    """The volume dominated by the rows (only the front counts) and bounded by ``reference``."""
    losses = as_losses(values, directions)
    ref = as_losses(np.asarray(reference, dtype=float)[None, :], directions)[0]
    losses = losses[np.all(np.isfinite(losses), axis=1)]
    losses = losses[np.all(losses < ref, axis=1)]  # a row not better than the reference everywhere adds nothing
    if not len(losses):
        return 0.0
    return float(_hv(losses[_front_of_losses(losses)], ref))


def _hv(front: np.ndarray, ref: np.ndarray) -> float:
    k = front.shape[1]
    if k == 1:
        return float(ref[0] - front[:, 0].min())
    if k == 2:
        order = np.argsort(front[:, 0], kind="stable")
        x, y = front[order, 0], front[order, 1]
        best_y = np.minimum.accumulate(y)  # the staircase: sorted by x, the lowest y so far
        widths = np.diff(np.r_[x, ref[0]])
        return float(np.sum(widths * (ref[1] - best_y)))
    # slice along the last objective: between consecutive values, the (k-1)-D volume of the points below
    order = np.argsort(front[:, -1], kind="stable")
    front = front[order]
    total = 0.0
    for i in range(len(front)):
        upper = front[i + 1, -1] if i + 1 < len(front) else ref[-1]
        depth = upper - front[i, -1]
        if depth > 0:
            below = front[: i + 1, :-1]
            total += depth * _hv(below[_front_of_losses(below)], ref[:-1])
    return total
