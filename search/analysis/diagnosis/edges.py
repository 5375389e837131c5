"""Rule ``range_edge``: the best values of a parameter sit at an edge of its range → widen that side.

The best trials are placed on the parameter's own scale ([0, 1] of its range, log parameters in log space).
When the best trial and at least half of the best few lie in the outer tenth on one side, the optimum is
likely beyond it: the search never saw what lies there.
"""

from __future__ import annotations

import math

import numpy as np

from trellis.search import space
from trellis.search.analysis.diagnosis.base import Finding, Rule, SearchFacts, nice, shown

EDGE_MIN_TRIALS = 8  # fewer completed trials and "the best" is luck, not a trend
EDGE_TOP_FRACTION = 0.1  # the best tenth of the trials ...
EDGE_TOP_MIN = 3  # ... but at least three, so one lucky trial at the edge is not enough
EDGE_BAND = 0.1  # "at the edge": within the outer tenth of the range, on the parameter's own scale
EDGE_SHARE = 0.5  # at least half of the best trials there (a uniform sampler puts a tenth there by chance)
WIDEN_SHARE = 0.5  # widen by half the current range, on the parameter's scale: far enough to see past the edge


def range_edges(facts: SearchFacts) -> list[Finding]:
    finals = facts.finals()
    if len(finals) < EDGE_MIN_TRIALS:
        return []
    n_top = max(EDGE_TOP_MIN, math.ceil(EDGE_TOP_FRACTION * len(finals)))
    top = (finals * facts.sign).sort_values(ascending=False).index[:n_top]
    rows = facts.trials.loc[top]
    out = []
    for name, spec in facts.numeric_space().items():
        col = f"params.{name}"
        if col not in rows:
            continue
        low, high, log = float(spec["low"]), float(spec["high"]), bool(spec.get("log"))
        values = rows[col].to_numpy(dtype=float)
        unit = space.to_unit(values, low, high, log)
        if not np.isfinite(unit[0]):
            continue  # the best trial had no value (an inactive conditional parameter)
        for side, near in (("high", unit >= 1.0 - EDGE_BAND), ("low", unit <= EDGE_BAND)):
            share = float(near.sum()) / len(near)
            if not near[0] or share < EDGE_SHARE:
                continue
            new = _floored(spec, side, _widened(spec, side))
            edge = high if side == "high" else low
            if new == edge:
                continue  # already at its floor: nothing to widen
            scale = "log " if log else ""
            out.append(
                Finding(
                    rule="range_edge",
                    search_id=facts.search_id,
                    severity="warning",
                    title=f"The best {name} values sit at the {side} edge of its range",
                    evidence=(
                        f"{int(near.sum())} of the {len(near)} best trials (the best too, {name} = "
                        f"{shown(values[0])}) have {name} within the {side}est {EDGE_BAND:.0%} of its {scale}range "
                        f"[{shown(low)}, {shown(high)}]: the optimum may lie beyond {shown(edge)}."
                    ),
                    fix=(
                        f"Widen the {side} side of {name} from {shown(edge)} to {shown(new)} (half the range again, "
                        f"on its {scale or 'linear '}scale), if the trial accepts such values."
                    ),
                    config_change={f"space.{name}.{side}": new},
                    run_ids=tuple(str(r) for r in rows.loc[near, "run_id"]),
                )
            )
    return out


def _floored(spec: dict, side: str, new: float | int) -> float | int:
    """A non-negative range is not widened below zero (a rate, a probability), nor a whole-number range that
    starts at 1 or more below 1 (a count of layers or units)."""
    if side != "low" or float(spec["low"]) < 0:
        return new
    return max(new, 1 if spec.get("type") == "int" and float(spec["low"]) >= 1 else 0)


def _widened(spec: dict, side: str) -> float | int:
    """The new bound: the range extended by ``WIDEN_SHARE`` of its width on its own scale."""
    low, high, log = float(spec["low"]), float(spec["high"]), bool(spec.get("log"))
    if log:
        a, b = math.log(low), math.log(high)
        step = WIDEN_SHARE * (b - a)
        value = math.exp(b + step) if side == "high" else math.exp(a - step)
    else:
        step = WIDEN_SHARE * (high - low)
        value = high + step if side == "high" else low - step
    if spec.get("type") == "int":
        value = math.ceil(value) if side == "high" else math.floor(value)
        if log:
            value = max(1, int(value))
        return int(value)
    return nice(value)


RANGE_EDGE = Rule("range_edge", "the best values sit at a range edge", range_edges)
