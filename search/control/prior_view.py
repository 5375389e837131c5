"""What the relaunch form's prior will do, per parameter (pure, no Dash): its density over the row's range, how
strongly it pulls (``trellis.search.prior.pull``), and the parent's runs beside it. ``trellis.layouts.prior_view``
draws it."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from trellis.search.config.problems import Problems
from trellis.search.config.space_parse import parse_space
from trellis.search.control.relaunch import prior_for_rows, row_spec
from trellis.search.prior import ParameterPrior, density_curve, few_levels, pull
from trellis.search.space import Categorical, Param


class PriorCurve(NamedTuple):
    name: str
    kind: str  # float | int | categorical | levels (an int with few values, drawn value by value)
    log: bool
    x: list[Any]  # original units (a categorical: its choices)
    density: list[float]  # per unit of the range on its scale (1 everywhere: no pull); a categorical: p * K
    pull: float  # 0 (none) .. 1
    weight: float  # the prior's trust weight for this parameter (0: none)
    region: tuple[Any, ...] | None  # the favoured region (low, high) or choices; None: no prior
    runs: list[Any]  # the parent's values of this parameter


def _param(row: Mapping[str, Any]) -> Param | None:
    """The searched row as the parser reads it (its condition aside), or None when its cells do not make a
    parameter (the form's preview says why)."""
    spec, problems = row_spec(row)
    spec = {k: v for k, v in spec.items() if k != "when"} if isinstance(spec, dict) else spec
    name = str(row.get("name"))
    space = parse_space({name: spec}, Problems())
    return None if problems or space is None or name not in space else space[name]


def prior_view_info(
    rows: Iterable[Mapping[str, Any]], prior: Any, runs: Mapping[str, Iterable[Any]] | None = None
) -> list[PriorCurve]:
    """One curve per searched row, in the form's order: the prior as the launch would take it (clipped to the
    rows as edited, ``prior_for_rows``), uniform where it says nothing."""
    rows = [r for r in rows if r.get("action") == "search"]
    plain = (prior_for_rows(prior, rows) or {}).get("parameters", {})
    out = []
    for row in rows:
        param = _param(row)
        if param is None:
            continue
        entry = plain.get(param.name)
        favoured = _entry(param, entry) if isinstance(entry, Mapping) else None
        x, density = density_curve(favoured, param)
        values = [v for v in (runs or {}).get(param.name, []) if v is not None and not _nan(v)]
        region = None
        if favoured is not None:
            region = favoured.choices if favoured.choices is not None else (favoured.low, favoured.high)
        out.append(
            PriorCurve(
                param.name,
                "levels" if few_levels(param) else param.kind,
                bool(getattr(param, "log", False)),
                x,
                density,
                pull(favoured, param),
                favoured.weight if favoured is not None else 0.0,
                region,
                values,
            )
        )
    return out


def _entry(param: Param, entry: Mapping[str, Any]) -> ParameterPrior | None:
    weight = entry.get("weight")
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight <= 1:
        return None
    if isinstance(param, Categorical):
        return ParameterPrior(param.name, float(weight), choices=tuple(entry.get("choices") or ()))
    low = entry.get("value", entry.get("low"))
    high = entry.get("value", entry.get("high"))
    return ParameterPrior(param.name, float(weight), low=float(low), high=float(high))


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
