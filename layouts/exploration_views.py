"""The exploration page's other figures: training durations, hierarchy, 2-D projection, rung correlation."""

from __future__ import annotations

import numpy as np

from trellis.layouts.exploration import REASON_COLORS, _apply_axes, _grid, colour_axis, point_type, typed32
from trellis.layouts.style import Figure, empty_figure, figure, search_colors
from trellis.search.analysis.exploration_info import PageInfo

SYMBOLS = ["circle", "square", "diamond", "triangle-up", "x", "cross"]


def _get_durations_plot(info: PageInfo) -> Figure:
    """The last step each trial reached (a stem per trial), coloured by why it ended; one column per search."""
    if not info.searches:
        return empty_figure("No trials")
    cells = _grid(1, len(info.searches))
    data, seen = [], set()
    for c, search in enumerate(info.searches):
        ends = search.ends.frame
        axes = {"xaxis": cells[(0, c)]["x"], "yaxis": cells[(0, c)]["y"]}
        labels, which = np.unique(ends["label"].to_numpy(dtype=str), return_inverse=True)
        reasons = ends["reason"].to_numpy(dtype=str)
        stopped = ends["stopped_at"].to_numpy(dtype=float)
        trials, steps = ends["trial"].to_numpy(dtype=float), ends["last_step"].to_numpy(dtype=float)
        for k, label in enumerate(labels):
            pick = which == k
            reason = str(reasons[pick][0])
            colour = REASON_COLORS.get(reason, "#999999")
            at = stopped[pick][0]
            if reason in ("pruned", "early_stopped") and np.isfinite(at):
                deepest = np.nanmax(stopped[reasons == reason]) or 1.0  # lighter for earlier rungs
                colour = _with_alpha(colour, 0.45 + 0.55 * float(at) / deepest)
            x, y = trials[pick], steps[pick]
            stems_x = np.column_stack([x, x, np.full(len(x), np.nan)]).ravel()
            stems_y = np.column_stack([np.zeros(len(y)), y, np.full(len(y), np.nan)]).ravel()
            label = str(label)
            legend = label not in seen
            seen.add(label)
            data.append(
                {
                    "type": "scattergl",
                    "x": typed32(stems_x),
                    "y": typed32(stems_y),
                    "mode": "lines",
                    "line": {"color": colour, "width": 1},
                    "legendgroup": label,
                    "showlegend": False,
                    "hoverinfo": "skip",
                    **axes,
                }
            )
            data.append(
                {
                    "type": point_type(len(x)),
                    "x": typed32(x),
                    "y": typed32(y),
                    "customdata": typed32(x, "i4"),
                    "mode": "markers",
                    "marker": {"color": colour, "size": 5},
                    "name": label,
                    "legendgroup": label,
                    "showlegend": legend,
                    "hovertemplate": f"#%{{customdata}}: {label}, last step %{{y}}<extra>{search.label}</extra>",
                    "meta": {"col": c, "role": "eval"},
                    **axes,
                }
            )
    fig = figure(data, height=300, legend={"orientation": "h", "y": -0.3})
    titles = {(0, c): f"sampling order · {s.label}" for c, s in enumerate(info.searches)}
    _apply_axes(fig, cells, titles, {(0, 0): "last step reached"})
    return fig


def _with_alpha(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha:.2f})"


def _get_hierarchy_plot(info: PageInfo, score_range: list[float] | None = None) -> Figure:
    """PBT's family tree and Hyperband's brackets and rungs, as an icicle (one root per search)."""
    trees = [s.hierarchy for s in info.searches if len(s.hierarchy.ids) > 1]
    if not trees:
        notes = {s.hierarchy.note for s in info.searches if s.hierarchy.note}
        return empty_figure("; ".join(sorted(notes)) or "No hierarchy")
    ids, labels, parents, values, scores = [], [], [], [], []
    for tree in trees:
        ids += tree.ids
        labels += tree.labels
        parents += tree.parents
        values += tree.values
        scores += tree.scores
    colours = colour_axis(info, score_range)
    node_colours = [None if not np.isfinite(s) else s for s in scores]
    trace = {
        "type": "icicle",
        "ids": ids,
        "labels": labels,
        "parents": parents,
        "values": values,
        "branchvalues": "total",
        "maxdepth": 6,
        "tiling": {"orientation": "v"},
        "hovertemplate": "%{label}<br>%{value} trials in this branch<extra></extra>",
        "root": {"color": "#f3f3f3"},
    }
    if any(c is not None for c in node_colours):
        trace["marker"] = {"colors": node_colours, **colours}
    fig = figure([trace], height=420, margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return fig


def _get_projection_plot(info: PageInfo, score_range: list[float] | None = None) -> Figure:
    """The configurations in 2-D (MDS, or PCA for many), coloured by score, a marker symbol per search."""
    projection = info.projection
    if not projection.method and not len(projection.x):
        return empty_figure(projection.note or "Nothing to project")
    colours = colour_axis(info, score_range)
    data, start = [], 0
    for c, search in enumerate(info.searches):
        n = len(search.order.run_ids)
        part = slice(start, start + n)
        start += n
        data.append(
            {
                "type": point_type(n),
                "x": typed32(projection.x[part]),
                "y": typed32(projection.y[part]),
                "customdata": typed32(np.arange(n), "i4"),
                "mode": "markers",
                "marker": {
                    "color": typed32(search.finals),
                    "symbol": SYMBOLS[c % len(SYMBOLS)],
                    "size": 6,
                    "line": {"width": 0},
                    "showscale": c == 0,
                    "colorbar": {"title": {"text": search.objective}},
                    **colours,
                },
                "name": search.label,
                "hovertemplate": f"#%{{customdata}} · {search.objective} %{{marker.color:.4g}}"
                f"<extra>{search.label}</extra>",
                "meta": {"col": c, "role": "eval"},
            }
        )
    method = projection.method or "values"
    fig = figure(
        data,
        height=420,
        xaxis={"title": {"text": f"{method} 1"}, "zeroline": False},
        yaxis={"title": {"text": f"{method} 2"}, "zeroline": False},
        legend={"orientation": "h", "y": -0.15},
    )
    return fig


def _get_correlation_plot(info: PageInfo) -> Figure:
    """Spearman's rho between the objective at each rung (or stopping step) and at the final step."""
    rows = [(s, s.correlation) for s in info.searches if len(s.correlation.frame)]
    if not rows:
        return empty_figure("No intermediate steps to correlate with the final objective")
    colours = search_colors([s.search_id for s, _ in rows])
    # the categories in budget order across every search (plotly would order them as first met, trace by trace)
    steps: dict[str, float] = {}
    for _, corr in rows:
        for label, step in zip(corr.frame["label"], corr.frame["step"], strict=True):
            steps[str(label)] = min(float(step), steps.get(str(label), float("inf")))
    order = sorted(steps, key=lambda label: (steps[label], label))
    data = []
    for search, corr in rows:
        frame = corr.frame
        rho = frame["rho"].to_numpy(dtype=float)
        data.append(
            {
                "type": "bar",
                "x": [f"{label}" for label in frame["label"]],
                "y": [None if not np.isfinite(v) else round(float(v), 4) for v in rho],
                "text": [f"n={n}" for n in frame["n"]],
                "textposition": "outside",
                "name": f"{search.label} (final: step {corr.final_step})",
                "marker": {"color": colours[search.search_id]},
                "hovertemplate": "%{x}: rho %{y:.2f}, %{text} trials<extra>" + search.label + "</extra>",
            }
        )
    return figure(
        data,
        height=320,
        barmode="group",
        yaxis={"title": {"text": "Spearman rho with the final value"}, "range": [-1.1, 1.2]},
        xaxis={"title": {"text": "rung or stopping step"}, "categoryorder": "array", "categoryarray": order},
        legend={"orientation": "h", "y": -0.35},
    )
