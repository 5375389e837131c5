"""Learning curves of selected runs: pure ``curves_info`` and the ``curves_plot`` figure."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from trellis.layouts.labels import run_labels
from trellis.layouts.style import Figure, empty_figure, figure, search_colors, typed


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over ``window`` points (NaN-aware: a NaN does not poison its neighbours)."""
    if window <= 1 or len(values) == 0:
        return values
    s = pd.Series(values)
    return s.rolling(window, min_periods=1).mean().to_numpy()


class Curve(NamedTuple):
    run_id: str
    label: str
    search_id: str
    x: list[float]
    y: list[float]


class CurvesInfo(NamedTuple):
    metrics: list[str]
    curves: dict[str, list[Curve]]  # metric -> curves
    x_axis: str  # "step" | "time"
    log_y: bool
    dropped: int  # non-finite points left out


def curves_info(
    histories: pd.DataFrame,
    runs: pd.DataFrame,
    metrics: list[str],
    x_axis: str = "step",
    window: int = 1,
    log_y: bool = False,
    search_labels: dict[str, str] | None = None,
) -> CurvesInfo:
    """One curve per (metric, run), named uniquely (``run_labels``). ``x_axis='time'``: seconds since start."""
    meta = runs.set_index("run_id") if len(runs) else runs
    names = run_labels(runs, search_labels or {})
    curves: dict[str, list[Curve]] = {m: [] for m in metrics}
    dropped = 0
    if histories.empty:
        return CurvesInfo(metrics, curves, x_axis, log_y, 0)
    for (run_id, key), group in histories.groupby(["run_id", "key"], sort=True):
        if key not in curves:
            continue
        group = group.sort_values(["step", "timestamp"], kind="stable")
        y = group["value"].to_numpy(dtype=float)
        finite = np.isfinite(y) & ((y > 0) if log_y else True)
        dropped += int((~finite).sum())
        if x_axis == "time":
            start = meta.loc[run_id, "start_time"].value / 1e6 if run_id in meta.index else group["timestamp"].min()
            x = (group["timestamp"].to_numpy(dtype=float) - start) / 1000.0
        else:
            x = group["step"].to_numpy(dtype=float)
        y = smooth(np.where(finite, y, np.nan), window)
        label = names.get(run_id, run_id[:8])
        search = str(meta.loc[run_id, "search_id"]) if run_id in meta.index else ""
        keep = ~np.isnan(y)
        curves[key].append(Curve(run_id, label, search, x[keep].tolist(), y[keep].tolist()))
    return CurvesInfo(metrics, curves, x_axis, log_y, dropped)


def curves_plot(info: CurvesInfo) -> Figure:
    """One panel per metric, stacked, sharing x; runs coloured by their search."""
    shown = [m for m in info.metrics if info.curves.get(m)]
    if not shown:
        return empty_figure("Select runs on the overview (box-select the trade-off plot, or Top-K) to see their curves")
    searches = sorted({c.search_id for m in shown for c in info.curves[m]})
    colors = search_colors(searches)
    n, gap = len(shown), 0.08
    height = (1 - gap * (n - 1)) / n
    data, layout = [], {}
    for row, metric in enumerate(shown):
        axis = "" if row == 0 else str(row + 1)
        top = 1 - row * (height + gap)
        layout[f"yaxis{axis}"] = {
            "domain": [top - height, top],
            "title": {"text": metric},
            "type": "log" if info.log_y else "linear",
            "anchor": f"x{axis}",
        }
        layout[f"xaxis{axis}"] = {"anchor": f"y{axis}", "matches": "x" if row else None, "showticklabels": row == n - 1}
        for curve in info.curves[metric]:
            data.append(
                {
                    "type": "scattergl",
                    "x": typed(curve.x),
                    "y": typed(curve.y),
                    "mode": "lines",
                    "name": curve.label,
                    "legendgroup": curve.run_id,
                    "showlegend": row == 0,
                    "xaxis": f"x{axis}",
                    "yaxis": f"y{axis}",
                    "line": {"color": colors.get(curve.search_id), "width": 1.6},
                    "hovertemplate": f"{curve.label}<br>%{{x}}: %{{y:.4g}}<extra>{metric}</extra>",
                }
            )
    last = "" if n == 1 else str(n)
    layout[f"xaxis{last}"]["title"] = {"text": "seconds since start" if info.x_axis == "time" else "step"}
    fig = figure(data, height=max(320, 260 * n), legend={"orientation": "v", "y": 1, "x": 1.02})
    for key, value in layout.items():
        fig["layout"][key] = {**fig["layout"].get(key, {}), **{k: v for k, v in value.items() if v is not None}}
    return fig
