"""The next search's ``space`` written from the verdicts (``trellis.search.analysis.verdicts``), as a config
``space`` mapping and as commented YAML: what the space page shows, ``trellis bounds`` prints and the relaunch
form fills in. The verdicts decide; this module only writes them down.

A fixed parameter becomes a constant, a narrowed set a ``categorical``, a range keeps its recorded type, scale
and condition. Conditions stay consistent (``trellis.search.config.conditions``), and a dropped parameter is said in a
comment.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import yaml

from trellis.search.analysis.design import AnalysisData
from trellis.search.analysis.verdicts import DIGITS, Verdict
from trellis.search.config.conditions import settle_conditions
from trellis.search.space import round_outward


def refined_space(
    verdicts: Mapping[str, Verdict], data: AnalysisData, original: Mapping[str, Mapping[str, Any]] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The ``space`` the verdicts ask for, and the parameters dropped (name -> why)."""
    space: dict[str, Any] = {name: dict(spec) for name, spec in (original or {}).items() if isinstance(spec, dict)}
    space.update({name: spec for name, spec in (original or {}).items() if not isinstance(spec, dict)})
    for axis in data.axes:
        verdict = verdicts.get(axis.name)
        if verdict is None:
            continue
        spec = dict(space.get(axis.name, {})) if isinstance(space.get(axis.name), dict) else {}
        when = {"when": spec["when"]} if "when" in spec else {}
        if verdict.action == "fix":
            space[axis.name] = {"type": "fixed", "value": verdict.value, **when}
        elif verdict.choices is not None or axis.kind == "categorical" or axis.values:
            choices = verdict.choices if verdict.choices is not None else axis.values or axis.categories
            space[axis.name] = {"type": "categorical", "choices": list(choices), **when}
        else:
            kind = spec.get("type") if spec.get("type") in ("float", "int") else axis.kind
            kind = kind if kind in ("float", "int") else "float"
            low, high = _ends(verdict, spec, axis.low, axis.high)
            if kind == "int":
                low, high = math.floor(low), math.ceil(high)
            log = bool(spec["log"]) if "log" in spec else axis.log
            space[axis.name] = {"type": kind, "low": low, "high": high, "log": log and low > 0, **when}
    return settle_conditions(space)


def _ends(verdict: Verdict, spec: Mapping[str, Any], low: float, high: float) -> tuple[float, float]:
    """A kept range is the recorded one; a narrowed one stays inside it; a widened one leaves it on one side."""
    recorded = isinstance(spec.get("low"), int | float) and isinstance(spec.get("high"), int | float)
    # No recorded range (another tool's runs): the observed one, rounded outwards to a bound a person can read.
    outer_low, outer_high = (spec["low"], spec["high"]) if recorded else round_outward(low, high, DIGITS)
    if not recorded and low > 0 and outer_low <= 0:
        outer_low = low
    if verdict.action == "keep" or verdict.low is None or verdict.high is None:
        return outer_low, outer_high
    if verdict.action == "widen":
        return (outer_low, verdict.high) if verdict.side == "high" else (verdict.low, outer_high)
    new_low, new_high = max(verdict.low, outer_low), min(verdict.high, outer_high)
    return (new_low, new_high) if new_low < new_high else (outer_low, outer_high)


def prior_from_verdicts(
    verdicts: Mapping[str, Verdict],
    data: AnalysisData,
    original: Mapping[str, Mapping[str, Any]] | None = None,
    strength: float | None = None,
) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """A prior-guided relaunch: the ``space`` (the original, widened where a verdict widens: a prior cannot
    reach past a range), the parameters dropped, and the ``prior:`` section (``trellis.search.prior``) that
    pulls towards what the verdicts found, each with the verdict's own weight (the forest's R²). Narrow and fix
    pull; widen only makes room (a few best runs at an edge say the optimum *may* lie beyond, not where: TPE's
    own model, told every parent trial, reaches past the edge from those runs); keep adds nothing. Nothing is
    cut from the space."""
    walls = {n: v if v.action == "widen" else replace(v, action="keep", choices=None) for n, v in verdicts.items()}
    space, dropped = refined_space(walls, data, original)
    parameters: dict[str, Any] = {}
    for name, verdict in verdicts.items():
        spec = space.get(name)
        if not isinstance(spec, Mapping) or verdict.action not in ("narrow", "fix") or verdict.weight <= 0:
            continue
        entry = _prior_entry(verdict, spec)
        if entry is not None:
            parameters[name] = {**entry, "weight": round(float(min(1.0, verdict.weight)), 4)}
    prior: dict[str, Any] = {"parameters": parameters}
    if strength is not None:
        prior["strength"] = strength
    return space, dropped, prior


def _prior_entry(verdict: Verdict, spec: Mapping[str, Any]) -> dict[str, Any] | None:
    """The favoured region of one verdict inside ``spec`` (the relaunch's range), or None."""
    if spec.get("type") == "categorical":
        choices = list(spec["choices"])
        favoured = [verdict.value] if verdict.action == "fix" else list(verdict.choices or ())
        favoured = [c for c in choices if any(str(c) == str(f) for f in favoured)]
        return {"choices": favoured} if favoured and len(favoured) < len(choices) else None
    if spec.get("type") not in ("float", "int"):
        return None
    low, high = float(spec["low"]), float(spec["high"])
    if spec.get("type") == "int":
        entry = _prior_entry(verdict, {**spec, "type": "float"})  # the region, then whole numbers outwards
        if entry is None or "value" in entry:
            return None if entry is None else {"value": int(round(entry["value"]))}
        return {"low": math.floor(entry["low"]), "high": math.ceil(entry["high"])}
    if verdict.action == "fix":
        value = verdict.value
        ok = isinstance(value, int | float) and not isinstance(value, bool) and low <= value <= high
        return {"value": value} if ok else None
    ends = (min(verdict.choices), max(verdict.choices)) if verdict.choices else (verdict.low, verdict.high)
    if ends[0] is None or ends[1] is None:
        return None
    a, b = max(float(ends[0]), low), min(float(ends[1]), high)
    return {"low": a, "high": b} if a <= b and (a, b) != (low, high) else None


def refined_yaml(
    verdicts: Mapping[str, Verdict], data: AnalysisData, original: Mapping[str, Mapping[str, Any]] | None = None
) -> str:
    """The refined ``space`` as YAML, each analysed parameter under a comment with its verdict and why."""
    space, dropped = refined_space(verdicts, data, original)
    text = yaml.safe_dump({"space": space}, sort_keys=False)
    lines = []
    for line in text.splitlines(keepends=True):
        name = line.strip().split(":", 1)[0]
        if line.startswith("  ") and not line.startswith("   ") and name in verdicts:
            lines.append(f"  # {verdicts[name].action}: {verdicts[name].why}\n")
        lines.append(line)
    for name, why in dropped.items():
        lines.append(f"  # {name}: dropped: {why}\n")
    return "".join(lines)
