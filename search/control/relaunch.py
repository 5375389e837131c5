"""The relaunch form's logic, pure and without Dash: form state from a parent's config, refinements (from the
verdicts of the search-space analysis, from brushed runs), the config the form asks for, its
diff against the parent, and validation through the same parser as ``trellis search validate``.

Form state is plain JSON so the page can keep it: ``name``, ``rows`` (one per parameter: ``name``,
``action`` search | fix | drop, ``type`` float | int | categorical, ``low``, ``high``, ``log``, ``choices``
(comma-separated text), ``value``, ``when``), ``algorithm`` (name and settings), ``termination``,
``workers``, ``warm_start``, ``seed`` (empty: a new one), ``early_stopping`` (the parent's, editable),
``guidance`` (``prior``: the searched rows keep their ranges and ``prior`` pulls towards what the analysis
found, ``trellis.search.prior``; ``bounds``: the rows' ranges are the walls) and ``prior`` (a ``prior:``
section, or None).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from trellis.search.config import ConfigError, SearchConfig, parse_config
from trellis.search.config.conditions import settle_conditions
from trellis.search.control.policy import ServerPolicy
from trellis.search.registry import ALGORITHMS
from trellis.search.space import round_outward

ACTIONS = ("search", "fix", "drop")
GUIDANCE = ("prior", "bounds")


def form_from_config(parent: Mapping[str, Any], best: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The form prefilled from a parent's stored config (``SearchConfig.to_dict()``); a fixed row's value
    defaults to the best trial's."""
    best = best or {}
    rows = []
    for name, spec in parent["space"].items():
        spec = spec if isinstance(spec, dict) else {"type": "fixed", "value": spec}
        row: dict[str, Any] = {"name": name, "when": spec.get("when"), "low": None, "high": None, "log": False}
        if spec.get("type") == "fixed":
            value = spec.get("value")
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            kind = _number_kind(value) if numeric else "categorical"
            row.update(action="fix", type=kind, value=value, choices=_text([value]) if kind == "categorical" else "")
        else:
            row.update(action="search", type=spec["type"], value=_short(best.get(name)))
            if spec["type"] == "categorical":
                row["choices"] = _text(spec["choices"])
            else:
                row.update(low=spec["low"], high=spec["high"], log=bool(spec.get("log")), choices="")
        rows.append(row)
    algorithm = dict(parent["algorithm"])
    return {
        "name": _refined_name(parent.get("name", "search")),
        "rows": rows,
        "algorithm": {"name": algorithm.pop("name"), "settings": {k: v for k, v in algorithm.items() if k != "seed"}},
        "termination": dict(parent.get("termination", {})),
        "workers": parent.get("executor", {}).get("workers", 1),
        "warm_start": ALGORITHMS.get(parent["algorithm"]["name"]) is not None
        and ALGORITHMS[parent["algorithm"]["name"]].learns_from_past,
        "seed": None,
        "early_stopping": parent.get("early_stopping"),
        "guidance": "prior",
        "prior": None,
    }


def _refined_name(name: str) -> str:
    return name if name.endswith("-refined") else f"{name}-refined"


def _number_kind(value: Any) -> str:
    return "int" if isinstance(value, int) else "float"


def _text(values: Iterable[Any]) -> str:
    return ", ".join(str(v) for v in values)


def _short(value: Any) -> Any:
    """A best trial's float as a person types it (6 significant digits, as a verdict's fix), not 17 digits."""
    return float(f"{value:.6g}") if isinstance(value, float) and math.isfinite(value) else value


def scalar(text: Any) -> Any:
    """A form field's text as the value it means: int, float, bool, None, or the text itself."""
    if not isinstance(text, str):
        return text
    t = text.strip()
    if t == "":
        return None
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    for kind in (int, float):
        try:
            return kind(t)
        except ValueError:
            pass
    return t


def _choices(text: Any) -> list[Any]:
    if isinstance(text, list):
        return text
    return [scalar(c) for c in str(text or "").split(",") if c.strip()]


def row_spec(row: Mapping[str, Any]) -> tuple[Any, list[tuple[str, str]]]:
    """One row as a config ``space`` entry, and the problems the parser cannot see (a fixed value's type)."""
    name, kind, when = row["name"], row.get("type"), row.get("when")
    problems: list[tuple[str, str]] = []
    if row.get("action") == "fix":
        value = scalar(row.get("value"))
        if value is None:
            problems.append((f"space.{name}.value", "a fixed parameter needs a value"))
        elif kind in ("int", "float") and (isinstance(value, bool) or not isinstance(value, int | float)):
            problems.append((f"space.{name}.value", f"must be a number for a {kind} parameter, got {value!r}"))
        elif kind == "int" and value != int(value):
            problems.append((f"space.{name}.value", f"must be a whole number for an int parameter, got {value!r}"))
        elif kind == "int":
            value = int(value)
        elif kind == "categorical" and row.get("choices") and value not in _choices(row.get("choices")):
            problems.append((f"space.{name}.value", f"must be one of {row.get('choices')}, got {value!r}"))
        spec: dict[str, Any] = {"type": "fixed", "value": value}
    elif kind == "categorical":
        spec = {"type": "categorical", "choices": _choices(row.get("choices"))}
    else:
        low, high = scalar(row.get("low")), scalar(row.get("high"))
        spec = {"type": kind, "low": low, "high": high, "log": bool(row.get("log"))}
    if when:
        spec["when"] = when
    return spec, problems


def config_from_form(
    parent: Mapping[str, Any], form: Mapping[str, Any], parent_id: str, new_seed: int
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The raw config a form asks for (parent's trial, tracking and budget kept), and the form's own
    problems. ``new_seed``: used unless the form names a seed, so a relaunch never replays its parent."""
    raw = copy.deepcopy(dict(parent))
    problems: list[tuple[str, str]] = []
    space: dict[str, Any] = {}
    for row in form.get("rows", []):
        if row.get("action") not in ACTIONS:
            problems.append((f"space.{row.get('name')}", f"action must be one of {', '.join(ACTIONS)}"))
            continue
        if row["action"] == "drop":
            continue
        space[row["name"]], row_problems = row_spec(row)
        problems += row_problems
    raw["space"], _ = settle_conditions(space)
    algorithm = form.get("algorithm") or {}
    seed = scalar(form.get("seed"))
    raw["algorithm"] = {"name": algorithm.get("name"), "seed": new_seed if seed is None else seed}
    raw["algorithm"].update({k: scalar(v) for k, v in (algorithm.get("settings") or {}).items()})
    raw["termination"] = {k: scalar(v) for k, v in (form.get("termination") or {}).items() if scalar(v) is not None}
    raw.pop("prior", None)  # the parent's prior was for the parent: a relaunch's comes from the form
    prior = (
        prior_for_rows(form.get("prior"), form.get("rows", [])) if form.get("guidance", "prior") == "prior" else None
    )
    if prior and prior.get("parameters") and spec_uses_prior(raw["algorithm"]["name"]):
        raw["prior"] = prior
    raw["executor"] = {k: v for k, v in dict(raw.get("executor", {})).items() if v is not None}
    raw["executor"]["workers"] = scalar(form.get("workers"))
    raw["name"] = form.get("name") or raw.get("name")
    raw["relaunched_from"] = parent_id
    raw["warm_start"] = bool(form.get("warm_start"))
    spec = ALGORITHMS.get(str(raw["algorithm"]["name"]))
    if spec is not None and not spec.learns_from_past:
        raw["warm_start"] = False  # the checkbox means "where the algorithm can"
    if spec is not None and spec.budgeted:
        raw.pop("early_stopping", None)  # budgeted algorithms stop trials themselves
    elif form.get("early_stopping"):
        raw["early_stopping"] = {k: scalar(v) for k, v in form["early_stopping"].items()}
    if form.get("trial"):  # only the allow-list decides whether this is accepted
        raw["trial"] = {"function": str(form["trial"])}
    return raw, problems


def spec_uses_prior(algorithm: Any) -> bool:
    spec = ALGORITHMS.get(str(algorithm))
    return spec is not None and spec.uses_prior


def prior_for_rows(prior: Any, rows: list[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The form's prior for the rows as they now are: a row fixed or dropped takes none, a region is clipped to
    the row's (edited) range or choices, and one left empty is dropped. None: no prior."""
    if not isinstance(prior, Mapping) or not isinstance(prior.get("parameters"), Mapping):
        return None
    by_name = {r.get("name"): r for r in rows if r.get("action") == "search"}
    parameters: dict[str, Any] = {}
    for name, entry in prior["parameters"].items():
        row = by_name.get(name)
        if row is None or not isinstance(entry, Mapping):
            continue
        if row.get("type") == "categorical":
            favoured = entry.get("choices") if isinstance(entry.get("choices"), list) else []
            choices = [c for c in _choices(row.get("choices")) if any(str(c) == str(k) for k in favoured)]
            if choices and len(choices) < len(_choices(row.get("choices"))):
                parameters[name] = {"choices": choices, "weight": entry.get("weight")}
            continue
        low, high = scalar(row.get("low")), scalar(row.get("high"))
        ends = (entry.get("value"), entry.get("value")) if "value" in entry else (entry.get("low"), entry.get("high"))
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high, *ends))
        if not numbers or low > high:
            continue
        a, b = max(ends[0], low), min(ends[1], high)
        if row.get("type") == "int" and a <= b:  # whole numbers inside the row's range and the region
            a, b = (math.ceil(a), math.floor(b)) if math.ceil(a) <= math.floor(b) else (round(a),) * 2
        if a <= b:
            region = {"value": a} if a == b else {"low": a, "high": b}
            parameters[name] = {**region, "weight": entry.get("weight")}
    out = {k: v for k, v in prior.items() if k != "parameters"}
    return {**out, "parameters": parameters}


def validate_launch(
    raw: Mapping[str, Any], form_problems: list[tuple[str, str]], policy: ServerPolicy, parent_trial: str
) -> tuple[SearchConfig | None, list[tuple[str, str]]]:
    """The config, or every problem as ``(key.path, reason)``: the form's, the server policy's (allow-list and
    caps) and the parser's (the same as ``trellis search validate``). A trial off the allow-list is refused
    before the parser looks for it: finding a module imports its package, so a name a request sent is never
    looked up unless it is allowed."""
    policy_problems = policy.problems(dict(raw), parent_trial)
    allowed = all(path != "trial" for path, _ in policy_problems)
    problems = [*form_problems, *policy_problems]
    config = None
    try:
        config = parse_config(raw, check_target=allowed)
    except ConfigError as exc:
        problems += [p for p in exc.problems if allowed or not p[0].startswith("trial")]
    return (config if not problems else None), problems


def config_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(key.path, old, new)`` for each leaf that differs (missing on one side: None)."""
    a, b = _flatten(old), _flatten(new)
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, Mapping):
        return {prefix: d}
    out: dict[str, Any] = {}
    for key, value in d.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, path))
        else:
            out[path] = value
    return out


def config_yaml(config: SearchConfig) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False)


# -- refinements ----------------------------------------------------------------------------------
def fill_from_space(
    form: Mapping[str, Any], space: Mapping[str, Any], dropped: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Searched rows take the ranges of a config-format ``space`` (``refined_space`` of the verdicts); a
    ``fixed`` spec fixes its row, a name in ``dropped`` drops it (its condition no longer holds); other rows
    are left as they are. A row keeps its own type and scale: a refinement never turns a log parameter linear
    or an int a float (an int row's bounds are rounded outwards). The ranges are then the walls: guidance
    ``bounds``, no prior."""
    out = copy.deepcopy(dict(form))
    out.update(guidance="bounds", prior=None)
    for row in out["rows"]:
        spec = space.get(row["name"])
        if row["action"] != "search":
            continue
        if row["name"] in (dropped or {}):
            row["action"] = "drop"
        elif not isinstance(spec, Mapping):
            continue
        elif spec.get("type") == "fixed":
            row.update(action="fix", value=spec.get("value"))
        elif "when" in row and (spec.get("when") or None) != (row.get("when") or None):
            row["when"] = spec.get("when")
        if row["action"] != "search" or not isinstance(spec, Mapping):
            continue
        if spec.get("type") == "categorical" and row["type"] == "categorical":
            row["choices"] = _text(spec["choices"])
        elif spec.get("type") in ("float", "int") and row["type"] in ("float", "int"):
            low, high = spec["low"], spec["high"]
            if row["type"] == "int":
                low, high = math.floor(low), math.ceil(high)
            if row.get("log") and not low > 0:
                continue  # a log row cannot take a range reaching 0: its own range stays
            row.update(low=low, high=high)
    return out


def fill_with_prior(
    form: Mapping[str, Any], space: Mapping[str, Any], dropped: Mapping[str, str], prior: Mapping[str, Any]
) -> dict[str, Any]:
    """A prior-guided relaunch (``trellis.search.analysis.refine.prior_from_verdicts``): the rows take the
    ``space`` (the parent's ranges, widened where a verdict widens) and the form the ``prior``."""
    out = fill_from_space(form, space, dropped)
    out.update(guidance="prior", prior=copy.deepcopy(dict(prior)))
    return out


def fill_from_runs(form: Mapping[str, Any], selected: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Searched rows take the range of the selected runs' values (the brushed parallel coordinates):
    numbers their min and max (left alone when they all share one value), categories the values seen."""
    out = copy.deepcopy(dict(form))
    for row in out["rows"]:
        values = [
            scalar(p[row["name"]]) if isinstance(p[row["name"]], str) else p[row["name"]]
            for p in selected
            if p.get(row["name"]) is not None
        ]
        if row["action"] != "search" or not values:
            continue
        if row["type"] == "categorical":
            order = _choices(row["choices"])
            seen = [c for c in order if c in values] or sorted(set(values), key=str)
            row["choices"] = _text(seen)
            continue
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if numbers and min(numbers) < max(numbers):
            low, high = min(numbers), max(numbers)
            if row["type"] == "int":
                row.update(low=math.floor(low), high=math.ceil(high))
            else:  # 4 significant digits, rounded outwards: every selected run stays inside
                row.update(zip(("low", "high"), round_outward(low, high)))
    return out
