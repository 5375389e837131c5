"""The model overview's card of the picked model (glyphs, queue, children) and its launch: the children search
of an ablation or variations, for an agent, under the control panel's sign-in, permission and allow-list checks."""

from __future__ import annotations

import secrets

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, ctx, dash_table, html, no_update

from trellis.app.context import AppContext
from trellis.app.pages.control_relaunch import signed_in_refusal
from trellis.layouts.models import glyph
from trellis.search.analysis.models import ModelsInfo, QueueRow, children_of, existing_children
from trellis.search.control.model_children import ChildrenError, allowed_changes, children_config
from trellis.search.control.policy import trial_target
from trellis.search.control.queue import request_children_order, submit_search
from trellis.search.control.relaunch import validate_launch
from trellis.search.engine.resume import ResumeError
from trellis.tracking.links import run_url


def model_card(info: ModelsInfo, selected: str | None, queue: list):
    """The picked model: its glyph and layers, score and size, parent, its children's searches (the queue) and
    its trained children."""
    if selected is None:
        return html.Div(
            "Pick a model in either plot to see its layers and train its children.", className="small text-muted"
        )
    i = info.run_ids.index(selected)
    arch = info.archs[i]
    head = [
        html.Span(f"Model {selected[:8]}{_named(info, i)} ", className="fw-bold"),
        glyph(arch, info.input_shape, id_="md-glyph"),
        html.Span(
            f"  {info.objective} {info.score[i]:.4g} · {info.n_params[i]:,.0f} parameters · {len(arch)} layers",
            className="small ms-2",
        ),
    ]
    lines = [html.Div(head), html.Div(arch.describe(), className="small text-muted font-monospace")]
    if info.origin_model[i]:
        lines.append(html.Div(f"Child of {info.origin_model[i][:8]}: {info.origin_change[i]}", className="small"))
    for q in queue:
        state = f"{q.waiting} waiting" if q.waiting else "none waiting"
        lines.append(
            html.Div(
                [
                    f"{q.kind.capitalize()} ",
                    html.A(q.search_id[:8], href=f"/control?exp={q.experiment_id}&search={q.search_id}"),
                    f": {q.ended} of {q.expected} children ended, {state} ({q.status.lower()})",
                ],
                className="small md-queue",
            )
        )
    waiting = waiting_rows(queue)
    if waiting:
        lines += [
            html.Div(
                [
                    "Waiting children, in the order they will train: pick one and press ",
                    html.B("Train it next"),
                    ", or remove one (×) to cancel it. A child that is already starting is not stopped.",
                ],
                className="small text-muted mt-1",
            ),
            dash_table.DataTable(
                id="md-waiting",
                columns=[{"name": "change", "id": "change"}, {"name": "search", "id": "search"}],
                data=waiting,
                row_deletable=True,
                row_selectable="single",
                style_cell={"fontSize": 12, "textAlign": "left"},
                style_table={"maxWidth": 640},
            ),
            dbc.Button("Train it next", id="md-first", size="sm", outline=True, className="mt-1"),
        ]
    rows = children_of(info, selected)
    if rows:
        lines.append(html.H6("Its children (the change that hurt most first)", className="mt-2 mb-1"))
        lines.append(children_table(info, rows))
    return dbc.Card(dbc.CardBody(lines), id="md-model")


def _named(info: ModelsInfo, i: int) -> str:
    name = info.run_names[i] if i < len(info.run_names) else ""
    return f" ({name})" if name else ""


def waiting_rows(queue: list[QueueRow]) -> list[dict]:
    """One row per waiting child of the searches still to run them (the order they will train in)."""
    return [
        {"change": what, "search": q.search_id[:8], "search_id": q.search_id, "arch": text}
        for q in queue
        if q.waiting
        for text, what in q.waiting_children
    ]


def new_orders(rows: list[dict], previous: list[dict] | None, first: int | None) -> dict[str, list[str]]:
    """Per children search, the order its waiting children should now train in: the table's rows after a
    removal (against ``previous``), or with row ``first`` moved to the front of its search's."""
    rows = [r for r in rows or [] if isinstance(r, dict)]
    if first is not None and 0 <= first < len(rows):
        picked = rows[first]
        rows = [picked, *[r for i, r in enumerate(rows) if i != first]]
        searches = {picked.get("search_id")}
    elif previous is not None and len(previous) > len(rows):
        searches = {r.get("search_id") for r in previous}
    else:
        return {}
    return {
        str(s): [str(r.get("arch")) for r in rows if r.get("search_id") == s] for s in searches if isinstance(s, str)
    }


def children_table(info: ModelsInfo, rows) -> dbc.Table:
    """The trained children, each with its glyph; a change that made the model worse is shaded."""
    head = html.Thead(
        html.Tr([html.Th(n) for n in ("layers", "change", "score", "Δ (better > 0)", "parameters", "run")])
    )
    body = []
    for r in rows:
        i = info.run_ids.index(r.run_id)
        cells = [
            html.Td(glyph(info.archs[i], info.input_shape)),
            html.Td(r.change, className="md-change"),
            html.Td(f"{r.score:.4g}"),
            html.Td(f"{r.delta:+.4g}"),
            html.Td(f"{r.n_params:,.0f}"),
            html.Td(r.run_id[:8]),
        ]
        body.append(html.Tr(cells, className="table-danger" if r.delta < 0 else ""))
    return dbc.Table([head, html.Tbody(body)], id="md-children", size="sm", className="small")


def register_queue(app: Dash, context: AppContext) -> None:
    @app.callback(
        Output("md-queue-msg", "children"),
        Input("md-waiting", "data"),
        Input("md-first", "n_clicks"),
        State("md-waiting", "data_previous"),
        State("md-waiting", "selected_rows"),
        prevent_initial_call=True,
    )
    def reorder(rows, _first, previous, selected):
        first = selected[0] if ctx.triggered_id == "md-first" and selected else None
        if ctx.triggered_id == "md-first" and first is None:
            return dbc.Alert("Pick a waiting child first.", color="warning")
        return requeue_children(context, new_orders(rows, previous, first if isinstance(first, int) else None))


def requeue_children(context: AppContext, orders: dict[str, list[str]]):
    """Write each children search's new order (its runner applies it within seconds); a message says what."""
    if not orders:
        return no_update
    done = []
    for search_id, order in orders.items():
        refusal = signed_in_refusal(context, search_id)
        if refusal is not None:
            return refusal
        try:
            request_children_order(context.client, search_id, order)
        except ResumeError as exc:
            return dbc.Alert(str(exc).splitlines()[0], color="danger")
        done.append(f"{search_id[:8]}: {len(order)} waiting")
    return dbc.Alert(
        f"Queue updated ({'; '.join(done)}); the search applies it within seconds.", color="info", id="md-queued"
    )


def register_launch(app: Dash, context: AppContext) -> None:
    @app.callback(Output("md-n", "disabled"), Output("md-layers", "disabled"), Input("md-kind", "value"))
    def variation_fields(kind):
        """The variation-only fields are greyed out for an ablation."""
        return kind != "variation", kind != "variation"

    @app.callback(
        Output("md-launch-msg", "children"),
        Input("md-launch", "n_clicks"),
        State("md-selected", "data"),
        State("md-kind", "value"),
        State("md-n", "value"),
        State("md-changes", "value"),
        State("md-layers", "value"),
        State("selection", "data"),
        prevent_initial_call=True,
    )
    def launch(_clicks, selected, kind, n, changes, layers, selection):  # noqa: PLR0913 (the form)
        return launch_children(context, selected, kind, n, selection, changes, layers)


def launch_children(context: AppContext, run_id, kind, n, selection, changes=None, layers=None) -> dbc.Alert:
    """Submit the children search of the picked model for an agent; an alert says what happened."""
    if not isinstance(run_id, str) or not run_id:
        return dbc.Alert("Pick a model first.", color="warning")
    allowed, problem = allowed_changes(changes, layers)
    if problem:
        return dbc.Alert(problem, color="danger")
    view = context.view((selection or {}).get("experiments", []), (selection or {}).get("searches", []))
    rows = view.trials[view.trials["run_id"] == run_id]
    if rows.empty:  # not a run of this view (or not one the user may read): nothing is looked up further
        return dbc.Alert("That model is not among the runs shown.", color="danger")
    search_id = str(rows["search_id"].iloc[0])
    refusal = signed_in_refusal(context, search_id)
    if refusal is not None:
        return refusal
    try:
        parent = context.search_config(search_id)
        recorded = context.client.get_run(run_id).data.params
        seed = secrets.randbelow(2**31)
        existing = existing_children(view.table.runs, run_id)
        raw = children_config(parent, run_id, dict(recorded), str(kind), int(n or 1), seed, allowed, existing)
    except (ResumeError, ChildrenError, ValueError, TypeError) as exc:
        return dbc.Alert(f"Cannot make children of this model: {str(exc).splitlines()[0]}", color="danger")
    raw["tracking"] = {**(raw.get("tracking") or {}), "uri": context.tracking_uri}
    config, problems = validate_launch(raw, [], context.policy, trial_target(parent.trial))
    if problems:
        return dbc.Alert(["Not launchable: ", "; ".join(f"{p}: {r}" for p, r in problems)], color="danger")
    new_id = submit_search(config, launched_by=context.current_user() or "anonymous")
    experiment = str(rows["experiment_id"].iloc[0])
    n_children = len(config.origin.changes)
    return dbc.Alert(
        [
            f"{n_children} children of {run_id[:8]} launched as search ",
            html.A(new_id[:8], href=f"/control?exp={experiment}&search={new_id}", id="md-launched-link"),
            " (an agent trains them; they appear here as they finish). ",
            html.A("run in MLflow", href=run_url(context.mlflow_ui_url, experiment, run_id), target="_blank"),
        ],
        color="success",
        id="md-launched",
    )
