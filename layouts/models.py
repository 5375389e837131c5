"""The model overview's figures and glyphs (pure builders over ``trellis.search.analysis.models.ModelsInfo``).

Overview: score against log parameters, darkness = score, radius = log parameters (REMAP), the Pareto front
as a step line, children of an ablation or variation as diamonds. Map: the architectures by structural
distance. Glyphs (REMAP's SNAC): one block per layer, its type by colour and letter, its width by the log of
the activation size after it.
"""

from __future__ import annotations

import math

import numpy as np
from dash import html

from trellis.layouts.style import COLORS, Figure, empty_figure, figure, typed
from trellis.search.analysis.model_inspection import InspectionInfo
from trellis.search.analysis.models import ModelsInfo, activation_sizes
from trellis.search.architectures.layers import Architecture

# Layer kind -> (colour, letter): distinguishable without colour too.
GLYPH_NAMES = {
    "conv": "conv",
    "pool": "max-pool",
    "dense": "dense",
    "dropout": "dropout",
    "bn": "batch-norm",
    "act": "activation",
}
GLYPH_STYLE = {
    "conv": ("#0072B2", "C"),
    "pool": ("#56B4E9", "P"),
    "dense": ("#E69F00", "D"),
    "dropout": ("#999999", "o"),
    "bn": ("#009E73", "B"),
    "act": ("#CC79A7", "a"),
}
SCALE = "Greys"


def _marker_sizes(n_params: np.ndarray) -> np.ndarray:
    logs = np.log10(np.where(np.isfinite(n_params) & (n_params > 0), n_params, 1.0))
    low, high = float(logs.min()), float(logs.max())
    return 7 + 11 * ((logs - low) / (high - low) if high > low else np.zeros_like(logs))


def hover_glyph(arch: Architecture) -> str:
    """The glyph as a hover card can draw it: one coloured block and letter per layer."""
    parts = []
    for layer in arch.layers:
        colour, letter = GLYPH_STYLE.get(layer.kind, ("#666666", "?"))
        parts.append(f"<span style='color:{colour}'>■{letter}</span>")
    return " ".join(parts) or "(head only)"


def _hover(info: ModelsInfo) -> list[str]:
    out = []
    for i, arch in enumerate(info.archs):
        size = info.n_params[i]
        line = (
            f"{hover_glyph(arch)}<br>{arch.describe()}<br>{info.objective} {info.score[i]:.4g} · {size:,.0f} parameters"
        )
        if info.origin_change[i]:
            line += f"<br>child of {info.origin_model[i][:8]}: {info.origin_change[i]}"
        out.append(line)
    return out


def _get_overview_plot(
    info: ModelsInfo, selected: str | None = None, colour: np.ndarray | None = None, colour_label: str = ""
) -> Figure:
    """Score vs parameters (log x), the Pareto front; ``selected`` ringed with its children. ``colour``: another
    value per model for the darkness (a class's accuracy), else the score."""
    colour = info.score if colour is None else colour
    colour_label = colour_label or info.objective
    # plotly.js' Greys runs from black (low) to white (high): reversed, the better models are the darker
    reverse = info.direction == "max" or colour is not info.score
    sized = np.isfinite(info.n_params)
    if not sized.any():
        return empty_figure("No model's size is known (log n_params, or record the architecture's input)")
    idx = np.flatnonzero(sized)
    child = np.array([bool(info.origin_model[i]) for i in idx])
    hover = _hover(info)
    data = []
    for is_child, name, symbol in ((False, "models", "circle"), (True, "children (ablation, variation)", "diamond")):
        part = idx[child == is_child]
        if not len(part):
            continue
        data.append(
            {
                "type": "scatter",
                "x": typed(info.n_params[part]),
                "y": typed(info.score[part]),
                "customdata": [info.run_ids[i] for i in part],
                "text": [hover[i] for i in part],
                "hovertemplate": "%{text}<extra></extra>",
                "mode": "markers",
                "name": name,
                "marker": {
                    "color": typed(colour[part]),
                    "colorscale": SCALE,
                    "reversescale": reverse,
                    "cmin": _finite_or(np.nanmin, colour[idx], 0.0),
                    "cmax": _finite_or(np.nanmax, colour[idx], 1.0),
                    "size": typed(_marker_sizes(info.n_params)[part]),
                    "symbol": symbol,
                    "line": {"width": 0.5, "color": "#444"},
                    "showscale": not is_child,
                    "colorbar": {"title": {"text": colour_label}, "thickness": 12},
                },
            }
        )
    front = np.flatnonzero(info.pareto)
    front = front[np.argsort(info.n_params[front])]
    if len(front):
        data.append(
            {
                "type": "scatter",
                "x": typed(info.n_params[front]),
                "y": typed(info.score[front]),
                "mode": "lines",
                "line": {"shape": "hv", "color": COLORS["front"], "width": 1.5},
                "name": "Pareto front",
                "hoverinfo": "skip",
            }
        )
    if selected in info.run_ids:
        data.extend(_selection_traces(info, selected, lambda i: (info.n_params[i], info.score[i])))
    return figure(
        data,
        height=440,
        xaxis={"title": {"text": "parameters (log)"}, "type": "log"},
        yaxis={"title": {"text": info.objective}},
        uirevision="models",
    )


def _finite_or(reduce, values: np.ndarray, default: float) -> float:
    finite = values[np.isfinite(values)]
    return float(reduce(finite)) if len(finite) else default


def _selection_traces(info: ModelsInfo, selected: str, at) -> list[dict]:
    i = info.run_ids.index(selected)
    x0, y0 = at(i)
    xs, ys = [], []
    for j, parent in enumerate(info.origin_model):
        if parent == selected:
            x1, y1 = at(j)
            xs += [x0, x1, None]
            ys += [y0, y1, None]
    traces = [
        {
            "type": "scatter",
            "x": [x0],
            "y": [y0],
            "mode": "markers",
            "marker": {"size": 22, "color": "rgba(0,0,0,0)", "line": {"width": 2, "color": COLORS["front"]}},
            "name": "selected",
            "hoverinfo": "skip",
        }
    ]
    if xs:
        traces.append(
            {
                "type": "scatter",
                "x": xs,
                "y": ys,
                "mode": "lines",
                "line": {"width": 1, "color": COLORS["front"], "dash": "dot"},
                "name": "its children",
                "hoverinfo": "skip",
            }
        )
    return traces


def _get_map_plot(
    info: ModelsInfo,
    selected: str | None = None,
    coords: np.ndarray | None = None,
    drawn: np.ndarray | None = None,
    axis: str = "structure",
) -> Figure:
    """The models in 2-D: by structural distance (``info.coords``) or by the ``coords`` given (prediction
    distance, only the ``drawn`` models); colour = score."""
    coords = info.coords if coords is None else coords
    drawn = np.ones(len(info.run_ids), dtype=bool) if drawn is None else drawn
    if drawn.sum() < 2:
        return empty_figure(
            "The map needs two models or more"
            + ("" if axis == "structure" else " with held-out predictions (artifact trial/predictions.json)")
        )
    hover = _hover(info)
    keep = np.flatnonzero(drawn)
    data = [
        {
            "type": "scatter",
            "x": typed(coords[keep, 0]),
            "y": typed(coords[keep, 1]),
            "customdata": [info.run_ids[i] for i in keep],
            "text": [hover[i] for i in keep],
            "hovertemplate": "%{text}<extra></extra>",
            "mode": "markers",
            "name": "models",
            "marker": {
                "color": typed(info.score[keep]),
                "colorscale": SCALE,
                "reversescale": info.direction == "max",  # darker = better, as on the overview
                "size": typed(_marker_sizes(info.n_params)[keep]),
                "symbol": ["diamond" if info.origin_model[i] else "circle" for i in keep],
                "line": {"width": 0.5, "color": "#444"},
            },
        }
    ]
    if selected in info.run_ids and drawn[info.run_ids.index(selected)]:
        shown = set(keep)
        sub = info._replace(origin_model=[o if i in shown else "" for i, o in enumerate(info.origin_model)])
        data.extend(_selection_traces(sub, selected, lambda i: (coords[i, 0], coords[i, 1])))
    return figure(
        data,
        height=440,
        showlegend=False,
        xaxis={"title": {"text": f"{axis} 1"}, "zeroline": False},
        yaxis={"title": {"text": f"{axis} 2"}, "zeroline": False},
        uirevision="models",
    )


def glyph(arch: Architecture, input_shape: tuple[int, ...] | None, id_: str | None = None) -> html.Span:
    """One coloured block per layer, lettered by type, as wide as the log of its activation size."""
    sizes = activation_sizes(arch, input_shape)
    blocks = []
    for layer, size in zip(arch.layers, sizes, strict=True):
        colour, letter = GLYPH_STYLE.get(layer.kind, ("#666666", "?"))
        width = 8 + (3 * math.log2(size) if size else 8)
        blocks.append(
            html.Span(
                letter,
                title=f"{layer.describe()}" + (f" → {size:,} values" if size else ""),
                className="trellis-glyph-block",
                style={"background": colour, "width": f"{width:.0f}px"},
            )
        )
    if not blocks:
        blocks.append(html.Span("head only", className="small text-muted"))
    return html.Span(blocks, className="trellis-glyph", **({"id": id_} if id_ else {}))


def glyph_legend() -> html.Div:
    return html.Div(
        [
            html.Span(
                [
                    html.Span(letter, className="trellis-glyph-block", style={"background": colour}),
                    f" {GLYPH_NAMES[kind]} ",
                ],
                className="me-2",
            )
            for kind, (colour, letter) in GLYPH_STYLE.items()
        ],
        className="small text-muted",
    )


def _get_confusion_plot(info: InspectionInfo) -> Figure:
    """Rows: the true class; columns: the predicted one; each cell the share of its row."""
    support = info.confusion.sum(axis=1, keepdims=True)
    share = np.divide(info.confusion, support, out=np.zeros(info.confusion.shape), where=support > 0)
    labels = [str(c) for c in info.classes]
    return figure(
        [
            {
                "type": "heatmap",
                "z": share.round(3).tolist(),
                "x": labels,
                "y": labels,
                "customdata": info.confusion.tolist(),
                "colorscale": "Blues",
                "reversescale": True,  # plotly.js' Blues is dark at 0: reversed, a larger share is darker
                "zmin": 0,
                "zmax": 1,
                "hovertemplate": "true %{y} → predicted %{x}: %{customdata} (%{z:.0%})<extra></extra>",
                "colorbar": {"thickness": 10},
            }
        ],
        height=320,
        xaxis={"title": {"text": "predicted"}, "type": "category"},
        yaxis={"title": {"text": "true class"}, "type": "category", "autorange": "reversed"},
    )


def _get_class_accuracy_plot(info: InspectionInfo) -> Figure:
    return figure(
        [
            {
                "type": "bar",
                "x": [str(c) for c in info.classes],
                "y": typed(np.nan_to_num(info.per_class, nan=0.0)),
                "marker": {"color": COLORS["front"]},
                "hovertemplate": "class %{x}: %{y:.1%}<extra></extra>",
            }
        ],
        height=320,
        xaxis={"title": {"text": "class"}, "type": "category"},
        yaxis={"title": {"text": "accuracy on the class"}, "range": [0, 1]},
    )
