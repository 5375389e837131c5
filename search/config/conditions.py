"""Conditions (``when``) kept consistent after a space is refined, by the form or by the verdicts: the one
place that decides which conditional parameters still exist."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def settle_conditions(space: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """``space`` with its conditions consistent with what the parents now take, and the parameters dropped
    (name -> why): a condition on a narrowed parent keeps only the values still searched; a parameter whose
    parent no longer takes any of its values (or is gone) is dropped; a condition on a parent fixed at an
    allowed value always holds and goes."""
    space = dict(space)
    dropped: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for name, spec in list(space.items()):
            if not isinstance(spec, dict) or not spec.get("when"):
                continue
            when = dict(spec["when"])
            for parent, allowed in spec["when"].items():
                allowed = allowed if isinstance(allowed, list) else [allowed]
                parent_spec = space.get(parent)
                if parent not in space:
                    dropped[name] = f"its condition's parameter {parent} is gone"
                    break
                taken = _values_taken(parent_spec)
                if taken is None:
                    continue
                still = [a for a in allowed if any(str(a) == str(t) for t in taken)]
                if not still:
                    shown = ", ".join(map(str, taken))
                    dropped[name] = (
                        f"it exists only when {parent} is {_one_of(allowed)}, and {parent} now takes {shown}"
                    )
                    break
                if len(taken) == 1:
                    when.pop(parent)  # the parent is fixed at an allowed value: the condition always holds
                elif still != allowed:
                    when[parent] = still if len(still) > 1 else still[0]
            if name in dropped:
                del space[name]
                changed = True
            elif when != spec["when"]:
                space[name] = {k: v for k, v in spec.items() if k != "when"} | ({"when": when} if when else {})
                changed = True
    return space, dropped


def _values_taken(spec: Any) -> list[Any] | None:
    if not isinstance(spec, dict):
        return [spec]  # a bare constant
    if spec.get("type") == "fixed":
        return [spec.get("value")]
    if spec.get("type") == "categorical":
        return list(spec.get("choices") or [])
    return None  # a range: conditions on it are not about its values


def _one_of(values: list[Any]) -> str:
    return str(values[0]) if len(values) == 1 else "one of " + ", ".join(map(str, values))
