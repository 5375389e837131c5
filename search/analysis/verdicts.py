"""One verdict per parameter (keep, narrow, widen or fix): the single piece of advice every page and command reads.

``decide`` weighs, per parameter, the global importance (its total fANOVA share: its own and every pair it is
part of, with the spread over trees), the local effect near the best runs (the suggested bounds' region and its
"no effect" test), where the best runs sit against the searched range, and how sure the analysis is. In order:

1. **fix** (at the best run's own value): the analysis is trusted, the total share plus its spread is under
   ``FIX_SHARE``, the parameter shows no effect near the best runs either, the best run set it (never a stand-in
   for runs that did not), and no other parameter's condition names it.
2. **widen** (one side, log-aware, never past a floor: 0 for a non-negative range, 1 for a count, above 0 on a
   log scale): the best run and at least half of the best few lie in the outer tenth of a numeric range on one
   side. Needs ``EDGE_MIN_RUNS`` runs, not a trusted forest: an edge is read off the runs themselves.
3. **narrow**: the analysis is trusted and the region near the best runs is narrower than the range: its extent
   (rounded outwards, always holding the best run), the choices found in it, or, for a parameter searched at a
   few values, the values in it. Several separate good regions: the span of all of them, and the note says so.
4. **keep**: otherwise, with the reason (untrusted, no preference, several regions, set by few runs...).

Pure and plain: ``Verdict`` reads back from its ``to_plain`` form.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from trellis.search import space as scale
from trellis.search.analysis.bounds import SuggestedBounds, untrusted_reason
from trellis.search.analysis.design import AnalysisData, Axis
from trellis.search.analysis.fanova import Importance
from trellis.search.analysis.plain import shown, value_to_plain

ACTIONS = ("keep", "narrow", "widen", "fix")
FIX_SHARE = 0.05  # total share + its spread under this: the parameter may be fixed (never one with share >= 0.1)
EDGE_MIN_RUNS = 8  # fewer runs and "the best" is luck, not a trend
EDGE_TOP_FRACTION, EDGE_TOP_MIN = 0.1, 3  # the best tenth of the runs, at least three
EDGE_BAND = 0.1  # "at the edge": within the outer tenth of the range, on the parameter's own scale
EDGE_SHARE = 0.5  # at least half of the best runs there (a uniform sampler puts a tenth there by chance)
WIDEN_SHARE = 0.5  # widen by half the current range, on the parameter's scale
KEEP_BEST = 0.03  # a narrowed range holds the best 3% of the runs (at least three), not only the forest's region
KEEP_SPAN = 0.9  # a region over this much of the range (in [0, 1]) is no narrowing worth a relaunch: keep
DIGITS = 4  # significant digits of a suggested bound


@dataclass(frozen=True)
class Verdict:
    """What to do with one parameter in the next search, and why (one sentence with the numbers)."""

    name: str
    action: str  # keep | narrow | widen | fix
    why: str
    low: float | None = None  # numeric: the next range (narrow, widen; keep: the searched one)
    high: float | None = None
    choices: tuple[Any, ...] | None = None  # a categorical, or a numeric searched at a few values: the next set
    side: str | None = None  # widen: "low" or "high"
    value: Any = None  # fix: the best run's value
    share: float | None = None  # total importance share (own + pairs), None when not computed
    weight: float = 0.0  # how strongly the analysis stands behind it, 0..1 (a prior's pull reads it)
    regions: tuple[tuple[float, float], ...] = ()  # separate good regions (original units), when several
    runs: tuple[str, ...] = ()  # the runs that say so (widen: the best runs at the edge; fix: the best run)

    def to_plain(self) -> dict[str, Any]:
        out = asdict(self)
        out["choices"] = None if self.choices is None else [value_to_plain(c) for c in self.choices]
        out["value"] = value_to_plain(self.value)
        out["regions"] = [[float(a), float(b)] for a, b in self.regions]
        out["runs"] = [str(r) for r in self.runs]
        return out

    @classmethod
    def from_plain(cls, d: Mapping[str, Any]) -> Verdict:
        if d["action"] not in ACTIONS:
            raise ValueError(f"unknown verdict {d['action']!r}")
        return cls(
            str(d["name"]),
            str(d["action"]),
            str(d["why"]),
            None if d["low"] is None else float(d["low"]),
            None if d["high"] is None else float(d["high"]),
            None if d["choices"] is None else tuple(d["choices"]),
            None if d["side"] is None else str(d["side"]),
            d["value"],
            None if d["share"] is None else float(d["share"]),
            float(d["weight"]),
            tuple((float(a), float(b)) for a, b in d["regions"]),
            tuple(str(r) for r in d.get("runs", [])),
        )

    @property
    def headline(self) -> str:
        """The verdict in a few words: ``narrow to [0.001, 0.01]``, ``fix at 64``, ``widen high to 0.3``."""
        if self.action == "fix":
            return f"fix at {shown(self.value)}"
        if self.action == "widen":
            bound = self.high if self.side == "high" else self.low
            return f"widen {self.side} side to {shown(bound)}"
        if self.action == "narrow":
            if self.choices is not None:
                return "narrow to {" + ", ".join(shown(c) for c in self.choices) + "}"
            return f"narrow to [{shown(self.low)}, {shown(self.high)}]"
        return "keep"


def verdicts_to_plain(verdicts: Mapping[str, Verdict]) -> list[dict[str, Any]]:
    return [v.to_plain() for v in verdicts.values()]


def verdicts_from_plain(rows: list[Mapping[str, Any]]) -> dict[str, Verdict]:
    return {str(r["name"]): Verdict.from_plain(r) for r in rows}


def total_shares(importance: Importance | None) -> dict[str, tuple[float, float]]:
    """Per parameter, its total share (own + every pair it is in) and the spread of its own share."""
    if importance is None:
        return {}
    return {
        n: (
            importance.single_mean[n] + sum(m for pair, m in importance.pair_mean.items() if n in pair),
            importance.single_std.get(n, 0.0),
        )
        for n in importance.names
    }


def decide(
    data: AnalysisData,
    bounds: SuggestedBounds,
    importance: Importance | None,
    trials: pd.DataFrame,
    recorded: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Verdict]:
    """One verdict per analysed parameter (``data.axes``), from the analysis of ``trials`` (the runs ``data``
    was prepared from: their raw values say which runs set a parameter and the best run's own value)."""
    recorded = recorded or {}
    n = len(data.y)
    order = np.argsort(-data.y if data.direction == "max" else data.y, kind="stable")  # ties: by run id
    best = int(order[0])
    top = order[: max(EDGE_TOP_MIN, math.ceil(EDGE_TOP_FRACTION * n))]
    rows = trials.drop_duplicates("run_id").set_index("run_id").reindex(data.run_ids)
    trusted = untrusted_reason(bounds) is None
    shares = total_shares(importance if trusted else None)
    parents = {p for spec in recorded.values() if isinstance(spec, Mapping) for p in (spec.get("when") or {})}
    weight = max(0.0, min(1.0, bounds.r2 or 0.0)) if trusted else 0.0
    out = {}
    for i, axis in enumerate(data.axes):
        column = rows.get(f"params.{axis.name}")
        raw = column.to_numpy() if column is not None else np.full(n, None, dtype=object)
        present = pd.notna(raw)
        context = _Context(data, bounds, axis, i, raw, present, best, top, shares.get(axis.name), trusted, weight)
        out[axis.name] = _verdict(context, axis.name in parents)
    return out


@dataclass
class _Context:
    data: AnalysisData
    bounds: SuggestedBounds
    axis: Axis
    column: int
    raw: np.ndarray
    present: np.ndarray
    best: int
    top: np.ndarray
    share: tuple[float, float] | None
    trusted: bool
    weight: float

    def share_text(self) -> str:
        if self.share is None:
            return ""
        return f"total importance {self.share[0]:.2f} (± {self.share[1]:.2f})"


def _verdict(c: _Context, is_parent: bool) -> Verdict:
    axis, name = c.axis, c.axis.name
    share = None if c.share is None else float(c.share[0])
    flat = name in c.bounds.unimportant
    regions = _regions(c)
    why_untrusted = None if c.trusted else untrusted_reason(c.bounds)
    negligible = c.share is not None and c.share[0] + c.share[1] < FIX_SHARE
    if c.trusted and flat and negligible and not is_parent:
        if not c.present[c.best]:
            return _keep(c, f"{name}: no effect ({c.share_text()}), but the best run did not set it: keep", share)
        value = _typed(c.raw[c.best], axis)
        fit = f"forest R² {c.bounds.r2:.2f}" if c.bounds.r2 is not None else "forest R² n/a"
        fit = "exact ANOVA of a balanced grid" if c.bounds.exact else fit
        why = f"{name}: no measurable effect ({c.share_text()}, {fit}; none near the best runs either): fix it"
        runs = (c.data.run_ids[c.best],)
        return Verdict(name, "fix", why, value=value, share=share, weight=c.weight, runs=runs)
    edge = None if negligible or axis.kind == "categorical" or axis.values else _edge(c)
    if edge is not None:
        return edge
    if why_untrusted:
        return _keep(c, f"{name}: keep its range ({why_untrusted})", share)
    if flat or (c.share is not None and c.share[0] < FIX_SHARE and is_parent):
        where = _regions_text(regions)
        matters = share is not None and share >= FIX_SHARE
        reason = "no single good region near the best runs" if matters else "no preference near the best runs"
        reason = "other parameters' conditions name it" if is_parent and not flat else reason
        matters = f"; it matters globally ({c.share_text()})" if matters else ""
        return _keep(c, f"{name}: {reason}{matters}{where}: keep its range", share, regions)
    return _narrowed(c, share, regions)


def _keep(c: _Context, why: str, share: float | None, regions=()) -> Verdict:
    axis = c.axis
    if axis.kind == "categorical" or axis.values:
        return Verdict(axis.name, "keep", why, choices=tuple(axis.values or axis.categories), share=share)
    return Verdict(axis.name, "keep", why, low=axis.low, high=axis.high, share=share, regions=tuple(regions))


def _narrowed(c: _Context, share: float | None, regions) -> Verdict:
    axis, name = c.axis, c.axis.name
    lo, hi = c.bounds.unit_ranges[name]
    best_unit = float(c.data.X[c.best, c.column])
    if axis.kind == "categorical" or axis.values:
        options = list(axis.values or axis.categories)
        kept = c.bounds.categories.get(name)  # the choices (or, from a grid, the values) in the region
        kept = list(kept) if kept is not None else _values_in(axis, lo, hi)
        if c.present[c.best]:
            best_value = _typed(c.raw[c.best], axis)
            kept = kept if any(str(k) == str(best_value) for k in kept) else [*kept, best_value]
        kept = [o for o in options if any(str(o) == str(k) for k in kept)]
        if not kept or len(kept) >= len(options):
            return _keep(
                c, f"{name}: every value has good runs ({c.share_text() or 'importance n/a'}): keep them", share
            )
        why = f"{name}: the good runs use {len(kept)} of its {len(options)} values ({c.share_text()}): search those"
        return Verdict(name, "narrow", why, choices=tuple(kept), share=share, weight=c.weight)
    if c.present[c.best]:
        lo, hi = min(lo, best_unit), max(hi, best_unit)
    # The forest's region can sit beside the optimum (a leaf is a box of a few runs): the best few runs
    # themselves are kept inside too.
    few = [i for i in c.top[: max(EDGE_TOP_MIN, math.ceil(KEEP_BEST * len(c.data.y)))] if c.present[i]]
    if few:
        units = c.data.X[few, c.column]
        lo, hi = min(lo, float(units.min())), max(hi, float(units.max()))
    if hi - lo >= KEEP_SPAN:
        extent = "its whole" if hi - lo >= 1.0 else "nearly all its"
        why = f"{name}: good runs across {extent} range ({c.share_text()}{_regions_text(regions)}): keep it"
        return _keep(c, why, share, regions)
    low, high = _rounded(axis, axis.from_unit(lo), axis.from_unit(hi))
    span = f"[{shown(low)}, {shown(high)}]"
    why = f"{name}: the region near the best runs spans {span} ({c.share_text()}{_regions_text(regions)})"
    return Verdict(name, "narrow", why, low=low, high=high, share=share, weight=c.weight, regions=tuple(regions))


def _edge(c: _Context) -> Verdict | None:
    """Widen when the best run and at least half of the best few sit in the outer tenth on one side."""
    axis, name = c.axis, c.axis.name
    if len(c.data.y) < EDGE_MIN_RUNS or not c.present[c.best]:
        return None
    top = [i for i in c.top if c.present[i]]
    unit = c.data.X[top, c.column]
    best_unit = c.data.X[c.best, c.column]
    for side, near, best_near in (
        ("high", unit >= 1.0 - EDGE_BAND, best_unit >= 1.0 - EDGE_BAND),
        ("low", unit <= EDGE_BAND, best_unit <= EDGE_BAND),
    ):
        share = float(near.sum()) / max(len(near), 1)
        if not best_near or share < EDGE_SHARE:
            continue
        new = widened(axis.kind, axis.low, axis.high, axis.log, side)
        edge = axis.high if side == "high" else axis.low
        if new == edge:
            continue  # already at its floor: nothing to widen
        low, high = (axis.low, new) if side == "high" else (new, axis.high)
        best = shown(_typed(c.raw[c.best], axis))
        why = (
            f"{name}: {int(near.sum())} of the {len(near)} best runs (the best too, at {best}) "
            f"lie in the {side}est {EDGE_BAND:.0%} of its {'log ' if axis.log else ''}range [{shown(axis.low)}, "
            f"{shown(axis.high)}]: the optimum may lie beyond {shown(edge)}; widen to {shown(new)}"
        )
        runs = tuple(c.data.run_ids[i] for i, at in zip(top, near) if at)
        share_total = None if c.share is None else float(c.share[0])
        return Verdict(name, "widen", why, low, high, side=side, share=share_total, weight=share, runs=runs)
    return None


def widened(kind: str, low: float, high: float, log: bool, side: str) -> float | int:
    """The new bound of ``side``: the range extended by ``WIDEN_SHARE`` of its width on its own scale; a
    non-negative range stays at or above 0, a count that starts at 1 or more at or above 1."""
    if log:
        a, b = math.log(low), math.log(high)
        step = WIDEN_SHARE * (b - a)
        value = math.exp(b + step) if side == "high" else math.exp(a - step)
    else:
        step = WIDEN_SHARE * (high - low)
        value = high + step if side == "high" else low - step
    if kind == "int":
        value = math.ceil(value) if side == "high" else math.floor(value)
        value = max(1, value) if log else value
    else:
        value = float(f"{value:.3g}")
    if side == "low" and low >= 0:
        value = max(value, 1 if kind == "int" and low >= 1 else 0)
    return int(value) if kind == "int" else float(value)


def _rounded(axis: Axis, low: float, high: float) -> tuple[float, float]:
    if axis.kind == "int":
        return float(math.floor(low + 1e-9)), float(math.ceil(high - 1e-9))
    low, high = scale.round_outward(low, high, DIGITS)
    return max(low, axis.low), min(high, axis.high)


def _values_in(axis: Axis, lo: float, hi: float) -> list[Any]:
    units = scale.to_unit(np.asarray(axis.values, dtype=float), axis.low, axis.high, axis.log)
    return [v for v, u in zip(axis.values or [], units) if lo - 1e-9 <= u <= hi + 1e-9]


def _regions(c: _Context) -> list[tuple[float, float]]:
    """Separate good regions along this axis (original units), when there are several; else empty."""
    units = c.bounds.modes.get(c.axis.name) if c.axis.kind != "categorical" else None
    if not units or len(units) < 2:
        return []
    return [(c.axis.from_unit(a), c.axis.from_unit(b)) for a, b in units]


def _regions_text(regions) -> str:
    if len(regions) < 2:
        return ""
    parts = ", ".join(f"[{shown(a)}, {shown(b)}]" for a, b in regions)
    return f"; good runs in {len(regions)} separate regions: {parts}"


def _typed(value: Any, axis: Axis) -> Any:
    if axis.kind == "categorical":
        return next((c for c in axis.categories if str(c) == str(value)), value)
    number = float(value)
    if axis.kind == "int" or (axis.values and all(isinstance(v, int) for v in axis.values)):
        return int(round(number))
    return float(f"{number:.6g}")
