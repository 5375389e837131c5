"""Every callback request checked before Dash runs it: a 400 with the reason for a body the app's own pages
would never send (an unknown callback, inputs it does not declare, a selection that is not ids), instead
of a 500 from deep inside a callback. The bounds are the page links' (``url_checks``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from flask import Response, request

from trellis.app.url_checks import EXPERIMENT_ID, MAX_EXPERIMENTS, MAX_SEARCHES, SEARCH_ID

log = logging.getLogger(__name__)
MAX_SELECTED_RUNS = 100_000
RUN_ID = SEARCH_ID


def _ids(value, pattern, bound: int, what: str) -> list[str]:
    if not isinstance(value, list) or len(value) > bound:
        return [f"{what}: a list of at most {bound} ids"]
    return [
        f"{what}: {str(v)[:40]!r} is not an id" for v in value if not (isinstance(v, str) and pattern.fullmatch(v))
    ][:3]


def _selection(value) -> list[str]:
    if not isinstance(value, dict):
        return ["an object with experiments and searches"]
    return _ids(value.get("experiments"), EXPERIMENT_ID, MAX_EXPERIMENTS, "experiments") + _ids(
        value.get("searches"), SEARCH_ID, MAX_SEARCHES, "searches"
    )


def _selected_runs(value) -> list[str]:
    return [] if value is None else _ids(value, RUN_ID, MAX_SELECTED_RUNS, "run ids")


def _count(value) -> list[str]:
    ok = value is None or (isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53)
    return [] if ok else ["a click or tick count"]


def _text(value) -> list[str]:
    return (
        [] if value is None or (isinstance(value, str) and len(value) <= 8192) else ["text of at most 8192 characters"]
    )


def _scalar(value) -> bool:
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int | float):
        return abs(value) < 1e300  # finite, and a float JSON can hold
    return isinstance(value, str) and len(value) <= 2000


def _widget_value(value) -> list[str]:
    """What a dropdown, input, radio or checklist sends: a scalar, or a list of them."""
    if _scalar(value) or (isinstance(value, list) and len(value) <= 1000 and all(_scalar(v) for v in value)):
        return []
    return ["a value or a list of values"]


def _object(value) -> list[str]:
    return [] if value is None or isinstance(value, dict) else ["an object"]


def _list(value) -> list[str]:
    return [] if value is None or isinstance(value, list) else ["a list"]


# What a value must be, by "id.property" for the stores every page shares, else by property.
def _flag(value) -> list[str]:
    return [] if value is None or isinstance(value, bool) else ["true or false"]


VALUE_CHECKS = {
    "selection.data": _selection,
    "selected-runs.data": _selected_runs,
    "live-seen.data": _object,
    "data-version.data": _count,
    "store-down.data": _flag,
    "sp-brushes.data": _object,
    "sp-kept-params.data": _object,
    "sp-kept-dir.data": _object,
    "ctl-extra.data": _object,
    "ctl-refresh.data": _text,
}
PROPERTY_CHECKS = {
    "n_clicks": _count,
    "n_intervals": _count,
    "pathname": _text,
    "search": _text,
    "value": _widget_value,
    "clickData": _object,
    "selectedData": _object,
    "restyleData": _list,
    "active_cell": _object,
    "figure": _object,
    "options": _list,
}


def _key(item) -> str | None:
    if not isinstance(item, dict) or "id" not in item or not isinstance(item.get("property"), str):
        return None
    ident = item["id"]
    ident = ident if isinstance(ident, str) else json.dumps(ident, sort_keys=True, separators=(",", ":"))
    return f"{ident}.{item['property']}"


def _declared(spec: dict, kind: str) -> set[str]:
    return {_key(d) for d in spec.get(kind, [])}


SCALAR_WIDGETS = {"Input", "Slider", "Textarea"}
CHOICE_WIDGETS = {"Dropdown", "RadioItems", "Checklist", "Select"}


def widget_checks(trees, callback_map: dict) -> dict:
    """Checks by "id.property" read off the pages' component trees: a choice widget's value is one of its
    options (or, where a callback sets the options, a name), a list only where it takes several; an input's
    value is one value; a table's data a list of rows."""
    dynamic = {o for output in callback_map for o in output.strip(".").split("...") if o.endswith(".options")}
    checks = {}
    for tree in trees:
        for component in [tree, *tree._traverse()]:
            ident = getattr(component, "id", None)
            if not isinstance(ident, str):
                continue
            kind = type(component).__name__
            if kind in CHOICE_WIDGETS:
                multi = kind == "Checklist" or bool(getattr(component, "multi", False))
                options = None if f"{ident}.options" in dynamic else getattr(component, "options", None)
                checks[f"{ident}.value"] = _choice(multi, None if options is None else {_option(o) for o in options})
            elif kind in SCALAR_WIDGETS:
                checks[f"{ident}.value"] = _one_value
            elif kind == "DataTable":
                checks[f"{ident}.data"] = _rows
    return checks


def _option(option):
    return option.get("value") if isinstance(option, dict) else option


def _choice(multi: bool, allowed: set | None) -> Callable[[object], list[str]]:
    def check(value) -> list[str]:
        values = value if multi and isinstance(value, list) else [value]
        if value is None or (multi and isinstance(value, list) and len(value) <= 1000) or not multi:
            ok = all(_offered(v, allowed) for v in values)
            if value is None or ok:
                return []
        return ["one of the offered choices" + (", as a list" if multi else "")]

    return check


def _offered(value, allowed: set | None) -> bool:
    if allowed is None:  # options a callback sets: a name
        return isinstance(value, str) and len(value) <= 2000
    return isinstance(value, str | int | float | bool) and value in allowed


def _one_value(value) -> list[str]:
    return [] if _scalar(value) else ["one value"]


def _rows(value) -> list[str]:
    ok = value is None or (
        isinstance(value, list) and len(value) <= 100_000 and all(isinstance(row, dict) for row in value)
    )
    return [] if ok else ["a list of rows"]


def body_problems(body, callback_map: dict, widgets: dict | None = None) -> list[str]:
    """What is wrong with a callback request's body (empty when the app's pages could have sent it). Pure.
    ``widgets``: the checks ``widget_checks`` read off the pages."""
    if not isinstance(body, dict) or not isinstance(body.get("output"), str):
        return ["body: a JSON object naming its output"]
    spec = callback_map.get(body["output"])
    if spec is None or "callback" not in spec:  # a clientside callback runs in the browser only
        return [f"output: {body['output'][:60]!r} is not a callback of this app"]
    problems = _shape_problems(body, spec)
    for kind in ("inputs", "state"):
        items = body.get(kind, [])
        if not isinstance(items, list) or len(items) != len(spec.get(kind, [])):
            problems.append(f"{kind}: a list of the callback's {len(spec.get(kind, []))} {kind}")
            continue
        declared = _declared(spec, kind)
        for item in _flatten(items):
            key = _key(item)
            if key is None or (key not in declared and not _pattern_match(key, declared)):
                problems.append(f"{kind}: {str(key)[:60]!r} is not an {kind[:-1] if kind == 'inputs' else kind} here")
            else:
                checks = (VALUE_CHECKS.get(key), (widgets or {}).get(key), PROPERTY_CHECKS.get(item["property"]))
                for check in filter(None, checks):
                    problems += [f"{key}: {reason}" for reason in check(item.get("value"))]
    return problems[:10]


def _shape_problems(body: dict, spec: dict) -> list[str]:
    """``outputs`` naming exactly the callback's outputs (one mapping for a single output, a list of them for
    several; a list only for a pattern-matching one), ``changedPropIds`` a short list of names (what Dash reads)."""
    names = body["output"].strip(".").split("...")
    outputs = body.get("outputs")
    single = not body["output"].startswith("..")
    items = [outputs] if single else outputs if isinstance(outputs, list) else None
    problems = []
    if items is None or len(items) != len(names):
        problems.append(f"outputs: the callback's {len(names)} outputs, each with id and property")
    elif not all(_output_matches(item, name) for item, name in zip(items, names, strict=True)):
        problems.append("outputs: not this callback's outputs")
    changed = body.get("changedPropIds", [])
    if not isinstance(changed, list) or len(changed) > 100 or not all(isinstance(c, str) for c in changed):
        problems.append("changedPropIds: a list of property names")
    return problems


def _output_matches(item, name: str) -> bool:
    if name.startswith("{"):  # a pattern-matching output: its items (a list for ALL) carry dict ids
        parts = item if isinstance(item, list) else [item]
        return len(parts) <= 1000 and all((_key(p) or "").startswith("{") for p in parts)
    return isinstance(item, dict) and _key(item) == name


def _flatten(items: list) -> list:
    """Pattern-matching (ALL) inputs arrive as lists of items."""
    return [i for item in items for i in (item if isinstance(item, list) else [item])]


def _pattern_match(key: str, declared: set) -> bool:
    """A dict id of a pattern-matching callback (``{"type": ..., "index": ...}``) matches on its type."""
    return key.startswith("{") and any(d and d.startswith("{") for d in declared)


def install_callback_checks(server, dash_app, page_trees: Callable[[], list]) -> None:
    """``page_trees()``: the component trees of the shell and every page (read once, at the first callback).
    A script path Dash does not serve is a 404 (Dash raises, which would be a 500)."""
    from dash.exceptions import DependencyException

    widgets: dict = {}
    server.register_error_handler(DependencyException, lambda _exc: Response("Not found.\n", 404))

    @server.errorhandler(TypeError)
    @server.errorhandler(KeyError)
    @server.errorhandler(ValueError)
    @server.errorhandler(AttributeError)
    @server.errorhandler(IndexError)
    def _unusable_inputs(exc):
        """The last line of defence, for callback requests only: a value of a shape the checks above let
        through but the callback could not use is the request's fault (400, said), logged with its traceback
        so a real bug is still seen. Any other route's error stays a 500."""
        if request.path != "/_dash-update-component":
            raise exc
        log.warning("callback request refused: %s: %s", type(exc).__name__, exc, exc_info=exc)
        return Response(f"Bad callback request: these inputs cannot be used ({type(exc).__name__}).\n", 400,
                        mimetype="text/plain")  # fmt: skip

    @server.before_request
    def _check_callback():
        if request.path != "/_dash-update-component" or request.method != "POST":
            return None
        if not widgets:
            widgets.update(widget_checks(page_trees(), dash_app.callback_map))
        try:
            body = request.get_json(silent=True)
        except RecursionError:  # nested deeper than any page sends
            body = None
        problems = body_problems(body, dash_app.callback_map, widgets)
        if problems:
            return Response("Bad callback request:\n" + "\n".join(problems) + "\n", 400, mimetype="text/plain")
        return None
