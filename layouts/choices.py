"""The choices the pages make for the user: picker options, default metrics and axes, trust levels, clicks.

Pure functions of frames and plain values (no Dash): the callbacks look up their inputs, call these and
return what they give.
"""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd

from trellis.search.analysis.objective import default_objective, metric_direction, user_metrics

# -- the search picker ------------------------------------------------------------------------------


class SearchChoices(NamedTuple):
    options: list[dict]  # dropdown options: "label (runs)" -> search id, sorted by label
    searches: list[str]  # the wanted searches that the chosen experiments hold, in the order wanted


def search_choices(trials: pd.DataFrame, labels: dict[str, str], wanted: list[str]) -> SearchChoices:
    """The searches of these trials as options (each with its run count), and which of ``wanted`` exist."""
    counts = trials["search_id"].value_counts()
    options = sorted(
        ({"label": f"{labels.get(s, s)} ({n})", "value": s} for s, n in counts.items()),
        key=lambda o: o["label"],
    )
    return SearchChoices(options, [s for s in wanted if s in counts.index])


# -- default metrics and directions -----------------------------------------------------------------


def direction_of(trials: pd.DataFrame, metric: str | None) -> str:
    """The direction a metric is optimised in; ``max`` when there is no metric."""
    return metric_direction(trials, metric) if metric else "max"


class OverviewDefaults(NamedTuple):
    objective: str | None
    objective_dir: str
    x: str | None  # the trade-off plot's x: a cost (size, latency) if one is logged
    x_dir: str
    y: str | None  # the trade-off plot's y: the objective
    y_dir: str
    distribution: str | None


def objective_choice(trials: pd.DataFrame, metrics: list[str], wanted: str | None = None) -> str | None:
    """The objective every page starts from: the one chosen (in the URL) if these runs log it, else the default."""
    shown = user_metrics(metrics)
    return wanted if wanted in shown else default_objective(trials, shown)


def overview_defaults(trials: pd.DataFrame, metrics: list[str], wanted: str | None = None) -> OverviewDefaults:
    """The objective, a cost against it for the trade-off plot, and another metric's distribution.

    With a single metric there is nothing to trade it off against: x is None (the plot says so).
    """
    metrics = user_metrics(metrics)
    objective = objective_choice(trials, metrics, wanted)
    others = [m for m in metrics if m != objective]
    x = next((m for m in others if "n_params" in m or "latency" in m), others[0] if others else None)
    distribution = next((m for m in others if m != x), objective)
    obj_dir = direction_of(trials, objective)
    return OverviewDefaults(objective, obj_dir, x, direction_of(trials, x), objective, obj_dir, distribution)


def table_metrics(metrics: list[str], objective: str | None) -> list[str]:
    """A table's metric columns: the objective first, Trellis' internal metrics left out."""
    shown = user_metrics(metrics)
    return ([objective] if objective in shown else []) + [m for m in shown if m != objective]


def default_metrics(metrics: list[str], objective: str | None) -> list[str]:
    """The learning curves shown first: the objective and up to two losses."""
    chosen = [objective] if objective in metrics else []
    chosen += [m for m in metrics if "loss" in m and m not in chosen][:2]
    return chosen or metrics[:1]


def budget_value(value: str | float | None) -> str | float | None:
    """The budget picker's value as the analysis' ``budget``: "auto" (default), None for every run as it
    ended ("all"), else the budget."""
    if value in (None, "", "auto"):
        return "auto"
    if value == "all":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return "auto"


def budget_options(levels: dict[float, int]) -> list[dict[str, str]]:
    """The budget picker's choices: auto, each budget the runs ended at (with how many reached it), all."""
    options = [{"label": "auto: the largest budget enough runs reached", "value": "auto"}]
    options += [{"label": f"budget {b:g} ({n} runs reached it)", "value": f"{b:g}"} for b, n in levels.items()]
    return [*options, {"label": "every run as it ended (mixed budgets)", "value": "all"}]


def best_quantile(value: float | str | None) -> float | None:
    """The quantile picker's value as the analysis' ``best_quantile``: None for all runs."""
    return None if not value or float(value) >= 1 else float(value)


# -- the search-space page --------------------------------------------------------------------------


class Trust(NamedTuple):
    level: str  # "success" | "warning" | "danger": how far to trust the forest's fit
    text: str


def r2_trust(r2: float | None, r2_std: float | None) -> Trust:
    """The cross-validated R² as a level (good from 0.7, usable from 0.3) and its badge text."""
    if r2 is None:
        return Trust("danger", "R² n/a")
    level = "success" if r2 >= 0.7 else "warning" if r2 >= 0.3 else "danger"
    spread = "" if r2_std is None else f" ± {r2_std:.2f}"
    return Trust(level, f"R² {r2:.2f}{spread}")


def clicked_params(click: dict | None, top: tuple[str, ...]) -> tuple[str, str | None] | None:
    """The parameter, or pair of parameters, of a clicked importance row; ``top`` (a row's params) if none.

    The names come from the row's ``customdata``, never from splitting its label: a name may hold " × ".
    None when nothing was clicked and there is no row to fall back to.
    """
    points = (click or {}).get("points") or [{}]
    data = points[0].get("customdata") or []
    names = [n for n in ([data] if isinstance(data, str) else data) if n]
    names = names or [n for n in top if n]
    if not names:
        return None
    return names[0], names[1] if len(names) > 1 else None


def kept(stored: dict | None, key: list, default):
    """A control's value the user chose for ``key`` (the runs shown, the metric) this session, else ``default``.

    ``stored`` is ``{"key": key, "value": value}`` as the page keeps it; a choice made for other runs or
    another metric does not carry over.
    """
    if stored and stored.get("key") == key and stored.get("value") is not None:
        return stored["value"]
    return default


def kept_params(stored: dict | None, key: list, params: list[str]) -> list[str]:
    """The parameters the user kept for these runs (those still recorded), else every parameter."""
    chosen = [p for p in kept(stored, key, []) if p in params]
    return chosen or list(params)
