"""The exploration page's figures (HyperTendril's exploration overview), built from ``PageInfo``.

Plain plotly.js dicts, WebGL point traces, arrays as 32-bit typed arrays. Per subplot a fixed handful of
traces, whatever the number of trials: the evaluations (one trace; size and colour arrays), the rung paths
(one dashed path, NaN between trials), the PBT exploit curves (one solid path) and an empty highlight trace
the page's clientside hover callback fills. Every point trace carries ``meta = {"col": search column, "role":
"eval"}`` and ``customdata`` = the trial's position in its search's sampling order; ``layout.meta.parents``
holds each column's PBT parent positions, so the browser can follow a lineage without asking the server.

Over 400 lines: one figure, the overview grid, whose trace builders share its subplot layout.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from trellis.layouts.style import Figure, empty_figure, figure
from trellis.search.analysis.exploration_info import ExplorationInfo, PageInfo
from trellis.search.registry import BRACKETED, POPULATION

SCALE = "Viridis"
REASON_COLORS = {
    "completed": "#009E73",
    "early_stopped": "#E69F00",
    "pruned": "#CC79A7",
    "exploited": "#0072B2",
    "failed": "#D55E00",
    "killed": "#7F7F7F",
    "running": "#56B4E9",
}
MAX_GROUP_BANDS = 60  # bracket runs shaded per column; more would be noise
CURVE_POINTS = 9  # points per exploit curve
MONITOR_BINS = 400
SVG_POINTS = 1500  # point traces up to this size are SVG (crisp, hover everywhere); larger ones WebGL


def point_type(n: int) -> str:
    return "scatter" if n <= SVG_POINTS else "scattergl"


def typed32(values: Any, dtype: str = "f4") -> dict:
    """An array as plotly.js' typed-array spec, 32-bit (half of ``style.typed``'s bytes; a hyperparameter or a
    score needs no more digits on screen). NaN stays NaN: a gap in a path."""
    np_type = {"f4": "<f4", "i4": "<i4", "u1": "u1"}[dtype]
    arr = np.asarray(values, dtype=float if dtype == "f4" else None).astype(np_type)
    return {"dtype": dtype, "bdata": base64.b64encode(arr.tobytes()).decode("ascii")}


def decode32(spec: Any) -> np.ndarray:
    """The inverse of ``typed32`` (for tests and checks)."""
    if isinstance(spec, dict) and "bdata" in spec:
        np_type = {"f4": "<f4", "i4": "<i4", "u1": "u1"}[spec["dtype"]]
        return np.frombuffer(base64.b64decode(spec["bdata"]), dtype=np_type)
    return np.asarray(spec)


def colour_axis(info: PageInfo, score_range: list[float] | None) -> dict:
    """Marker colour settings every scored trace shares: the user's range, darker = better."""
    lo, hi = score_range if score_range else (info.score_range or (0.0, 1.0))
    direction = info.searches[0].direction if info.searches else "max"
    return {"colorscale": SCALE, "reversescale": direction == "max", "cmin": lo, "cmax": hi}


def _axis_name(kind: str, k: int) -> str:
    return f"{kind}{'' if k == 1 else k}"


def _grid(rows: int, cols: int, gap_x: float = 0.05, gap_y: float = 0.04) -> dict[tuple[int, int], dict]:
    """Subplot (row, col) -> x/y axis ids and domains, row 0 on top."""
    w = (1 - gap_x * (cols - 1)) / cols
    h = (1 - gap_y * (rows - 1)) / max(rows, 1)
    out = {}
    for r in range(rows):
        for c in range(cols):
            k = r * cols + c + 1
            top = 1 - r * (h + gap_y)
            out[(r, c)] = {
                "k": k,
                "x": _axis_name("x", k),
                "y": _axis_name("y", k),
                "xdomain": [c * (w + gap_x), c * (w + gap_x) + w],
                "ydomain": [max(top - h, 0.0), top],
            }
    return out


def _apply_axes(fig: Figure, cells: dict, x_titles: dict, y_titles: dict, extra_y: dict | None = None) -> None:
    for (r, c), cell in cells.items():
        xa, ya = "xaxis" + cell["x"][1:], "yaxis" + cell["y"][1:]
        fig["layout"][xa] = {
            "domain": cell["xdomain"],
            "anchor": cell["y"],
            "title": {"text": x_titles.get((r, c), "")},
            "gridcolor": "#EBEBEB",
            "zeroline": False,
            # A column's rows share its top row's x range: a generation or a trial sits at one x in every row.
            **({"matches": cells[(0, c)]["x"]} if r > 0 else {}),
        }
        fig["layout"][ya] = {
            "domain": cell["ydomain"],
            "anchor": cell["x"],
            "title": {"text": y_titles.get((r, c), ""), "font": {"size": 11}},
            "gridcolor": "#EBEBEB",
            "zeroline": False,
            **((extra_y or {}).get((r, c), {})),
        }


# -- performance monitor ----------------------------------------------------------------------------------


def _get_monitor_plot(info: PageInfo, score_range: list[float] | None = None) -> Figure:
    """Running best by sampling order, per search: an area coloured by the best value so far (a one-row
    heatmap under a white mask above the curve: constant size whatever the number of trials)."""
    if not info.searches or info.score_range is None:
        return empty_figure("No finished trials with this objective yet")
    colours = colour_axis(info, score_range)
    cells = _grid(1, len(info.searches))
    data: list[dict] = []
    lo, hi = info.score_range
    pad = (hi - lo) * 0.05 or 1.0
    for c, search in enumerate(info.searches):
        cell = cells[(0, c)]
        best = search.best
        x = np.arange(len(best), dtype=float)
        known = np.flatnonzero(np.isfinite(best))
        if not len(known):
            continue
        x, best = x[known[0] :], best[known[0] :]  # from the first completed trial on
        if len(best) > MONITOR_BINS:  # the running best at each bin's end
            ends = np.linspace(0, len(best) - 1, MONITOR_BINS).round().astype(int)
            x, best = x[ends], best[ends]
        edges = np.r_[x[0] - 0.5, (x[:-1] + x[1:]) / 2, x[-1] + 0.5]
        # better is up: for a minimised objective the axis is reversed and the mask covers the lower values
        top = hi + pad if search.direction == "max" else lo - pad
        axes = {"xaxis": cell["x"], "yaxis": cell["y"]}
        data.append(
            {
                "type": "heatmap",
                "x": typed32(edges),
                "y": [lo - pad, hi + pad],
                "z": [[float(b) for b in best]] * 2,
                "zmin": colours["cmin"],
                "zmax": colours["cmax"],
                "colorscale": SCALE,
                "reversescale": colours["reversescale"],
                "showscale": c == 0,
                "colorbar": {"title": {"text": search.objective}, "len": 0.9},
                "hoverinfo": "skip",
                "meta": {"col": c, "role": "area"},
                **axes,
            }
        )
        data.append(
            {
                "type": "scatter",
                "x": typed32(edges),
                "y": typed32(np.full(len(edges), top)),
                "mode": "lines",
                "line": {"width": 0, "shape": "hv"},
                "hoverinfo": "skip",
                "showlegend": False,
                **axes,
            }
        )
        data.append(
            {
                "type": "scatter",
                "x": typed32(edges),
                "y": typed32(np.r_[best, best[-1]]),
                "mode": "lines",
                "fill": "tonexty",
                "fillcolor": "white",
                "line": {"color": "#333", "width": 1.5, "shape": "hv"},
                "name": f"best so far · {search.label}",
                "hovertemplate": "from trial %{x:.0f}: best %{y:.4g}<extra></extra>",
                "showlegend": False,
                **axes,
            }
        )
    fig = figure(data, height=220, margin={"l": 60, "r": 20, "t": 30, "b": 40})
    titles = {(0, c): f"sampling order · {s.label}" for c, s in enumerate(info.searches)}
    extra = {
        (0, c): {"range": [lo - pad, hi + pad] if s.direction == "max" else [hi + pad, lo - pad]}
        for c, s in enumerate(info.searches)
    }
    _apply_axes(fig, cells, titles, {(0, 0): f"best {info.searches[0].objective}"}, extra)
    return fig


# -- exploration history ----------------------------------------------------------------------------------


def _curves(x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray, log: bool) -> tuple[np.ndarray, ...]:
    """Quadratic Bézier curves parent -> child (bulging up), as one path with NaN between curves."""
    if len(x0) == 0:
        return np.zeros(0), np.zeros(0)
    t = np.linspace(0, 1, CURVE_POINTS)[None, :]
    f = np.log10 if log else (lambda v: v)
    ya, yb = f(y0)[:, None], f(y1)[:, None]
    cx, cy = (x0 + x1)[:, None] / 2, np.maximum(ya, yb) + np.abs(yb - ya) * 0.3 + 0.0
    xs = (1 - t) ** 2 * x0[:, None] + 2 * (1 - t) * t * cx + t**2 * x1[:, None]
    ys = (1 - t) ** 2 * ya + 2 * (1 - t) * t * cy + t**2 * yb
    if log:
        ys = 10**ys
    nan = np.full((len(x0), 1), np.nan)
    return np.hstack([xs, nan]).ravel(), np.hstack([ys, nan]).ravel()


def _paths(frame_x: np.ndarray, frame_y: np.ndarray, trial: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each trial's points joined in x order, a NaN between trials (only trials with 2+ points)."""
    if len(trial) == 0:
        return np.zeros(0), np.zeros(0)
    order = np.lexsort((frame_x, trial))
    t, x, y = trial[order], frame_x[order], frame_y[order]
    counts = np.bincount(t)
    keep = counts[t] > 1
    t, x, y = t[keep], x[keep], y[keep]
    if len(t) == 0:
        return np.zeros(0), np.zeros(0)
    breaks = np.flatnonzero(np.diff(t)) + 1
    xs = np.insert(x.astype(float), breaks, np.nan)
    ys = np.insert(y.astype(float), breaks, np.nan)
    return xs, ys


def _history_traces(search: ExplorationInfo, c: int, r: int, axis, cell: dict, colours: dict) -> list[dict]:
    ev = search.evaluations.frame
    trial = ev["trial"].to_numpy()
    x = ev["x"].to_numpy(dtype=float)
    raw = axis.values[trial] if len(trial) else np.zeros(0)
    active = np.isfinite(raw)
    y = axis.eval_y
    axes = {"xaxis": cell["x"], "yaxis": cell["y"]}
    final = ev["final"].to_numpy(dtype=bool)
    size = np.where(final, 7, 4)[active]
    value_fmt = "%{y:.4g}" if not axis.choices else "%{text}"
    traces = []
    lines_x, lines_y = _paths(x[active], y[active], trial[active])
    if len(lines_x):
        traces.append(
            {
                "type": "scattergl",
                "x": typed32(lines_x),
                "y": typed32(lines_y),
                "mode": "lines",
                "line": {"color": "rgba(90,90,90,0.55)", "width": 1, "dash": "dash"},
                "hoverinfo": "skip",
                "showlegend": False,
                "meta": {"col": c, "role": "rungs", "param": axis.name},
                **axes,
            }
        )
    edges = search.lineage.edges
    if len(edges):
        last_x = ev.groupby("trial")["x"].max()
        first_x = ev.groupby("trial")["x"].min()
        parent, child = edges["parent"].to_numpy(), edges["child"].to_numpy()
        ok = np.isin(parent, last_x.index) & np.isin(child, first_x.index)
        ok &= np.isfinite(axis.values[parent]) & np.isfinite(axis.values[child])
        parent, child = parent[ok], child[ok]
        px = np.minimum(last_x.reindex(parent).to_numpy(float), first_x.reindex(child).to_numpy(float) - 1)
        cx_, cy_ = _curves(
            px, axis.values[parent], first_x.reindex(child).to_numpy(float), axis.values[child], axis.log
        )
        if len(cx_):
            traces.append(
                {
                    "type": "scattergl",
                    "x": typed32(cx_),
                    "y": typed32(cy_),
                    "mode": "lines",
                    "line": {"color": "rgba(0,114,178,0.8)", "width": 1.3},
                    "hoverinfo": "skip",
                    "showlegend": False,
                    "meta": {"col": c, "role": "lineage", "param": axis.name},
                    **axes,
                }
            )
    text = {}
    if axis.choices:
        labels = np.array(axis.choices, dtype=object)
        text = {"text": labels[raw[active].astype(int)].tolist()} if active.sum() <= 3000 else {}
        value_fmt = "%{text}" if text else "category"
    traces.append(
        {
            "type": point_type(int(active.sum())),
            "x": typed32(x[active]),
            "y": typed32(y[active]),
            "customdata": typed32(trial[active], "i4"),
            "mode": "markers",
            "marker": {
                "size": typed32(size, "u1"),
                "color": typed32(ev["value"].to_numpy(dtype=float)[active]),
                "line": {"width": 0},
                **colours,
            },
            "hovertemplate": f"#%{{customdata}} · {axis.name} {value_fmt}<br>iteration %{{x}} · "
            f"{search.objective} %{{marker.color:.4g}}<extra>{search.label}</extra>",
            "showlegend": False,
            "meta": {"col": c, "role": "eval", "param": axis.name},
            **text,
            **axes,
        }
    )
    traces.append(
        {
            "type": "scattergl",
            "x": [],
            "y": [],
            "mode": "lines+markers",
            "line": {"color": "#D55E00", "width": 2.5},
            "marker": {"size": 10, "color": "rgba(0,0,0,0)", "line": {"color": "#D55E00", "width": 2}},
            "hoverinfo": "skip",
            "showlegend": False,
            "meta": {"col": c, "role": "highlight", "param": axis.name},
            **axes,
        }
    )
    return traces


def _get_history_plot(info: PageInfo, score_range: list[float] | None = None) -> Figure:
    """One small plot per hyperparameter (rows) and search (columns): x the iteration, y the value."""
    if not info.searches or not info.params:
        return empty_figure("No hyperparameters recorded in these runs")
    rows, cols = len(info.params), len(info.searches)
    cells = _grid(rows, cols, gap_y=0.25 / max(rows, 1))
    colours = colour_axis(info, score_range)
    data: list[dict] = []
    extra_y, y_titles, x_titles = {}, {}, {}
    shapes, notes = [], []
    for c, search in enumerate(info.searches):
        by_name = {a.name: a for a in search.params}
        for r, name in enumerate(info.params):
            cell = cells[(r, c)]
            axis = by_name.get(name)
            if c == 0:
                y_titles[(r, c)] = name
            if axis is None:
                continue
            data += _history_traces(search, c, r, axis, cell, colours)
            if axis.log:
                extra_y[(r, c)] = {"type": "log"}
            elif axis.choices:
                extra_y[(r, c)] = {
                    "tickvals": list(range(len(axis.choices))),
                    "ticktext": [t if len(t) <= 14 else t[:13] + "…" for t in axis.choices],
                    "range": [-0.6, len(axis.choices) - 0.4],
                }
        x_titles[(rows - 1, c)] = {BRACKETED: "iteration (rung of a bracket)", POPULATION: "generation"}.get(
            search.kind, "sampling order"
        )
        s, n = _group_marks(search, cells[(0, c)], cells[(rows - 1, c)])
        shapes += s
        notes += n
    bar = next(t for t in data if t["meta"]["role"] == "eval")
    bar["marker"]["showscale"] = True
    bar["marker"]["colorbar"] = {"title": {"text": info.searches[0].objective}, "len": 0.5, "y": 1, "yanchor": "top"}
    fig = figure(data, height=max(260, 150 * rows + 80), margin={"l": 70, "r": 20, "t": 40, "b": 50})
    _apply_axes(fig, cells, x_titles, y_titles, extra_y)
    fig["layout"]["shapes"] = shapes
    fig["layout"]["annotations"] = notes
    fig["layout"]["meta"] = {"parents": [s.lineage.parent_of.tolist() for s in info.searches]}
    fig["layout"]["dragmode"] = "zoom"
    return fig


def _group_marks(search: ExplorationInfo, top: dict, bottom: dict) -> tuple[list[dict], list[dict]]:
    """Brackets (bandit) or generations (PBT) as alternating bands behind a column, named on top."""
    rounds = search.evaluations.rounds
    if rounds.empty:
        return [], []
    groups = rounds.groupby(["group_start", "group"], sort=True)["x"].agg(["min", "max"]).reset_index()
    if len(groups) > MAX_GROUP_BANDS:
        return [], []
    shapes, notes = [], []
    y0, y1 = bottom["ydomain"][0], top["ydomain"][1]
    for i, row in enumerate(groups.itertuples(index=False)):
        if i % 2 == 0:
            shapes.append(
                {
                    "type": "rect",
                    "xref": top["x"],
                    "yref": "paper",
                    "x0": row.min - 0.5,
                    "x1": row.max + 0.5,
                    "y0": y0,
                    "y1": y1,
                    "fillcolor": "rgba(0,0,0,0.045)",
                    "line": {"width": 0},
                    "layer": "below",
                }
            )
        if len(groups) <= 24:
            notes.append(
                {
                    "text": row.group.replace("generation ", "gen ").replace("bracket ", "s="),
                    "xref": top["x"],
                    "yref": "paper",
                    "x": (row.min + row.max) / 2,
                    "y": y1,
                    "yanchor": "bottom",
                    "showarrow": False,
                    "font": {"size": 10, "color": "#555"},
                }
            )
    return shapes, notes
