"""The model overview's figures and glyphs (pure builders over ``search.analysis.models.ModelsInfo``).

Overview: score against log parameters, darkness = score, radius = log parameters (REMAP), the Pareto front
as a step line, children of an ablation or variation as diamonds. Map: the architectures by structural
distance. Glyphs (REMAP's SNAC): one block per layer, its type by colour and letter, its width by the log of
the activation size after it.
"""

from __future__ import annotations

import math

import numpy as np
from dash import html

from layouts.style import COLORS, Figure, empty_figure, figure, typed
from search.analysis.models import ModelsInfo, activation_sizes
from search.architectures.layers import Architecture

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


def _hover(info: ModelsInfo) -> list[str]:
    out = []
    for i, arch in enumerate(info.archs):
        size = info.n_params[i]
        line = f"{arch.describe()}<br>{info.objective} {info.score[i]:.4g} · {size:,.0f} parameters"
        if info.origin_change[i]:
            line += f"<br>child of {info.origin_model[i][:8]}: {info.origin_change[i]}"
        out.append(line)
    return out


def _get_overview_plot(info: ModelsInfo, selected: str | None = None) -> Figure:
    """Score vs parameters (log x), the Pareto front; ``selected`` ringed with its children."""
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
                    "color": typed(info.score[part]),
                    "colorscale": SCALE,
                    "reversescale": info.direction == "min",
                    "cmin": float(np.nanmin(info.score[idx])),
                    "cmax": float(np.nanmax(info.score[idx])),
                    "size": typed(_marker_sizes(info.n_params)[part]),
                    "symbol": symbol,
                    "line": {"width": 0.5, "color": "#444"},
                    "showscale": not is_child,
                    "colorbar": {"title": {"text": info.objective}, "thickness": 12},
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


def _get_map_plot(info: ModelsInfo, selected: str | None = None) -> Figure:
    """The architectures by structural distance (MDS); colour = score."""
    if len(info.run_ids) < 2:
        return empty_figure("The map needs two models or more")
    hover = _hover(info)
    data = [
        {
            "type": "scatter",
            "x": typed(info.coords[:, 0]),
            "y": typed(info.coords[:, 1]),
            "customdata": info.run_ids,
            "text": hover,
            "hovertemplate": "%{text}<extra></extra>",
            "mode": "markers",
            "name": "models",
            "marker": {
                "color": typed(info.score),
                "colorscale": SCALE,
                "reversescale": info.direction == "min",
                "size": typed(_marker_sizes(info.n_params)),
                "symbol": ["diamond" if o else "circle" for o in info.origin_model],
                "line": {"width": 0.5, "color": "#444"},
            },
        }
    ]
    if selected in info.run_ids:
        data.extend(_selection_traces(info, selected, lambda i: (info.coords[i, 0], info.coords[i, 1])))
    return figure(
        data,
        height=440,
        showlegend=False,
        xaxis={"title": {"text": "structure 1"}, "zeroline": False},
        yaxis={"title": {"text": "structure 2"}, "zeroline": False},
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
