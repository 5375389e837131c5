"""Search-space overview: parallel coordinates, the importance matrix, marginals. Pure info + figures."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd

from trellis.layouts.selection import highlight_line, selected_mask
from trellis.layouts.style import Figure, empty_figure, figure, typed
from trellis.search import space as scales
from trellis.search.analysis.design import Axis
from trellis.search.analysis.fanova import Importance


class Dimension(NamedTuple):
    label: str
    values: np.ndarray  # display scale: log10 for log axes, codes for categoricals
    range: tuple[float, float]
    tickvals: list[float] | None
    ticktext: list[str] | None
    constraint: tuple[float, float] | None  # a band (suggested bounds, top-K) in display units


class ParcoordsInfo(NamedTuple):
    dims: list[Dimension]
    color: np.ndarray
    color_label: str
    reverse_scale: bool  # the colour scale reversed so the best runs are the darkest (as on every page)
    run_ids: list[str]
    filled: dict[str, int]  # parameter -> runs without a value, drawn apart below the axis' range


LABEL_LIMIT = 24  # characters of a categorical value an axis tick shows (the table holds the full value)


def short_labels(values: list[str], limit: int = LABEL_LIMIT) -> list[str]:
    """Tick labels no longer than ``limit``: long values cut with an ellipsis, kept distinct."""
    out: list[str] = []
    for i, text in enumerate(values):
        label = text if len(text) <= limit else text[: limit - 1] + "…"
        if label in out:
            label = f"{text[: limit - 4]}…#{i + 1}"
        out.append(label)
    return out


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values within [lo, hi] (1, 2 or 5 times a power of ten apart)."""
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        return [float(lo)]
    raw = (hi - lo) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [float(round(v, 12)) for v in np.arange(first, hi + step * 1e-9, step)]


def _display(axis: Axis, raw: pd.Series) -> tuple[np.ndarray, tuple[float, float], list | None, list | None]:
    if axis.kind == "categorical":
        index = {str(c): i for i, c in enumerate(axis.categories)}
        codes = np.array([index.get(str(v), np.nan) if pd.notna(v) else np.nan for v in raw], dtype=float)
        return (
            codes,
            (-0.5, len(axis.categories) - 0.5),
            list(range(len(axis.categories))),
            short_labels([str(c) for c in axis.categories]),
        )
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    if axis.log:
        lo, hi = math.log10(axis.low), math.log10(axis.high)
        decades = list(range(math.floor(lo), math.ceil(hi) + 1))
        ticks = [d for d in decades if lo - 1e-9 <= d <= hi + 1e-9] or [lo, hi]
        return scales.to_display(values, True), (lo, hi), ticks, [f"{10**t:g}" for t in ticks]
    return values, (axis.low, axis.high), None, None


def with_missing(dim: Dimension, missing: np.ndarray, categorical: bool = False) -> Dimension:
    """The axis with its missing values (an inactive conditional parameter) drawn apart, below its range.

    They sit at their own position, a gap under the lowest genuine value, ticked ``missing (n)``: never on
    top of a real low value. The axis keeps its ticks (round ones for a plain numeric axis).
    """
    lo, hi = dim.range
    at = lo - (1.0 if categorical else (0.15 * (hi - lo) or 1.0))
    tickvals = list(dim.tickvals) if dim.tickvals is not None else nice_ticks(lo, hi)
    ticktext = list(dim.ticktext) if dim.ticktext is not None else [f"{v:g}" for v in tickvals]
    values = np.where(missing, at, dim.values)
    return dim._replace(
        values=values,
        range=(at, hi),
        tickvals=[at, *tickvals],
        ticktext=[f"missing ({int(missing.sum())})", *ticktext],
    )


def to_display(axis: Axis, unit_lo: float, unit_hi: float) -> tuple[float, float]:
    """A [0, 1] range of the analysis scale on the axis' display scale."""
    if axis.kind == "categorical":
        k = len(axis.categories)
        return unit_lo * k - 0.5, unit_hi * k - 0.5
    lo, hi = axis.from_unit(unit_lo), axis.from_unit(unit_hi)
    return float(scales.to_display(lo, axis.log)), float(scales.to_display(hi, axis.log))


def parcoords_info(
    trials: pd.DataFrame,
    axes: list[Axis],
    metrics: list[str],
    direction: str,
    bands: dict[str, tuple[float, float]] | None = None,
    top_k: int | None = None,
) -> ParcoordsInfo:
    """Axes in the order given (most important first), then the metrics; ``bands`` in [0, 1] units."""
    dims, filled = [], {}
    for axis in axes:
        values, rng, tickvals, ticktext = _display(axis, trials[f"params.{axis.name}"])
        band = to_display(axis, *bands[axis.name]) if bands and axis.name in bands else None
        dim = Dimension(axis.name, values, rng, tickvals, ticktext, band)
        missing = ~np.isfinite(values)
        if missing.any():
            filled[axis.name] = int(missing.sum())
            dim = with_missing(dim, missing, axis.kind == "categorical")
        dims.append(dim)
    color = np.zeros(len(trials))
    for i, metric in enumerate(metrics):
        values = trials[f"metrics.{metric}"].to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
        values = np.where(np.isfinite(values), values, lo)
        band = None
        if i == 0 and top_k and len(finite):
            ranked = np.sort(finite)[::-1] if direction == "max" else np.sort(finite)
            edge = float(ranked[min(top_k, len(ranked)) - 1])
            band = (edge, hi) if direction == "max" else (lo, edge)
        dims.append(Dimension(metric, values, (lo, hi), None, None, band))
        if i == 0:
            color = values
    return ParcoordsInfo(
        dims, color, metrics[0] if metrics else "", direction == "max", trials["run_id"].tolist(), filled
    )


def parcoords_plot(
    info: ParcoordsInfo, selected: list[str] | None = None, constraints: dict[int, list[list[float]]] | None = None
) -> Figure:
    """The parallel coordinates; the selected runs keep the metric colours, the others are grey.

    ``constraints`` are the brushes on screen per axis index (``screen_constraints``); without them, each
    axis' own band.
    """
    if not info.dims or not len(info.run_ids):
        return empty_figure("No runs with these parameters and metrics")
    if constraints is None:
        constraints = {i: [list(d.constraint)] for i, d in enumerate(info.dims) if d.constraint is not None}
    dimensions = []
    for i, d in enumerate(info.dims):
        dim = {"label": d.label, "values": typed(d.values), "range": list(d.range)}
        if d.tickvals is not None:
            dim.update(tickvals=d.tickvals, ticktext=d.ticktext)
        if constraints.get(i):
            ranges = constraints[i]
            dim["constraintrange"] = list(ranges[0]) if len(ranges) == 1 else [list(r) for r in ranges]
        dimensions.append(dim)
    lines = drawn_lines(info, selected)
    if lines is not None:
        for dim, d in zip(dimensions, info.dims):
            dim["values"] = typed(d.values[lines])
    mask = selected_mask(info.run_ids, selected)
    color = info.color
    if lines is not None:
        mask, color = mask[lines], color[lines]
    trace = {
        "type": "parcoords",
        "dimensions": dimensions,
        "line": {
            **highlight_line(color, mask, info.reverse_scale),
            "showscale": True,
            "colorbar": {"title": {"text": info.color_label + (" (selected runs)" if mask.any() else "")}},
        },
        "unselected": {"line": {"color": "#DDDDDD", "opacity": 0.3}},
    }
    layout = {"margin": {"l": 70, "r": 70, "t": 60, "b": 30}, "height": 460}
    if lines is not None:
        n = len(info.run_ids)
        layout["title"] = {
            "text": f"{len(lines)} of {n} runs drawn: the {KEEP_BEST_LINES} best on {info.color_label}, the selection "
            f"and an even sample over it; a brush selects among all {n}",
            "font": {"size": 12},
        }
        layout["margin"]["t"] = 90
    return figure([trace], **layout)


MAX_LINES = 2000  # lines a parallel-coordinates plot draws at most (plotly stays fluid to about 10-20k)
KEEP_BEST_LINES = 500


def drawn_lines(info: ParcoordsInfo, selected: list[str] | None = None) -> np.ndarray | None:
    """Which runs a parallel-coordinates plot of many runs draws (None: all): the best, the selection, and
    an even sample over the colour metric's ranks, so the drawn lines spread over the runs as they are."""
    n = len(info.run_ids)
    if n <= MAX_LINES:
        return None
    order = np.argsort(info.color, kind="stable")
    best = order[-KEEP_BEST_LINES:] if info.reverse_scale else order[:KEEP_BEST_LINES]
    chosen = np.flatnonzero(selected_mask(info.run_ids, selected))[:MAX_LINES]
    room = max(MAX_LINES - len(best) - len(chosen), 0)
    sample = order[np.linspace(0, n - 1, room).astype(int)] if room else np.empty(0, dtype=int)
    return np.unique(np.concatenate([best, chosen, sample]))


def brushed_selection(
    info: ParcoordsInfo, constraints: dict[int, list[list[float]]], limit: int
) -> tuple[list[str], int]:
    """(the runs inside the brushes, best first, at most ``limit``; how many are inside): a brush acts on every
    run, drawn or not, and the selection it makes stays small enough to pass around."""
    inside = set(runs_within(info, constraints))
    rows = np.flatnonzero(pd.Index(info.run_ids, dtype=object).isin(inside))
    rows = rows[np.argsort(-info.color[rows] if info.reverse_scale else info.color[rows], kind="stable")]
    return [info.run_ids[i] for i in rows[:limit]], len(rows)


def runs_within(info: ParcoordsInfo, constraints: dict[int, list[list[float]]]) -> list[str]:
    """Run ids whose value on every constrained axis lies in one of that axis' brushed ranges."""
    keep = np.ones(len(info.run_ids), dtype=bool)
    for index, ranges in constraints.items():
        if index >= len(info.dims) or not ranges:
            continue
        values = info.dims[index].values
        inside = np.zeros(len(values), dtype=bool)
        for lo, hi in ranges:
            inside |= (values >= min(lo, hi)) & (values <= max(lo, hi))
        keep &= inside
    return [r for r, k in zip(info.run_ids, keep) if k]


def screen_constraints(info: ParcoordsInfo, brushes: dict[str, list | None]) -> dict[int, list[list[float]]]:
    """The brushes on screen per axis index: the user's, by axis label, else the axis' band (bounds, top-K).

    A label brushed to nothing (``None``) has no brush, its band included.
    """
    out = {}
    for i, d in enumerate(info.dims):
        if d.label in (brushes or {}):
            ranges = brushes[d.label]
        else:
            ranges = [list(d.constraint)] if d.constraint is not None else None
        if ranges:
            out[i] = [list(r) for r in ranges]
    return out


def apply_brush(
    info: ParcoordsInfo, event, brushes: dict[str, list | None]
) -> tuple[dict[str, list | None], dict[int, list[list[float]]]]:
    """One user brush (a ``restyleData`` event): the user's brushes by label, and the brushes now on screen.

    Only a user's brush changes the selection; the page then selects ``runs_within(info, on_screen)``.
    Brushes are kept by axis label, so they survive a redraw with other runs or other axes.
    """
    before = screen_constraints(info, brushes)
    after = parse_restyle(event, before)
    out = dict(brushes or {})
    for i in set(before) | set(after):
        if before.get(i) != after.get(i) and i < len(info.dims):
            out[info.dims[i].label] = after.get(i)
    return out, after


def parse_restyle(event, constraints: dict[int, list[list[float]]]) -> dict[int, list[list[float]]]:
    """Fold one plotly ``restyleData`` event of a parcoords trace into the brushed ranges per axis."""
    out = {int(k): v for k, v in (constraints or {}).items()}
    if not event or not isinstance(event, list) or not isinstance(event[0], dict):
        return out
    for key, value in event[0].items():
        if not key.startswith("dimensions[") or not key.endswith("].constraintrange"):
            continue
        index = int(key[len("dimensions[") : key.index("]")])
        ranges = value[0] if isinstance(value, list) and len(value) == 1 else value
        if ranges is None or ranges == [None]:
            out.pop(index, None)
            continue
        if ranges and not isinstance(ranges[0], list):
            ranges = [ranges]
        out[index] = [[float(a), float(b)] for a, b in ranges]
    return out


class ImportanceRow(NamedTuple):
    label: str
    mean: float
    std: float
    params: tuple[str, ...]  # the parameter, or the pair, the row is about


def importance_rows(importance: Importance, max_rows: int = 20) -> list[ImportanceRow]:
    """HyperTendril's matrix rows, singles and pairs, most important first, each naming its parameters."""
    rows = [ImportanceRow(n, importance.single_mean[n], importance.single_std[n], (n,)) for n in importance.names]
    for (a, b), mean in importance.pair_mean.items():
        rows.append(ImportanceRow(f"{a} × {b}", mean, importance.pair_std[(a, b)], (a, b)))
    return sorted(rows, key=lambda r: -r.mean)[:max_rows]


def importance_plot(importance: Importance, max_rows: int = 20) -> Figure:
    """The matrix as bars: one row per parameter or pair, most important on top, std as error.

    Each bar carries its parameter names as ``customdata`` ([name, None] or [a, b]) for click handlers.
    """
    rows = importance_rows(importance, max_rows)[::-1]  # bottom to top: the most important is drawn last
    if not rows:
        return empty_figure("No varying parameters to rank")
    trace = {
        "type": "bar",
        "orientation": "h",
        "y": [r.label for r in rows],
        "x": typed([r.mean for r in rows]),
        "error_x": {"type": "data", "array": typed([r.std for r in rows]), "visible": True, "thickness": 1},
        "customdata": [[*r.params, None][:2] for r in rows],
        "marker": {"color": ["#E69F00" if len(r.params) == 2 else "#0072B2" for r in rows]},
        "hovertemplate": "%{y}: %{x:.3f}<extra></extra>",
    }
    return figure(
        [trace],
        xaxis={"title": {"text": "fraction of variance (fANOVA)"}, "rangemode": "tozero"},
        yaxis={"automargin": True},
        height=max(300, 22 * len(rows) + 80),
        margin={"l": 160, "r": 20, "t": 20, "b": 50},
    )


def marginal_plot(axis: Axis, unit_points: np.ndarray, mean: np.ndarray, std: np.ndarray, metric: str) -> Figure:
    x = np.array([axis.from_unit(u) for u in unit_points])
    if axis.kind == "categorical":
        k = len(axis.categories)
        centres = (np.arange(k) + 0.5) / k
        idx = np.clip(np.searchsorted(unit_points, centres), 0, len(unit_points) - 1)
        trace = {
            "type": "bar",
            "x": [str(c) for c in axis.categories],
            "y": typed(mean[idx]),
            "error_y": {"type": "data", "array": typed(std[idx]), "visible": True},
        }
        return figure([trace], xaxis={"title": {"text": axis.name}}, yaxis={"title": {"text": f"marginal {metric}"}})
    band = {
        "type": "scatter",
        "x": typed(np.concatenate([x, x[::-1]])),
        "y": typed(np.concatenate([mean + std, (mean - std)[::-1]])),
        "fill": "toself",
        "mode": "none",
        "fillcolor": "rgba(0,114,178,0.2)",
        "name": "± std over trees",
        "hoverinfo": "skip",
    }
    line = {
        "type": "scatter",
        "x": typed(x),
        "y": typed(mean),
        "mode": "lines",
        "name": "marginal",
        "line": {"color": "#0072B2", "width": 2},
    }
    xaxis = {"title": {"text": axis.name}, **({"type": "log"} if axis.log else {})}
    return figure([band, line], xaxis=xaxis, yaxis={"title": {"text": f"marginal {metric}"}})


def pair_plot(
    a: Axis, b: Axis, unit_points: np.ndarray, grid: np.ndarray, metric: str, direction: str = "max"
) -> Figure:
    """The forest's marginal over two parameters; darker = better, as on every page."""
    xa = [a.from_unit(u) for u in unit_points] if a.kind != "categorical" else None
    xb = [b.from_unit(u) for u in unit_points] if b.kind != "categorical" else None
    trace = {
        "type": "heatmap",
        "z": grid.T.tolist(),
        "x": xa or [f"{u:.2f}" for u in unit_points],
        "y": xb or [f"{u:.2f}" for u in unit_points],
        "colorscale": "Viridis",
        "reversescale": direction == "max",  # Viridis is dark at its low end: darker = better
        "colorbar": {"title": {"text": metric}},
    }
    return figure(
        [trace],
        xaxis={"title": {"text": a.name}, **({"type": "log"} if a.log else {})},
        yaxis={"title": {"text": b.name}, **({"type": "log"} if b.log else {})},
    )


def progress_text(runs: int, seconds: float, updating: bool) -> str:
    """The line shown while the analysis is computed in the background: over how many runs, for how long."""
    what = "Updating the analysis (a run ended)" if updating else "Computing the search-space analysis"
    return (
        f"{what} of {runs:,} runs in the background: importance, marginals, suggested bounds. "
        f"{max(0, int(seconds))} s so far; the page fills in by itself when it is done."
    )
