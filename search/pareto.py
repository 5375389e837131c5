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
    """Mask of the non-dominated rows of a loss matrix (two or three objectives: a sort and a sweep,
    O(n log n) or O(n log^2 n); more: the peeling loop below)."""
    if len(losses) and losses.shape[1] in (2, 3):
        unique, inverse = np.unique(losses, axis=0, return_inverse=True)  # sorted lexicographically
        dominated = _dominated_2d(unique) if losses.shape[1] == 2 else _dominated_3d(unique)
        return ~dominated[inverse.reshape(-1)]
    return _front_by_peeling(losses)


def _dominated_2d(points: np.ndarray) -> np.ndarray:
    """Unique rows sorted by (x, y): a row is dominated when an earlier one has y <= its y."""
    before = np.r_[np.inf, np.minimum.accumulate(points[:-1, 1])]
    return before <= points[:, 1]


LEAF = 256  # rows compared all against all in one numpy step


def _dominated_3d(points: np.ndarray) -> np.ndarray:
    """Unique rows sorted by (x, y, z): a row is dominated when an earlier one (x no larger) has y and z no larger.
    Divide and conquer on the sorted order: each half's rows are checked against the earlier half by a
    cumulative minimum of z over y (one sort and one search), small blocks all against all."""
    dominated = np.zeros(len(points), dtype=bool)
    stack = [(0, len(points))]
    pairs = []
    while stack:  # the split tree, leaves checked at once, merges after (their order does not matter)
        lo, hi = stack.pop()
        if hi - lo <= LEAF:
            block = points[lo:hi]
            no_larger = (block[None, :, 1] <= block[:, None, 1]) & (block[None, :, 2] <= block[:, None, 2])
            dominated[lo:hi] |= (no_larger & np.tri(hi - lo, k=-1, dtype=bool)).any(axis=1)
            continue
        mid = (lo + hi) // 2
        stack += [(lo, mid), (mid, hi)]
        pairs.append((lo, mid, hi))
    for lo, mid, hi in pairs:
        left, right = points[lo:mid], points[mid:hi]
        order = np.argsort(left[:, 1], kind="stable")
        min_z = np.minimum.accumulate(left[order, 2])
        count = np.searchsorted(left[order, 1], right[:, 1], side="right")  # earlier rows with y no larger
        best = np.where(count > 0, min_z[np.maximum(count - 1, 0)], np.inf)
        dominated[mid:hi] |= best <= right[:, 2]
    return dominated


def _front_by_peeling(losses: np.ndarray) -> np.ndarray:
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
    if k == 3:
        return _hv_3d(front, ref)
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


def _hv_3d(front: np.ndarray, ref: np.ndarray) -> float:
    """Three objectives: sweep along z, keeping the 2D staircase of the points below and its area; each point
    adds only the strips it newly dominates (the points it hides are removed), so the sweep is O(m log m)."""
    import bisect

    xs: list[float] = []
    ys: list[float] = []  # the staircase: x ascending, y strictly descending
    area, total = 0.0, 0.0
    order = np.argsort(front[:, 2], kind="stable")
    points = front[order]
    rx, ry = float(ref[0]), float(ref[1])
    for i, (px, py, pz) in enumerate(points.tolist()):
        at = bisect.bisect_left(xs, px)
        hidden = (at > 0 and ys[at - 1] <= py) or (at < len(xs) and xs[at] == px and ys[at] <= py)
        if not hidden:
            end = at
            while end < len(xs) and ys[end] >= py:
                end += 1
            # the strips it adds: from px to each hidden point's x, at the height the staircase had there
            lowest = ys[at - 1] if at > 0 else ry
            edges = [px, *xs[at:end], xs[end] if end < len(xs) else rx]
            heights = [lowest, *ys[at:end]]
            area += sum((h - py) * (edges[j + 1] - edges[j]) for j, h in enumerate(heights))
            xs[at:end], ys[at:end] = [px], [py]
        upper = points[i + 1, 2] if i + 1 < len(points) else ref[2]
        total += area * (upper - pz)
    return float(total)


MAX_CONTRIBUTORS = 400  # front points whose exclusive contribution is computed (each needs a hypervolume)


def contributions(values: np.ndarray, directions: Sequence[str], reference: Sequence[float]) -> np.ndarray:
    """Each row's exclusive hypervolume contribution: what the front loses without it (0 off the front, and
    for a row not better than ``reference``). Beyond ``MAX_CONTRIBUTORS`` front points, NaN (not computed)."""
    values = np.asarray(values, dtype=float)
    out = np.zeros(len(values))
    front = np.flatnonzero(pareto_front(values, directions))
    if len(front) > MAX_CONTRIBUTORS:
        out[front] = np.nan
        return out
    whole = hypervolume(values[front], directions, reference)
    for k, row in enumerate(front):
        others = np.delete(front, k)
        out[row] = whole - hypervolume(values[others], directions, reference) if len(others) else whole
    return np.maximum(out, 0.0)
