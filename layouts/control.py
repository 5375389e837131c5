"""The control page's pure builders: the searches table with its lineage, what a picked search allows, and the
relaunch form as widget values and back. Plain values in and out: no Dash callbacks, no MLflow calls.

Over 400 lines: the searches table and the relaunch form's widgets are one page's builders, read together."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import pandas as pd

from trellis.search.control.relaunch import scalar
from trellis.search.registry import ALGORITHMS
from trellis.tracking import schema
from trellis.tracking.claims import search_status

ACTIVE = ("scheduled", "running")
RESUMABLE = ("stopped", "orphaned", "failed")
STATUS_COLORS = {
    "scheduled": "secondary",
    "running": "info",
    "finished": "success",
    "stopped": "warning",
    "failed": "danger",
    "orphaned": "danger",
}
TABLE_COLUMNS = [
    ("short", "id"),
    ("name", "name"),
    ("status", "status"),
    ("progress", "progress"),
    ("best", "best so far"),
    ("algorithm", "algorithm"),
    ("launched_by", "launched by"),
    ("started", "started"),
    ("agent", "agent"),
    ("why", "why it ended"),
]
PARAM_COLUMNS = ["name", "action", "type", "low", "high", "log", "choices", "value"]
EDITABLE_PARAM_COLUMNS = {"action", "low", "high", "log", "choices", "value"}
WIDGETS = (
    "name", "params", "algorithm", "settings", "max_trials", "max_time_s", "workers", "warm_start", "seed",
    "guidance", "prior",
)  # fmt: skip
FAST_TICK_MS, SLOW_TICK_MS = 2000, 15000
INDENT = "\u00a0└ "  # what indents a relaunch's name under its parent


# -- the searches table ------------------------------------------------------------------------------


def search_record(run: Any) -> dict[str, Any]:
    """An MLflow search run (anything with its ``info`` and ``data``) as the plain dict the builders read."""
    info, data = run.info, run.data
    return {
        "run_id": info.run_id,
        "experiment_id": str(info.experiment_id),
        "status": info.status,
        "start_time": info.start_time,
        "run_name": info.run_name,
        "tags": dict(data.tags),
        "metrics": dict(data.metrics),
    }


def lineage(records: Iterable[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], int]]:
    """Searches as a tree by ``trellis.relaunched_from``: each with its depth, a relaunch right under its parent.

    Roots newest first, children oldest first; a relaunch whose parent is not listed is a root; a loop of
    relaunch tags (which no search writes, but a store may hold) cannot hide a search.
    """
    records = list(records)
    ids = {r["run_id"] for r in records}
    children: dict[str, list] = defaultdict(list)
    roots = []
    for r in records:
        parent = r["tags"].get(schema.RELAUNCHED_FROM)
        if parent in ids and parent != r["run_id"]:
            children[parent].append(r)
        else:
            roots.append(r)
    out: list[tuple[Mapping[str, Any], int]] = []
    seen: set[str] = set()

    def walk(record, depth):
        if record["run_id"] in seen:
            return
        seen.add(record["run_id"])
        out.append((record, depth))
        for child in sorted(children[record["run_id"]], key=_start):
            walk(child, depth + 1)

    for root in sorted(roots, key=_start, reverse=True):
        walk(root, 0)
    for r in sorted(records, key=_start):  # only reached through a loop
        walk(r, 0)
    return out


def _start(record: Mapping[str, Any]) -> int:
    return int(record.get("start_time") or 0)


def recorded_limits(tags: Mapping[str, str]) -> dict[str, Any]:
    """The search's config as its tag holds it (edits included), or {} when the tag is missing or too long."""
    try:
        config = json.loads(tags.get(schema.CONFIG_JSON) or "{}")
    except ValueError:
        return {}
    return config if isinstance(config, dict) else {}


def _started_ms(record: Mapping[str, Any], tags: Mapping[str, str], label: str) -> float | None:
    """When it started running: an agent's start of a submitted search (not its submit); none while it waits."""
    started = tags.get(schema.SEARCH_STARTED, "")
    if label == "scheduled":
        return None
    return float(started) * 1000 if started.replace(".", "", 1).isdigit() else record.get("start_time")


def search_row(record: Mapping[str, Any], depth: int, ended: int, now: float) -> dict[str, Any]:
    """One table row: short id, name (indented under its parent), status, progress, best so far and who ran it."""
    tags, run_id = record["tags"], record["run_id"]
    status = search_status(record["status"], tags, now)
    config = recorded_limits(tags)
    max_trials = (config.get("termination") or {}).get("max_trials")
    name = tags.get(schema.SEARCH_NAME) or record.get("run_name") or run_id[:8]
    first = config.get("objective") or {}  # several objectives: a list, the first is the main one
    objective = tags.get(schema.OBJECTIVE) or (first[0] if isinstance(first, list) else first).get("metric")
    best = record["metrics"].get(f"{schema.BEST_METRIC_PREFIX}{objective}") if objective else None
    started = _started_ms(record, tags, status.label)
    return {
        "id": run_id,
        "short": run_id[:8],
        "name": ("\u00a0\u00a0\u00a0" * (depth - 1) + "└\u00a0" if depth else "") + str(name),
        "depth": depth,
        "status": status.label,
        "progress": f"{ended} / {max_trials if max_trials else '—'}",
        "best": "—" if best is None or not math.isfinite(best) else f"{best:.5g}",
        "algorithm": tags.get(schema.ALGORITHM) or (config.get("algorithm") or {}).get("name") or "",
        "launched_by": tags.get(schema.LAUNCHED_BY) or "cli",
        "started": datetime.fromtimestamp(started / 1000).strftime("%Y-%m-%d %H:%M:%S") if started else "",
        "agent": tags.get(schema.AGENT) or "",
        "why": _why(tags, status.label),
        "experiment_id": record.get("experiment_id", ""),
        "relaunched_from": (tags.get(schema.RELAUNCHED_FROM) or "")[:8],
    }


def _why(tags: Mapping[str, str], label: str) -> str:
    """Why a search that did not complete ended: its error line (a refused trial, a crash), else its stop reason."""
    if label in ("scheduled", "running", "completed"):
        return ""
    text = tags.get(schema.ERROR) or tags.get(schema.SEARCH_STOP_REASON) or ""
    return text if len(text) <= 160 else text[:157] + "..."


def ended_counts(trials: pd.DataFrame) -> dict[str, int]:
    """Trials that ended (any status but RUNNING or SCHEDULED), per search id."""
    if trials.empty:
        return {}
    ended = trials[~trials["status"].isin(["RUNNING", "SCHEDULED"])]
    return {str(k): int(v) for k, v in ended.groupby("search_id").size().items()}


def table_rows(records: Iterable[Mapping[str, Any]], ended: Mapping[str, int], now: float) -> list[dict[str, Any]]:
    return [search_row(r, depth, ended.get(r["run_id"], 0), now) for r, depth in lineage(records)]


def tick_interval(rows: Iterable[Mapping[str, Any]]) -> int:
    """Poll fast while a search is scheduled or running, slowly otherwise (a launch elsewhere still shows)."""
    return FAST_TICK_MS if any(r["status"] in ACTIVE for r in rows) else SLOW_TICK_MS


def pick_options(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    return [{"label": f"{r['name'].lstrip(INDENT)} · {r['short']} ({r['status']})", "value": r["id"]} for r in rows]


def status_styles() -> list[dict[str, Any]]:
    """DataTable conditional styles: the status cell coloured by its label."""
    colors = {"running": "#0dcaf0", "scheduled": "#adb5bd", "finished": "#198754", "stopped": "#ffc107"}
    colors.update({"failed": "#dc3545", "orphaned": "#dc3545"})
    return [
        {"if": {"filter_query": f'{{status}} = "{label}"', "column_id": "status"}, "color": color, "fontWeight": 600}
        for label, color in colors.items()
    ]


# -- what a picked search allows -------------------------------------------------------------------


def allowed_actions(label: str | None) -> dict[str, bool]:
    """Stop (or cancel) and edit while scheduled or running; resume once stopped, failed or orphaned."""
    return {"stop": label in ACTIVE, "resume": label in RESUMABLE, "edit": label in ACTIVE}


def stop_label(label: str | None) -> str:
    return "Cancel" if label == "scheduled" else "Stop"


def edit_prefill(config: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    """max trials, max time (s) and workers of a stored config, for the edit form."""
    termination = config.get("termination") or {}
    return termination.get("max_trials"), termination.get("max_time_s"), (config.get("executor") or {}).get("workers")


def edit_limits(max_trials: Any, max_time_s: Any, workers: Any) -> dict[str, Any]:
    """The limits an edit asks for (blank fields left out); ``ServerPolicy.edit_problems`` judges them."""
    values = {"max_trials": max_trials, "max_time_s": max_time_s, "workers": workers}
    return {k: scalar(v) for k, v in values.items() if scalar(v) is not None}


def changed_limits(limits: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """The limits of an edit that differ from the search's stored config (the form shows them all)."""
    current = dict(zip(("max_trials", "max_time_s", "workers"), edit_prefill(config), strict=True))
    return {k: v for k, v in limits.items() if v != current.get(k)}


def problem_lines(problems: Iterable[tuple[str, str]]) -> list[str]:
    return [f"{path}: {reason}" for path, reason in problems]


# -- the relaunch form <-> widgets -------------------------------------------------------------------


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value


def param_table(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The form's parameter rows as DataTable data (``when`` rides along, not shown)."""
    out = []
    for row in rows:
        cell = {c: _cell(row.get(c)) for c in PARAM_COLUMNS}
        cell["log"] = "yes" if row.get("log") else "no"
        cell["when"] = row.get("when")
        out.append(cell)
    return out


def rows_from_table(data: Iterable[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """DataTable data back to the form's parameter rows (the text cells are read by ``config_from_form``)."""
    rows = []
    for cell in data or []:
        if not isinstance(cell, Mapping) or not cell.get("name"):
            continue
        rows.append(
            {
                "name": str(cell["name"]),
                "action": cell.get("action"),
                "type": cell.get("type"),
                "low": _blank_none(cell.get("low")),
                "high": _blank_none(cell.get("high")),
                "log": str(cell.get("log")).lower() in ("yes", "true", "1"),
                "choices": cell.get("choices") or "",
                "value": _blank_none(cell.get("value")),
                "when": cell.get("when") if isinstance(cell.get("when"), dict) else None,
            }
        )
    return rows


def _blank_none(value: Any) -> Any:
    return None if value is None or (isinstance(value, str) and not value.strip()) else value


EARLY = "early_stopping."  # settings-table rows of the early-stopping section (random, grid, TPE)


def settings_table(
    algorithm: str | None, current: Mapping[str, Any] | None = None, early: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Key/value rows of an algorithm's settings: its defaults, overridden by ``current`` where it has the key;
    then, for an algorithm that early stopping applies to, its rule and step (step -1: off)."""
    spec = ALGORITHMS.get(str(algorithm))
    if spec is None:
        return []
    current = current or {}
    rows = [{"key": k, "value": _cell(current.get(k, default))} for k, default in spec.settings.items()]
    if not spec.budgeted:
        early = early or {}
        rows += [
            {"key": EARLY + "rule", "value": _cell(early.get("rule", "median"))},
            {"key": EARLY + "step", "value": _cell(early.get("step", -1))},
        ]
    return rows


def _filled(data: Iterable[Mapping[str, Any]] | None) -> list[Mapping[str, Any]]:
    return [
        r for r in data or [] if isinstance(r, Mapping) and r.get("key") and _blank_none(r.get("value")) is not None
    ]


def settings_from_table(data: Iterable[Mapping[str, Any]] | None) -> dict[str, Any]:
    return {str(r["key"]): r.get("value") for r in _filled(data) if not str(r["key"]).startswith(EARLY)}


def early_from_table(data: Iterable[Mapping[str, Any]] | None) -> dict[str, Any]:
    """The early-stopping rows of the settings table, as an ``early_stopping:`` section's keys."""
    return {str(r["key"])[len(EARLY) :]: r.get("value") for r in _filled(data) if str(r["key"]).startswith(EARLY)}


def widgets_from_form(form: Mapping[str, Any]) -> dict[str, Any]:
    """The widget values that show ``form`` (the keys of ``WIDGETS``)."""
    algorithm = form.get("algorithm") or {}
    termination = form.get("termination") or {}
    return {
        "name": form.get("name") or "",
        "params": param_table(form.get("rows", [])),
        "algorithm": algorithm.get("name"),
        "settings": settings_table(algorithm.get("name"), algorithm.get("settings"), form.get("early_stopping")),
        "max_trials": termination.get("max_trials"),
        "max_time_s": termination.get("max_time_s"),
        "workers": form.get("workers"),
        "warm_start": ["on"] if form.get("warm_start") else [],
        "seed": "" if form.get("seed") is None else str(form.get("seed")),
        "guidance": form.get("guidance") or "prior",
        "prior": form.get("prior"),
    }


def form_from_widgets(
    base: Mapping[str, Any], widgets: Mapping[str, Any], extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The form the widgets show, on top of ``base`` (the parent's own form: its other termination limits and
    early stopping). Of ``extra`` only ``trial`` is read, and only the allow-list decides whether it is taken."""
    termination = {**(base.get("termination") or {})}
    termination.update(max_trials=widgets.get("max_trials"), max_time_s=widgets.get("max_time_s"))
    form = {
        **base,
        "name": widgets.get("name") or base.get("name"),
        "rows": rows_from_table(widgets.get("params")),
        "algorithm": {"name": widgets.get("algorithm"), "settings": settings_from_table(widgets.get("settings"))},
        "termination": termination,
        "workers": widgets.get("workers"),
        "warm_start": bool(widgets.get("warm_start")),
        "seed": _blank_none(widgets.get("seed")),
        "guidance": widgets.get("guidance") if widgets.get("guidance") in ("prior", "bounds") else "prior",
        "prior": widgets.get("prior") if isinstance(widgets.get("prior"), dict) else None,
    }
    early, before = early_from_table(widgets.get("settings")), base.get("early_stopping")
    if early and (before or scalar(early.get("step")) not in (-1, None)):  # on, or the parent's edited
        form["early_stopping"] = {**(before or {}), **early}
    elif early:  # step -1 and the parent had none: it stays off
        form["early_stopping"] = None
    form.pop("trial", None)
    if extra and extra.get("trial"):
        form["trial"] = extra["trial"]
    return form


def diff_rows(diff: Iterable[tuple[str, Any, Any]]) -> list[dict[str, str]]:
    return [{"key": path, "parent": _shown(old), "relaunch": _shown(new)} for path, old, new in diff]


def _shown(value: Any) -> str:
    return "—" if value is None else json.dumps(value) if isinstance(value, list | dict) else str(value)


# -- runs the form learns from -----------------------------------------------------------------------


def _params_of(row: pd.Series, params: Iterable[str]) -> dict[str, Any]:
    out = {}
    for name in params:
        value = row.get(f"params.{name}")
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        out[name] = value.item() if hasattr(value, "item") else value
    return out


def _param_names(trials: pd.DataFrame) -> list[str]:
    return [c[len("params.") :] for c in trials.columns if c.startswith("params.")]


def best_params(trials: pd.DataFrame, search_id: str, metric: str, direction: str) -> dict[str, Any]:
    """The parameters of the search's best finished trial on ``metric`` ({} when none has a finite value)."""
    col = f"metrics.{metric}"
    if trials.empty or col not in trials:
        return {}
    mine = trials[(trials["search_id"] == search_id) & (trials["status"] == "FINISHED")]
    values = pd.to_numeric(mine[col], errors="coerce")
    values = values[values.notna() & values.abs().ne(float("inf"))]
    if values.empty:
        return {}
    best = values.idxmax() if direction == "max" else values.idxmin()
    return _params_of(mine.loc[best], _param_names(trials))


def selected_params(trials: pd.DataFrame, run_ids: Iterable[str] | None) -> list[dict[str, Any]]:
    """The parameters of the selected runs that are in ``trials``."""
    wanted = set(run_ids or [])
    if not wanted or trials.empty:
        return []
    names = _param_names(trials)
    return [_params_of(row, names) for _, row in trials[trials["run_id"].isin(wanted)].iterrows()]
