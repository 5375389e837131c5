"""Optimization overview: pure ``*_info(frame) -> NamedTuple`` computations and ``*_plot(info)`` figures.

The info functions take the reader's run frame and return small results; they know nothing of Dash
and are tested on their own. The plot functions only draw what an info holds.

Over 400 lines: the overview's small info/plot pairs, kept together as the page reads them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from trellis.layouts import dense
from trellis.layouts.labels import markdown_link, run_labels, search_label, short_number
from trellis.layouts.selection import DIMMED_OPACITY, selected_mask, selected_overlay, selection_revision
from trellis.layouts.style import BASE_LAYOUT, COLORS, Figure, empty_figure, figure, search_colors, typed
from trellis.search.analysis.objective import INTERNAL_PREFIX, best_final
from trellis.tracking.reader import recorded_spaces

STATUS_ORDER = ["FINISHED", "RUNNING", "FAILED", "KILLED", "SCHEDULED"]


# -- counts -----------------------------------------------------------------------------------------


class CountsInfo(NamedTuple):
    total: int
    by_status: dict[str, int]
    searches: int
    best_value: float | None  # the best value a run ended with, as ``trellis search`` counts it
    best_run: str | None
    skipped: dict[str, int]


def counts_info(trials: pd.DataFrame, metric: str | None, direction: str, skipped: dict[str, int]) -> CountsInfo:
    by_status = trials["status"].value_counts().to_dict() if len(trials) else {}
    ordered = {s: int(by_status[s]) for s in STATUS_ORDER if s in by_status}
    ordered.update({s: int(n) for s, n in by_status.items() if s not in ordered})
    best_value, best_run = best_final(trials, metric, direction) if metric else (None, None)
    return CountsInfo(
        len(trials), ordered, trials["search_id"].nunique() if len(trials) else 0, best_value, best_run, dict(skipped)
    )


def without_finite(trials: pd.DataFrame, metric: str) -> int:
    """Runs shown that have no finite value of ``metric`` (NaN, inf or never logged): what a plot of it leaves out."""
    col = f"metrics.{metric}"
    if col not in trials:
        return len(trials)
    return int((~np.isfinite(trials[col].to_numpy(dtype=float))).sum())


def left_out(trials: pd.DataFrame, metrics: list[str | None], skipped: dict[str, int]) -> dict[str, int]:
    """What the counts card says was left out of the plots: deleted runs, and per metric plotted the runs
    without a finite value, counted exactly as the plots count them (``without_finite``)."""
    out = {what: n for what, n in skipped.items() if not what.startswith("non-finite ")}
    for metric in dict.fromkeys(m for m in metrics if m):
        n = without_finite(trials, metric)
        if n:
            out[f"without a finite {metric}"] = n
    return out


# -- best so far ------------------------------------------------------------------------------------


class BestSoFarInfo(NamedTuple):
    metric: str
    direction: str
    series: dict[str, tuple[list[int], list[float], list[float]]]  # search -> (order, value, best so far)
    labels: dict[str, str]
    run_ids: dict[str, list[str]] | None = None  # search -> the run of each point in ``series``
    density: dense.DensityInfo | None = None  # too many runs to draw one by one: all of them, binned


def best_so_far_info(trials: pd.DataFrame, metric: str, direction: str, labels: dict[str, str]) -> BestSoFarInfo:
    """Per search, in the order trials started: each finite value and the best up to it. Past
    ``dense.DENSE_ABOVE`` runs only the runs that improved the best are points, and all runs a density."""
    col = f"metrics.{metric}"
    series: dict[str, tuple[list[int], list[float], list[float]]] = {}
    run_ids: dict[str, list[str]] = {}
    if col not in trials:
        return BestSoFarInfo(metric, direction, series, labels, run_ids)
    crowded = dense.is_dense(len(trials))
    cloud: list[tuple[np.ndarray, np.ndarray]] = []
    for search_id, group in trials.sort_values("start_time", kind="stable").groupby("search_id", sort=False):
        values = group[col].to_numpy(dtype=float)
        keep = np.isfinite(values)
        if not keep.any():
            continue
        order = np.arange(1, len(values) + 1)[keep]
        values = values[keep]
        ids = group["run_id"].to_numpy(dtype=object)[keep]
        best = np.maximum.accumulate(values) if direction == "max" else np.minimum.accumulate(values)
        if crowded:
            cloud.append((order, values))
            improved = np.ones(len(best), dtype=bool)
            improved[1:] = best[1:] != best[:-1]
            order, values, best, ids = order[improved], values[improved], best[improved], ids[improved]
        run_ids[str(search_id)] = [str(r) for r in ids]
        series[str(search_id)] = (order.tolist(), values.tolist(), best.tolist())
    density = None
    if crowded and cloud:
        density = dense.density_info(np.concatenate([c[0] for c in cloud]), np.concatenate([c[1] for c in cloud]))
    return BestSoFarInfo(metric, direction, series, labels, run_ids, density)


def best_so_far_plot(info: BestSoFarInfo, selected: list[str] | None = None) -> Figure:
    """Each search's points and running best; the selected runs' points outlined on top, the others dimmed."""
    if not info.series:
        return empty_figure(f"No finite values of {info.metric} yet")
    colors = search_colors(list(info.series))
    chosen = set(selected or [])
    picked: list[tuple[int, float, str]] = []
    data = [dense.density_trace(info.density)] if info.density else []
    for search_id, (order, values, best) in info.series.items():
        name, color = info.labels.get(search_id, search_id[:8]), colors[search_id]
        data.append(
            {
                "type": "scattergl",
                "x": typed(order),
                "y": typed(values),
                "mode": "markers",
                "name": name,
                "legendgroup": search_id,
                "showlegend": False,
                "marker": {"color": color, "size": 5, "opacity": DIMMED_OPACITY if chosen else 0.45},
                **({"customdata": info.run_ids[search_id]} if info.density and info.run_ids else {}),
            }
        )
        for o, v, r in zip(order, values, (info.run_ids or {}).get(search_id, [])):
            if r in chosen:
                picked.append((o, v, r))
        data.append(
            {
                "type": "scatter",
                "x": typed(order),
                "y": typed(best),
                "mode": "lines",
                "name": name,
                "legendgroup": search_id,
                "line": {"color": color, "width": 2, "shape": "hv"},
            }
        )
    if picked:
        order, values, ids = zip(*picked)
        data.append(selected_overlay(list(order), list(values), list(ids)))
    title = "trial (in start order)"
    if info.density:
        title += f": {info.density.n} runs as density, the runs that improved the best as points"
    return figure(
        data,
        xaxis={"title": {"text": title}},
        yaxis={"title": {"text": f"best {info.metric} so far ({info.direction})"}},
    )


# -- distributions ----------------------------------------------------------------------------------


class DistributionInfo(NamedTuple):
    metric: str
    values: dict[str, list[float]]  # search -> finite values (empty when binned here)
    dropped: int
    labels: dict[str, str]
    edges: list[float] | None = None  # past ``dense.DENSE_ABOVE`` runs: the histogram is binned here ...
    counts: dict[str, list[int]] | None = None  # ... search -> runs per bin


HISTOGRAM_BINS = 40


def distribution_info(trials: pd.DataFrame, metric: str, labels: dict[str, str]) -> DistributionInfo:
    col = f"metrics.{metric}"
    if col not in trials:
        return DistributionInfo(metric, {}, 0, labels)
    values = trials[col].to_numpy(dtype=float)
    keep = np.isfinite(values)
    by_search = pd.Series(values[keep], index=trials["search_id"].to_numpy()[keep]).groupby(level=0)
    if dense.is_dense(len(trials)) and keep.any():
        edges = np.histogram_bin_edges(values[keep], bins=HISTOGRAM_BINS)
        counts = {str(s): np.histogram(v.to_numpy(), bins=edges)[0].tolist() for s, v in by_search}
        return DistributionInfo(metric, {}, without_finite(trials, metric), labels, edges.tolist(), counts)
    grouped = {str(s): v.tolist() for s, v in by_search}
    return DistributionInfo(metric, grouped, without_finite(trials, metric), labels)


def distribution_plot(info: DistributionInfo) -> Figure:
    if info.counts:
        return _binned_distribution_plot(info)
    if not info.values:
        return empty_figure(f"No finite values of {info.metric}")
    colors = search_colors(list(info.values))
    data = [
        {
            "type": "histogram",
            "x": typed(values),
            "name": info.labels.get(s, s[:8]),
            "opacity": 0.6,
            "marker": {"color": colors[s]},
            "nbinsx": 40,
        }
        for s, values in info.values.items()
    ]
    title = info.metric + (f"  ({info.dropped} without a finite {info.metric} left out)" if info.dropped else "")
    return figure(
        data,
        barmode="overlay",
        xaxis={"title": {"text": title}},
        yaxis={"title": {"text": "runs"}},
        showlegend=len(info.values) > 1,
    )


def _binned_distribution_plot(info: DistributionInfo) -> Figure:
    """The histogram binned on the server: one bar trace per search over the same bins."""
    colors = search_colors(list(info.counts or {}))
    edges = np.asarray(info.edges, float)
    centers, widths = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    data = [
        {
            "type": "bar",
            "x": typed(centers),
            "y": counts,
            "width": typed(widths),
            "name": info.labels.get(s, s[:8]),
            "opacity": 0.6,
            "marker": {"color": colors[s]},
        }
        for s, counts in (info.counts or {}).items()
    ]
    title = info.metric + (f"  ({info.dropped} without a finite {info.metric} left out)" if info.dropped else "")
    return figure(
        data,
        barmode="overlay",
        bargap=0,
        xaxis={"title": {"text": title}},
        yaxis={"title": {"text": "runs"}},
        showlegend=len(data) > 1,
    )


# -- trade-off and Pareto front ---------------------------------------------------------------------


def pareto_mask(x: np.ndarray, y: np.ndarray, x_dir: str, y_dir: str) -> np.ndarray:
    """True for points that no other point beats on one axis while matching it on the other.

    Sweep from the best x down, a group of equal x at a time: a group's best-y points are on the front
    when they beat every y seen at a strictly better x. Identical points are all on the front.
    """
    sx = np.asarray(x, float) * (1 if x_dir == "max" else -1)
    sy = np.asarray(y, float) * (1 if y_dir == "max" else -1)
    mask = np.zeros(len(sx), dtype=bool)
    if not len(sx):
        return mask
    order = np.lexsort((-sy, -sx))  # best x first, best y first within a group of equal x
    gx, gy = sx[order], sy[order]
    starts = np.flatnonzero(np.r_[True, gx[1:] != gx[:-1]])  # where each group of equal x begins
    top = np.maximum.reduceat(gy, starts)  # each group's best y
    before = np.r_[-np.inf, np.maximum.accumulate(top)[:-1]]  # the best y at any strictly better x
    group = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(gx)]))
    mask[order] = (gy == top[group]) & (top[group] > before[group])
    return mask


class TradeoffInfo(NamedTuple):
    x_metric: str
    y_metric: str
    x_dir: str
    y_dir: str
    run_ids: list[str]
    x: list[float]
    y: list[float]
    search: list[str]
    front: list[int]  # indices into the lists above, sorted along x
    dropped: int
    labels: dict[str, str]
    x_log: bool
    gpus: list[str | None] | None = None  # each point's GPU (``trellis.gpu``); None when no run has one
    density: dense.DensityInfo | None = None  # too many runs to draw: all as density, the points listed above


def gpu_values(trials: pd.DataFrame) -> list[str | None] | None:
    """Each run's GPU ids as recorded (``trellis.gpu``), or None when no run in ``trials`` ran on a GPU."""
    if "gpu" not in trials or not trials["gpu"].notna().any():
        return None
    return [None if pd.isna(v) else str(v) for v in trials["gpu"]]


def tradeoff_info(
    trials: pd.DataFrame,
    x_metric: str,
    y_metric: str,
    x_dir: str,
    y_dir: str,
    labels: dict[str, str],
    selected: list[str] | None = None,
) -> TradeoffInfo:
    """Every run with both metrics as a point; past ``dense.DENSE_ABOVE`` runs, all of them as a density and
    only the Pareto front, the best runs on y and the ``selected`` runs as points."""
    cx, cy = f"metrics.{x_metric}", f"metrics.{y_metric}"
    if cx not in trials or cy not in trials:
        return TradeoffInfo(x_metric, y_metric, x_dir, y_dir, [], [], [], [], [], 0, labels, False)
    x = trials[cx].to_numpy(dtype=float)
    y = trials[cy].to_numpy(dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    rows = np.flatnonzero(keep)
    x, y = x[keep], y[keep]
    mask = pareto_mask(x, y, x_dir, y_dir)
    x_log = bool(len(x) and x.min() > 0 and x.max() / x.min() >= 100)
    density = None
    if dense.is_dense(len(x)):
        density = dense.density_info(x, y, x_log)
        shown = np.zeros(len(x), dtype=bool)
        shown[mask] = True
        shown[dense.best_positions(y, y_dir)] = True
        if selected:
            shown |= trials["run_id"].iloc[rows].isin(selected).to_numpy()
        rows, x, y, mask = rows[shown], x[shown], y[shown], mask[shown]
    gpus = gpu_values(trials.iloc[rows])
    front = np.flatnonzero(mask)
    front = front[np.argsort(x[front], kind="stable")]
    return TradeoffInfo(
        x_metric,
        y_metric,
        x_dir,
        y_dir,
        [str(r) for r in trials["run_id"].to_numpy()[rows]],
        x.tolist(),
        y.tolist(),
        [str(s) for s in trials["search_id"].to_numpy()[rows]],
        front.tolist(),
        int((~keep).sum()),
        labels,
        x_log,
        gpus,
        density,
    )


def tradeoff_plot(info: TradeoffInfo, selected: list[str] | None = None) -> Figure:
    """Points per search and the Pareto front; the selected runs outlined on top, the others dimmed."""
    if info.x_metric == info.y_metric:  # one metric only (or the same picked twice): not y against y
        return empty_figure(f"Only {info.y_metric} on both axes: a trade-off needs a second metric for x")
    if not info.run_ids:
        return empty_figure(f"No runs with finite {info.x_metric} and {info.y_metric}")
    searches = list(dict.fromkeys(info.search))
    colors = search_colors(searches)
    run_ids, search = np.array(info.run_ids, dtype=object), np.array(info.search, dtype=object)
    x, y = np.array(info.x), np.array(info.y)
    hover = f"{info.x_metric}=%{{x:.4g}}<br>{info.y_metric}=%{{y:.4g}}<br>%{{customdata}}<extra></extra>"
    mask = selected_mask(info.run_ids, selected)
    data = [dense.density_trace(info.density)] if info.density else []
    gpus = np.array(info.gpus, dtype=object) if info.gpus is not None else None
    for s in searches:
        idx = np.flatnonzero(search == s)
        trace = {
            "type": "scattergl",
            "x": typed(x[idx]),
            "y": typed(y[idx]),
            "customdata": run_ids[idx].tolist(),
            "mode": "markers",
            "name": info.labels.get(s, s[:8]),
            "hovertemplate": hover,
            "marker": {"color": colors[s], "size": 7, "opacity": DIMMED_OPACITY if mask.any() else 0.75},
        }
        if gpus is not None:  # the GPU each trial ran on, under its run id
            trace["text"] = [f"GPU {g}" if g else "no GPU" for g in gpus[idx]]
            trace["hovertemplate"] = hover.replace("<extra>", "<br>%{text}<extra>")
        data.append(trace)
    if info.front:
        fx, fy = x[info.front], y[info.front]
        data.append(
            {
                "type": "scatter",
                "x": typed(fx),
                "y": typed(fy),
                "mode": "lines+markers",
                "name": "Pareto front",
                "hoverinfo": "skip",
                "line": {"color": COLORS["front"], "width": 2, "shape": "hv"},
                "marker": {"symbol": "diamond-open", "size": 11, "color": COLORS["front"]},
            }
        )
    if mask.any():
        data.append(selected_overlay(x[mask], y[mask], run_ids[mask].tolist(), hover))
    xaxis = {"title": {"text": f"{info.x_metric} ({info.x_dir})"}}
    if info.density:
        xaxis["title"]["text"] += (
            f": {info.density.n} runs as density; points: the front, the {dense.KEEP_BEST} best and the selection"
        )
    if info.x_log:
        xaxis["type"] = "log"
    return figure(
        data,
        xaxis=xaxis,
        yaxis={"title": {"text": f"{info.y_metric} ({info.y_dir})"}},
        dragmode="select",
        clickmode="event+select",
        selectionrevision=selection_revision(selected),
        # above the plot: below it, the legend sat on the x axis' title
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0, "xanchor": "left"},
        margin={**BASE_LAYOUT["margin"], "t": 60},
    )


# -- selection --------------------------------------------------------------------------------------


def top_k(trials: pd.DataFrame, metric: str, direction: str, k: int) -> list[str]:
    col = f"metrics.{metric}"
    if col not in trials or k <= 0:
        return []
    values = trials[[col, "run_id"]].copy()
    values = values[np.isfinite(values[col].to_numpy(dtype=float))]
    values = values.sort_values(col, ascending=direction == "min", kind="stable")
    return values["run_id"].head(k).tolist()


MAX_BOX_SELECTION = 5000  # runs a box on a density selects at most: the best of those inside it


def runs_in_box(
    trials: pd.DataFrame, x_metric: str, y_metric: str, box, objective: str | None, direction: str | None
) -> list[str]:
    """Every run inside a box drawn on the trade-off's density (not only the drawn points), the best on the
    objective first, at most ``MAX_BOX_SELECTION``."""
    cx, cy = f"metrics.{x_metric}", f"metrics.{y_metric}"
    if cx not in trials or cy not in trials:
        return []
    inside = np.flatnonzero(dense.in_box(trials[cx].to_numpy(dtype=float), trials[cy].to_numpy(dtype=float), box))
    col = f"metrics.{objective}"
    if col in trials:
        inside = inside[
            dense.best_positions(trials[col].to_numpy(dtype=float)[inside], direction or "max", len(inside))
        ]
    return [str(r) for r in trials["run_id"].to_numpy()[inside[:MAX_BOX_SELECTION]]]


def run_ids_from_selection(selection: dict | None) -> list[str]:
    """Run ids of the points a plotly box/lasso selection or click holds (customdata)."""
    if not selection:
        return []
    ids = [p.get("customdata") for p in selection.get("points", [])]
    return list(dict.fromkeys(str(i[0] if isinstance(i, list) else i) for i in ids if i is not None))


def selected_rows(
    runs: pd.DataFrame,
    run_ids: list[str],
    params: list[str],
    metrics: list[str],
    link,
    search_labels: dict[str, str] | None = None,
) -> tuple[list[dict], list[dict]]:
    """Rows and column specs for the selected-runs table; ``link(row)`` gives the MLflow UI URL.

    Every row names its search (as the picker does) and runs are named uniquely (``run_labels``).
    """
    if not run_ids:
        return [], []
    chosen = runs[runs["run_id"].isin(run_ids)]
    search_labels = search_labels or {}
    names = run_labels(chosen, search_labels)
    columns = [
        {"name": "run", "id": "run", "presentation": "markdown"},
        {"name": "search", "id": "search"},
        {"name": "status", "id": "status"},
    ]
    gpus = gpu_values(chosen)
    if gpus is not None:
        columns.append({"name": "GPU", "id": "gpu"})
    ranked = "pareto_rank" in chosen and chosen["pareto_rank"].notna().any()  # searches with several objectives
    if ranked:
        columns.append({"name": "Pareto rank", "id": "pareto_rank", "type": "numeric"})
    rows = []
    for i, (_, r) in enumerate(chosen.iterrows()):
        row = {
            "run_id": r["run_id"],
            "run": markdown_link(names[r["run_id"]], link(r)),
            "search": search_label(r, search_labels),
            "status": r["status"],
        }
        if gpus is not None:
            row["gpu"] = gpus[i]
        if ranked:
            rank = r.get("pareto_rank")
            row["pareto_rank"] = None if rank is None or pd.isna(rank) else int(rank)
        for m in metrics:
            v = r.get(f"metrics.{m}")
            row[m] = None if v is None or not np.isfinite(v) else round(float(v), 6)
        for p in params:
            v = r.get(f"params.{p}")
            row[p] = None if v is None or (isinstance(v, float) and np.isnan(v)) else short_number(v)
        rows.append(row)
    columns += [{"name": m, "id": m, "type": "numeric"} for m in metrics]
    columns += [{"name": p, "id": p} for p in params]
    return rows, columns


def export_runs(runs: pd.DataFrame, shown: list[str], selected: list[str] | None) -> pd.DataFrame:
    """The runs a CSV export holds: the selection when there is one (of the runs shown), else all shown."""
    chosen = [r for r in (selected or []) if r in set(shown)] or shown
    return export_frame(runs[runs["run_id"].isin(chosen)])


def export_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """The frame a CSV export holds: identity, lineage, params and metrics; no internal columns.

    Integer parameters are written as integers (``64``, not ``64.0``): those a search recorded as ``int``,
    and numbers without a fraction that no search recorded as ``float``.
    """
    drop = [c for c in runs if c == "trellis_config" or c.startswith("metrics." + INTERNAL_PREFIX)]
    out = runs.drop(columns=drop)
    recorded = recorded_spaces(runs)
    for col in [c for c in out if c.startswith("params.") and out[c].dtype.kind == "f"]:
        kind = recorded.get(col[len("params.") :], {}).get("type")
        values = out[col].dropna()
        if kind == "int" or (kind != "float" and len(values) and (values == values.round()).all()):
            out[col] = out[col].round().astype("Int64")
    for col in [c for c in out if out[c].dtype == object or str(out[c].dtype).startswith(("str", "string"))]:
        out[col] = out[col].map(spreadsheet_safe)
    return out


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """A text cell a spreadsheet would run as a formula (``=HYPERLINK(...)``, ``@SUM(...)``, ``+cmd|...``)
    gets a leading apostrophe, which shows it as text; a plain number written as text (``-0.5``) stays."""
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    try:
        float(value)
        return value
    except ValueError:
        return "'" + value
