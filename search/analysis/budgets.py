"""Runs compared at one budget: a trial cut after 2 epochs (Hyperband, BOHB, early stopping) or a PBT member
replaced early ends with its early metric, which an analysis must not set beside 15-epoch results.

``budget_choice`` picks the budget (by default the largest that enough runs reached: ``MIN_RUNS`` or a quarter
of them, whichever is more) from the ``budget_reached`` each Trellis trial records; ``at_budget`` keeps the runs
that reached it, takes the value at that budget of those that went further (from the metric's history, where
the caller read it) and says which runs were left out and why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

MIN_RUNS = 10  # a budget is "reached by enough runs" with at least this many ...
SHARE = 0.25  # ... and at least this share of the runs
COLUMN = "budget_reached"


@dataclass(frozen=True)
class BudgetChoice:
    budget: float | None  # None: the runs share one budget (or record none): nothing to choose
    levels: dict[float, int] = field(default_factory=dict)  # budget -> runs that reached at least it
    beyond: tuple[str, ...] = ()  # runs past the budget: their value at it comes from their history

    @property
    def chosen(self) -> bool:
        return self.budget is not None


def _reached(trials: pd.DataFrame, metric: str) -> pd.Series | None:
    if COLUMN not in trials or f"metrics.{metric}" not in trials:
        return None
    finite = np.isfinite(trials[f"metrics.{metric}"].to_numpy(dtype=float))
    reached = pd.to_numeric(trials[COLUMN], errors="coerce").astype(float)[finite]
    return reached if reached.notna().any() else None


def budget_levels(trials: pd.DataFrame, metric: str) -> dict[float, int]:
    """Each budget the runs ended at, with how many runs reached at least it (largest first)."""
    reached = _reached(trials, metric)
    if reached is None:
        return {}
    values = reached.dropna().to_numpy()
    return {float(b): int((values >= b).sum()) for b in sorted(set(values.tolist()), reverse=True)}


def budget_choice(trials: pd.DataFrame, metric: str, wanted: float | str | None = "auto") -> BudgetChoice:
    """``wanted``: "auto" (the largest budget enough runs reached), a budget, or None (no choice: all runs)."""
    levels = budget_levels(trials, metric)
    if wanted is None or len(levels) < 2:
        return BudgetChoice(None, levels)
    if wanted == "auto":
        total = max(levels.values())
        enough = max(MIN_RUNS, math.ceil(SHARE * total))
        budget = next((b for b, n in levels.items() if n >= enough), min(levels))
    else:
        budget = float(wanted)
    reached = _reached(trials, metric)
    beyond = tuple(str(r) for r in trials.loc[reached[reached > budget].index, "run_id"])
    return BudgetChoice(budget, levels, beyond)


def at_budget(
    trials: pd.DataFrame, metric: str, choice: BudgetChoice, history: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The runs at ``choice.budget``, and notes (what -> how many runs) on those left out or taken earlier."""
    if not choice.chosen:
        return trials, {}
    column = f"metrics.{metric}"
    reached = pd.to_numeric(trials[COLUMN], errors="coerce").astype(float)
    budget = choice.budget
    kept = trials[(reached >= budget) | reached.isna()].copy()
    notes: dict[str, int] = {}
    short = int((reached < budget).sum())
    if short:
        notes[f"runs stopped before budget {budget:g} (left out: their {metric} is an earlier budget's)"] = short
    past = kept.index[pd.to_numeric(kept[COLUMN], errors="coerce") > budget]
    if len(past) and history is None:  # not read: their final value stands in, and the note says so
        notes[f"runs past budget {budget:g}, compared at their final value (their history was not read)"] = len(past)
    elif len(past):
        values = _values_at(history, metric, budget)
        ids = kept.loc[past, "run_id"].astype(str)
        found = ids.map(values)
        kept.loc[past[found.notna().to_numpy()], column] = found[found.notna()].to_numpy(dtype=float)
        if found.notna().any():
            notes[f"runs past budget {budget:g}, compared at it (their history)"] = int(found.notna().sum())
        missing = past[found.isna().to_numpy()]
        if len(missing):
            kept = kept.drop(index=missing)
            notes[f"runs past budget {budget:g} with no {metric} logged at it (left out)"] = len(missing)
    return kept, notes


def _values_at(history: pd.DataFrame | None, metric: str, budget: float) -> pd.Series:
    if history is None or history.empty:
        return pd.Series(dtype=float)
    rows = history[(history["step"] == budget) & ((history["key"] == metric) if "key" in history else True)]
    return rows.drop_duplicates("run_id", keep="last").set_index("run_id")["value"].astype(float)
