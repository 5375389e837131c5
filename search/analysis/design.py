"""From runs to the design matrix that importance and bounds work on.

Every parameter is mapped to [0, 1] on its own scale: log parameters in log space, categoricals as equal
slices ((code + 0.5) / k), over the search space's bounds where a Trellis search (or Optuna) recorded them (the
measure fANOVA integrates over), else over the values seen, on the scale and type they were sampled on
(``trellis.tracking.foreign_spaces``: log when the values look uniform in log space, int when logged as integers; a
linear range whose smallest value lies near 0 starts at 0). Parameters constant over the chosen runs
carry no information and are left out; missing values (inactive conditional parameters, runs of
another tool) sit at the low end and are counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from trellis.search import space
from trellis.search.analysis.plain import array_from_plain, array_to_plain, value_to_plain
from trellis.tracking.foreign_spaces import low_end
from trellis.tracking.reader import RunTable, spaces_of


@dataclass
class Axis:
    name: str
    kind: str  # "float" | "int" | "categorical"
    low: float = 0.0
    high: float = 1.0
    log: bool = False
    categories: list[Any] = field(default_factory=list)
    values: list[float] | None = None  # a number searched at a few values (a grid, a set of choices): those

    def to_unit(self, values: np.ndarray | pd.Series) -> np.ndarray:
        if self.kind == "categorical":
            index = {str(c): i for i, c in enumerate(self.categories)}
            codes = np.array([index.get(str(v), -1) for v in values], dtype=float)
            return np.where(codes < 0, np.nan, (codes + 0.5) / len(self.categories))
        v = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=float)
        return np.clip(space.to_unit(v, self.low, self.high, self.log), 0.0, 1.0)

    def from_unit(self, unit: float) -> float:
        return space.from_unit(unit, self.low, self.high, self.log)

    def categories_in(self, lo: float, hi: float) -> list[Any]:
        k = len(self.categories)
        return [c for i, c in enumerate(self.categories) if (i + 1) / k > lo and i / k < hi]


@dataclass
class AnalysisData:
    axes: list[Axis]
    X: np.ndarray  # (runs, params) in [0, 1]
    y: np.ndarray
    run_ids: list[str]
    metric: str
    direction: str
    notes: dict[str, int] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.axes]

    def axis(self, name: str) -> Axis:
        return next(a for a in self.axes if a.name == name)

    def to_plain(self) -> dict[str, Any]:
        return {
            "axes": [
                [
                    a.name,
                    a.kind,
                    float(a.low),
                    float(a.high),
                    bool(a.log),
                    [value_to_plain(c) for c in a.categories],
                    None if a.values is None else [value_to_plain(v) for v in a.values],
                ]
                for a in self.axes
            ],
            "X": array_to_plain(self.X),
            "y": array_to_plain(self.y),
            "run_ids": [str(r) for r in self.run_ids],
            "metric": self.metric,
            "direction": self.direction,
            "notes": [[str(k), int(v)] for k, v in self.notes.items()],
        }

    @classmethod
    def from_plain(cls, d: dict[str, Any]) -> AnalysisData:
        return cls(
            [
                Axis(str(n), str(k), float(lo), float(hi), bool(lg), list(cs), None if vs is None else list(vs))
                for n, k, lo, hi, lg, cs, vs in d["axes"]
            ],
            array_from_plain(d["X"]),
            array_from_plain(d["y"]),
            [str(r) for r in d["run_ids"]],
            str(d["metric"]),
            str(d["direction"]),
            {str(k): int(v) for k, v in d["notes"]},
        )


def prepare(
    table: RunTable,
    trials: pd.DataFrame,
    metric: str,
    direction: str,
    params: list[str] | None = None,
    best_quantile: float | None = None,
) -> AnalysisData:
    """The design matrix for ``metric`` over ``params`` (default: all), optionally only the best runs."""
    col = f"metrics.{metric}"
    if col not in trials:
        raise ValueError(f"no metric {metric!r} in these runs (have: {', '.join(table.metrics) or 'none'})")
    notes: dict[str, int] = {}
    y_all = trials[col].to_numpy(dtype=float)
    keep = np.isfinite(y_all)
    if (~keep).sum():
        notes[f"runs without a finite {metric}"] = int((~keep).sum())
    wanted = [f"params.{name}" for name in params or table.params if f"params.{name}" in trials]
    runs = trials[["run_id", col, *wanted]]  # only what the design reads: a million runs' frame is wide
    runs = runs[keep] if not keep.all() else runs
    if best_quantile is not None and 0 < best_quantile < 1 and len(runs):
        values = runs[col].to_numpy(dtype=float)
        cut = np.quantile(values, 1 - best_quantile if direction == "max" else best_quantile)
        best = values >= cut if direction == "max" else values <= cut
        notes["runs outside the best quantile"] = int((~best).sum())
        runs = runs[best]
    # The same runs give the same forest, in any row order (Arrow sorts a million ids without Python objects).
    order = pc.sort_indices(pa.array(runs["run_id"].to_numpy(dtype=object), pa.string())).to_numpy()
    runs = runs.iloc[order]
    unknown = [name for name in params or [] if name not in table.params]
    if unknown:
        raise ValueError(f"no parameter {unknown[0]!r} in these runs (have: {', '.join(table.params) or 'none'})")
    spaces = spaces_of(table)
    axes, columns = [], []
    for name in params or table.params:
        if f"params.{name}" not in runs:
            continue
        raw = runs[f"params.{name}"]
        axis = _axis_for(name, raw, table, spaces.get(name))
        if axis is None:
            continue
        unit = axis.to_unit(raw.to_numpy())
        missing = np.isnan(unit)
        if missing.any():
            notes[f"missing {name} (placed at its low end)"] = int(missing.sum())
            unit = np.where(missing, 0.0, unit)
        axes.append(axis)
        columns.append(unit)
    X = np.column_stack(columns) if columns else np.zeros((len(runs), 0))
    return AnalysisData(axes, X, runs[col].to_numpy(dtype=float), runs["run_id"].tolist(), metric, direction, notes)


FEW_VALUES = 6  # a number seen at no more than this many values, each in several runs, was searched as a set
RUNS_PER_VALUE = 3


def _few_values(values: np.ndarray, whole: bool, spec: dict | None) -> list[float] | None:
    """The values a number was searched at, when it was searched as a set (recorded choices, or few distinct
    values each seen in several runs with no recorded range): a relaunch keeps them a set, never [32, 128]."""
    if spec and spec.get("type") in ("float", "int"):
        return None  # a recorded range: searched as a range
    if spec and spec.get("type") == "categorical":
        distinct = sorted({float(c) for c in spec.get("choices") or [] if _is_number(c)} | set(values.tolist()))
    else:
        distinct = pd.unique(values)  # hashed: a million runs' values are not made Python floats
        if len(distinct) > FEW_VALUES or len(values) < RUNS_PER_VALUE * len(distinct):
            return None
        distinct = sorted(distinct.tolist())
    return [int(v) if whole else float(v) for v in distinct]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _axis_for(name: str, raw: pd.Series, table: RunTable, spec: dict | None) -> Axis | None:
    present = raw.dropna()
    if present.nunique() <= 1:
        return None  # constant here: nothing to learn
    if name in table.numeric_params:
        values = present.to_numpy(dtype=float)
        if spec and spec.get("type") in ("float", "int"):
            kind = spec["type"]
            low, high, log = float(spec["low"]), float(spec["high"]), bool(spec.get("log"))
        else:  # no recorded space: the type and scale the values were sampled on (tracking.foreign_spaces)
            kind = "int" if name in table.int_params else "float"
            low, high, log = float(values.min()), float(values.max()), name in table.log_params
            low = low if log or kind == "int" else low_end(low, high, len(values))
        low, high = min(low, float(values.min())), max(high, float(values.max()))
        log = log and low > 0
        return Axis(name, kind, low, high, log, values=_few_values(values, name in table.int_params, spec))
    choices = spec.get("choices") if spec and spec.get("type") == "categorical" else None
    seen = sorted(present.astype(str).unique())
    categories = [str(c) for c in choices] if choices else seen
    categories += [c for c in seen if c not in categories]
    return Axis(name, "categorical", categories=categories)
