"""Clouds too dense to draw point by point: binned on the server, with the runs that matter kept as points.

Past ``DENSE_ABOVE`` points a scatter is drawn as a density (a heatmap of counts, binned here, so the browser
gets a few kilobytes instead of a million points) under the points a user looks for: the best runs and the
selection. Selecting still acts on every run: a box drawn on a dense view is turned into the runs inside it
(``in_box``), all of them, not only the drawn ones.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

DENSE_ABOVE = 20_000  # points: above this a cloud is drawn as density
KEEP_BEST = 500  # best runs drawn as points over a density
BINS = (120, 80)  # x, y
DENSITY_SCALE = [[0.0, "#F0F0F0"], [0.3, "#BDBDBD"], [1.0, "#525252"]]


class DensityInfo(NamedTuple):
    x_edges: list[float]
    y_edges: list[float]
    counts: list[list[int]]  # [y bin][x bin]
    n: int
    x_log: bool


def is_dense(n: int) -> bool:
    return n > DENSE_ABOVE


def density_info(x: np.ndarray, y: np.ndarray, x_log: bool = False, bins: tuple[int, int] = BINS) -> DensityInfo:
    """Counts of the finite points on a grid spanning them (log-spaced columns for a log x axis)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y) & ((x > 0) if x_log else True)
    x, y = x[keep], y[keep]
    if not len(x):
        return DensityInfo([], [], [], 0, x_log)
    x_edges = _edges(np.log10(x) if x_log else x, bins[0])
    y_edges = _edges(y, bins[1])
    counts, _, _ = np.histogram2d(np.log10(x) if x_log else x, y, bins=[x_edges, y_edges])
    xs = (10**x_edges) if x_log else x_edges
    return DensityInfo(xs.tolist(), y_edges.tolist(), counts.T.astype(int).tolist(), int(len(x)), x_log)


def _edges(values: np.ndarray, n: int) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    if high <= low:
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, n + 1)


def density_trace(info: DensityInfo, name: str = "all runs (density)") -> dict:
    """A heatmap of the counts; empty cells are left blank, hover says how many runs a cell holds."""
    centers_x = _centers(info.x_edges, info.x_log)
    centers_y = _centers(info.y_edges, False)
    z = [[c if c else None for c in row] for row in info.counts]
    return {
        "type": "heatmap",
        "x": centers_x,
        "y": centers_y,
        "z": z,
        "name": name,
        "colorscale": DENSITY_SCALE,
        "showscale": False,
        "hovertemplate": "%{z} runs here<extra></extra>",
        "zsmooth": False,
    }


def _centers(edges: list[float], log: bool) -> list[float]:
    e = np.asarray(edges, float)
    if log:
        return (10 ** ((np.log10(e[:-1]) + np.log10(e[1:])) / 2)).tolist()
    return ((e[:-1] + e[1:]) / 2).tolist()


def best_positions(values: np.ndarray, direction: str, k: int = KEEP_BEST) -> np.ndarray:
    """Positions of the ``k`` best finite values (best first)."""
    v = np.asarray(values, float)
    finite = np.flatnonzero(np.isfinite(v))
    if len(finite) <= k:
        order = np.argsort(v[finite] if direction == "min" else -v[finite], kind="stable")
        return finite[order]
    scores = v[finite] if direction == "min" else -v[finite]
    part = np.argpartition(scores, k - 1)[:k]
    return finite[part[np.argsort(scores[part], kind="stable")]]


def box_of(selection: dict | None) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """The x and y ranges of a plotly box selection, or None (a lasso, a click, nothing)."""
    box = (selection or {}).get("range") or {}
    if "x" not in box or "y" not in box:
        return None
    (x0, x1), (y0, y1) = box["x"][:2], box["y"][:2]
    return (min(x0, x1), max(x0, x1)), (min(y0, y1), max(y0, y1))


def in_box(x: np.ndarray, y: np.ndarray, box) -> np.ndarray:
    """Which points lie in a box selection (plotly gives its range in data values, a log axis' too)."""
    (x0, x1), (y0, y1) = box
    xv, yv = np.asarray(x, float), np.asarray(y, float)
    return (xv >= x0) & (xv <= x1) & (yv >= y0) & (yv <= y1)
