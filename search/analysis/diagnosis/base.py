"""What every diagnosis rule works on: one finding, and the facts of one search read from the run table.

A rule is a pure function ``rule(facts) -> list[Finding]``. ``SearchFacts`` holds what the app's reader
already gives for one Trellis search: its trials (one row per run, latest metrics), its stored config
(``trellis.config``), the objective and its direction, and, where the caller read them, the objective's
history per step (``trellis.tracking.histories.read_histories`` rows).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from trellis.search.analysis.objective import default_objective, final_values, metric_direction
from trellis.tracking.reader import RunTable, spaces_of

SEVERITIES = ("danger", "warning", "info")  # as Bootstrap colours: a broken search, a costly one, a hint


@dataclass(frozen=True)
class Finding:
    """One thing to change in a search, with the numbers that say so and the fix.

    ``config_change`` names config keys as in docs/config.md (``space.lr.high``, ``early_stopping.step``,
    ``algorithm.quantile``) with their new values; empty when the fix is not a config value.
    """

    rule: str
    search_id: str
    severity: str
    title: str
    evidence: str
    fix: str
    config_change: dict[str, Any] = field(default_factory=dict)
    run_ids: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["run_ids"] = list(self.run_ids)
        return out


@dataclass
class SearchFacts:
    search_id: str
    label: str
    config: dict[str, Any]
    trials: pd.DataFrame  # this search's trial runs
    metric: str
    direction: str  # "max" | "min"
    history: pd.DataFrame | None = None  # rows (run_id, step, value) of the objective, or None when not read
    table: RunTable | None = None  # the whole table the trials come from (parameter kinds and scales)
    foreign: bool = False  # runs of another tool: no stored config, its space read off the runs themselves

    @property
    def algorithm(self) -> str:
        return str(self.config.get("algorithm", {}).get("name", ""))

    @property
    def sign(self) -> float:
        """Multiply a value by this and larger is better."""
        return 1.0 if self.direction == "max" else -1.0

    def setting(self, key: str, default: Any = None) -> Any:
        return self.config.get("algorithm", {}).get(key, default)

    def finals(self) -> pd.Series:
        """The value each completed trial ended with (run index), as ``trellis search`` counts "best"."""
        return final_values(self.trials, self.metric)

    def best_row(self) -> pd.Series | None:
        values = self.finals()
        if values.empty:
            return None
        return self.trials.loc[(values * self.sign).idxmax()]

    def values_at(self, step: int) -> pd.Series:
        """The objective at ``step``, by run id (runs whose history has no point there are left out)."""
        if self.history is None or self.history.empty:
            return pd.Series(dtype=float)
        rows = self.history[self.history["step"] == step]
        values = rows.drop_duplicates("run_id", keep="last").set_index("run_id")["value"].astype(float)
        return values[np.isfinite(values.to_numpy())]

    def numeric_space(self) -> dict[str, dict[str, Any]]:
        """The searched float and int parameters of the stored space (constants and categoricals left out)."""
        space = self.config.get("space", {})
        return {
            name: spec
            for name, spec in space.items()
            if isinstance(spec, dict) and spec.get("type") in ("float", "int") and spec.get("high") != spec.get("low")
        }


def facts_of(
    table: RunTable,
    trials: pd.DataFrame,
    labels: dict[str, str] | None = None,
    history: pd.DataFrame | None = None,
    metric: str | None = None,
) -> list[SearchFacts]:
    """One ``SearchFacts`` per search among ``trials``: each Trellis search whose config is stored, and each
    group of other tools' runs (their MLflow parent run, else their experiment), whose objective is ``metric``
    (default: the one the runs suggest) and whose space is the one the runs show."""
    runs = table.runs
    if trials.empty:
        return []
    parents = runs[runs["kind"] == "search"].set_index("run_id") if "kind" in runs else pd.DataFrame()
    out = []
    is_trial = trials["trellis_type"] == "trial" if "trellis_type" in trials else pd.Series(False, index=trials.index)
    for search_id, group in trials[is_trial].groupby("search_id", sort=True):
        sid = str(search_id)
        text = parents["trellis_config"].get(sid) if "trellis_config" in parents else None
        config = _config(text)
        if config is None:
            continue
        objective = config.get("objective", {})
        if isinstance(objective, list):  # several objectives: the first is the user's priority
            objective = objective[0] if objective and isinstance(objective[0], dict) else {}
        name, direction = objective.get("metric"), objective.get("direction", "max")
        if not name:
            continue
        hist = None
        if history is not None and not history.empty:
            hist = history[(history["key"] == name) & history["run_id"].isin(group["run_id"])]
            hist = hist[["run_id", "step", "value"]]
        label = (labels or {}).get(sid, sid[:8])
        out.append(SearchFacts(sid, label, config, group, name, direction, hist, table))
    return out + _foreign_facts(table, trials[~is_trial], labels or {}, metric)


def _foreign_facts(
    table: RunTable, runs: pd.DataFrame, labels: dict[str, str], metric: str | None
) -> list[SearchFacts]:
    out = []
    for search_id, group in runs.groupby("search_id", sort=True):
        sid = str(search_id)
        name = metric if metric in table.metrics else default_objective(group, table.metrics)
        if name is None or f"metrics.{name}" not in group:
            continue
        direction = metric_direction(group, name)
        config = {
            "objective": {"metric": name, "direction": direction},
            "algorithm": {"name": "other tool"},
            "space": observed_space(table, group),
        }
        experiment = str(group["experiment"].iloc[0]) if "experiment" in group else sid
        label = labels.get(sid) or (f"experiment {experiment}" if sid.startswith("experiment:") else sid[:8])
        out.append(SearchFacts(sid, label, config, group, name, direction, None, table, foreign=True))
    return out


def observed_space(table: RunTable, runs: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """The space runs of another tool show: a declared one (Optuna's distributions) where recorded, else each
    parameter's observed range (numbers) or values (the rest). Constants are left out."""
    declared = spaces_of(table)
    space: dict[str, dict[str, Any]] = {}
    for param in table.params:
        column = f"params.{param}"
        if column not in runs:
            continue
        values = runs[column].dropna()
        if values.nunique() <= 1:
            continue
        if param in declared:
            space[param] = dict(declared[param])
        elif param in table.numeric_params:
            numbers = values.to_numpy(dtype=float)
            kind = "int" if param in table.int_params else "float"
            low, high = (int(numbers.min()), int(numbers.max())) if kind == "int" else (numbers.min(), numbers.max())
            space[param] = {"type": kind, "low": low, "high": high, "log": param in table.log_params}
        else:
            space[param] = {"type": "categorical", "choices": sorted(values.astype(str).unique())}
    return space


def _config(text: Any) -> dict[str, Any] | None:
    if not isinstance(text, str):
        return None
    try:
        config = json.loads(text)
    except ValueError:
        return None
    return config if isinstance(config, dict) else None


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rank correlation (average ranks for ties); None when either side is constant or too short."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    ra, rb = pd.Series(a).rank().to_numpy(), pd.Series(b).rank().to_numpy()
    return float(np.corrcoef(ra, rb)[0, 1])


def run_number(row: pd.Series) -> str:
    """``trial 12`` (sampling order) or the run's short id."""
    trial = row.get("trial")
    return f"trial {int(trial)}" if trial is not None and not pd.isna(trial) else f"run {str(row['run_id'])[:8]}"


@dataclass(frozen=True)
class Rule:
    """One diagnosis rule, one row: its id (the ``rule`` of its findings), what it checks (in words), and the
    check over one search. ``needs_report``: the check also takes the search-space analysis of the search
    (a ``ReportFor``; None: it computes its own). ``needs_lineage``: it does not apply to other tools' runs."""

    id: str
    checks: str
    check: Callable[..., list[Finding]]
    needs_report: bool = False
    needs_lineage: bool = False  # reads what only a Trellis search records (its algorithm, rungs, PBT members)

    def run(self, facts: SearchFacts, report_for: Callable | None = None) -> list[Finding]:
        return self.check(facts, report_for) if self.needs_report else self.check(facts)
