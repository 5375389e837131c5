"""The selection as every page shows it: scoped to the runs in view, and highlighted on the plots."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
import pandas as pd

from trellis.layouts.style import typed

SELECTED = "#D55E00"  # the Pareto front's orange: marks what the user picked
DIMMED_OPACITY = 0.25  # the other points while a selection is shown
VIRIDIS = ["#440154", "#482878", "#3E4989", "#31688E", "#26828E", "#1F9E89", "#35B779", "#6ECE58", "#B5DE2B", "#FDE725"]
UNSELECTED_LINE = "#D9D9D9"


def in_view(selected: Iterable[str] | None, shown: Iterable[str]) -> tuple[list[str], int]:
    """The selected runs among those shown (selection order kept), and how many selected runs are not shown."""
    selected = list(dict.fromkeys(selected or []))
    shown = set(shown)
    visible = [r for r in selected if r in shown]
    return visible, len(selected) - len(visible)


def hidden_note(hidden: int) -> str:
    """What a page says about selected runs the picker hides ('' when none)."""
    if hidden <= 0:
        return ""
    return f"{hidden} selected run{'s are' if hidden != 1 else ' is'} in searches not shown"


def selected_overlay(x, y, run_ids: list[str], hover: str | None = None) -> dict:
    """A trace drawn over a scatter's points: the selected ones, larger and outlined (customdata: run ids)."""
    trace = {
        "type": "scatter",
        "x": typed(x),
        "y": typed(y),
        "customdata": list(run_ids),
        "mode": "markers",
        "name": f"selected ({len(run_ids)})",
        "marker": {"symbol": "circle-open", "size": 13, "color": SELECTED, "line": {"width": 2.5, "color": SELECTED}},
    }
    if hover:
        trace["hovertemplate"] = hover
    else:
        trace["hoverinfo"] = "skip"
    return trace


def selection_revision(selected: Iterable[str] | None) -> str:
    """A figure's ``selectionrevision`` for a selection: a new selection drops plotly's own selection box.

    The selection is drawn by ``selected_overlay``; a box kept over a redraw would report its points again
    and undo a 'Clear selection'.
    """
    ids = sorted(set(selected or []))
    return hashlib.sha1("\n".join(ids).encode()).hexdigest()[:12]


def selected_mask(run_ids: list[str], selected: Iterable[str] | None) -> np.ndarray:
    chosen = set(selected or [])
    if not chosen:
        return np.zeros(len(run_ids), dtype=bool)
    return pd.Index(np.asarray(run_ids, dtype=object), dtype=object).isin(chosen)


def highlight_line(color: np.ndarray, mask: np.ndarray, reverse: bool) -> dict:
    """A parcoords ``line`` that keeps the metric colours for the selected runs and greys the others.

    The others get a value just below the metric's range, and the colour scale starts with a grey step
    there; with no run selected (or every one) it is the plain metric scale.
    """
    color = np.asarray(color, dtype=float)
    scale = VIRIDIS[::-1] if reverse else VIRIDIS
    if not mask.any() or mask.all():
        return {"color": typed(color), "colorscale": _scale(scale, 0.0), "cmin": _lo(color), "cmax": _hi(color)}
    lo, hi = _lo(color[mask]), _hi(color[mask])
    span = (hi - lo) or 1.0
    floor = lo - 0.1 * span
    values = np.where(mask, color, floor)
    return {
        "color": typed(values),
        "colorscale": [[0.0, UNSELECTED_LINE], [0.09, UNSELECTED_LINE], *_scale(scale, 0.1)],
        "cmin": floor,
        "cmax": hi if hi > lo else lo + span,
    }


def _scale(colors: list[str], start: float) -> list[list]:
    steps = np.linspace(start, 1.0, len(colors))
    return [[float(s), c] for s, c in zip(steps, colors)]


def _lo(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.min()) if len(finite) else 0.0


def _hi(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.max()) if len(finite) else 1.0
