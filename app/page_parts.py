"""Pieces several pages share: a per-process memo of a page's info per store state, and the objective picker
with its direction (the exploration and models pages)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dash import Dash, Input, Output, State, ctx

from trellis.app.context import AppContext, View
from trellis.app.shell import query_objective
from trellis.layouts.choices import direction_of, objective_choice
from trellis.search.analysis.objective import user_metrics
from trellis.tracking.memo import Memo


class StateMemo:
    """A page's info for the last few (store state, searches, objective, direction) asked, per process: the
    reads and the heavy parts are done once per state; figures are built per request from the info.
    ``compute(view, searches, objective, direction)`` makes the info of one key."""

    def __init__(self, compute: Callable[[View, list[str], str, str], Any], entries: int = 4) -> None:
        self.compute = compute
        self._entries: Memo = Memo(entries)

    def get(self, context: AppContext, selection: dict, objective: str, direction: str) -> Any:
        experiments = context.readable_ids(selection.get("experiments", []))
        searches = list(selection.get("searches", []))
        view = context.view(experiments, searches)
        state = context.data_state(experiments)
        key = None if state is None else (tuple(state), tuple(searches), objective, direction)
        found = self._entries.get(key) if key is not None else None
        if found is not None:
            return found
        info = self.compute(view, searches, objective, direction)
        if key is not None:
            self._entries.put(key, info)
        return info


def register_objective_choices(app: Dash, context: AppContext, objective_id: str, direction_id: str) -> None:
    """The objective picker's options and value (the URL's objective, else the runs' own), kept when the store
    changes; the direction follows the objective picked."""

    @app.callback(
        Output(objective_id, "options"),
        Output(objective_id, "value"),
        Input("selection", "data"),
        Input("data-version", "data"),
        State("url", "search"),
        State(objective_id, "value"),
    )
    def objective_choices(selection, _version, search, current):
        view = context.view(selection["experiments"], selection["searches"])
        metrics = user_metrics(view.table.metrics)
        wanted = current if ctx.triggered_id == "data-version" and current in metrics else query_objective(search)
        return metrics, objective_choice(view.trials, metrics, wanted)

    @app.callback(Output(direction_id, "value"), Input(objective_id, "value"), State("selection", "data"))
    def follow_objective(objective, selection):
        if not isinstance(objective, str):
            return "max"
        return direction_of(context.view(selection["experiments"], selection["searches"]).trials, objective)
