"""One call that computes everything the search-space page and the CLI show for a metric and a subset.

``analyse`` is pure and returns a ``SpaceReport`` of plain parts (no forest kept): it reads back from its own
``to_plain`` form, so any cache holds it without a codec of its own."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from trellis.search.analysis.bounds import SuggestedBounds, suggest_bounds, untrusted_reason
from trellis.search.analysis.budgets import at_budget, budget_choice
from trellis.search.analysis.design import AnalysisData, prepare
from trellis.search.analysis.factorial import factorial_bounds, factorial_importance, levels_of
from trellis.search.analysis.fanova import FastFANOVA, Importance
from trellis.search.analysis.marginals import Marginals, marginals_of, most_important_pairs
from trellis.search.analysis.refine import refined_yaml
from trellis.search.analysis.verdicts import Verdict, decide, verdicts_from_plain, verdicts_to_plain
from trellis.tracking.reader import RunTable, spaces_of

log = logging.getLogger(__name__)


@dataclass
class SpaceReport:
    data: AnalysisData
    marginals: Marginals | None  # what the page draws of the forest (``trellis.search.analysis.marginals``)
    importance: Importance | None
    bounds: SuggestedBounds | None
    refined_yaml: str | None
    problem: str | None = None  # why something could not be computed, said on the page
    run_ids: list[str] | None = None  # every run analysed (the forests may see a sample of them)
    verdicts: dict[str, Verdict] | None = None  # one per parameter: what every page and command advises

    def to_plain(self) -> dict[str, Any]:
        """Plain values only (numbers, strings, lists, bytes): msgpack or JSON hold it, reading runs no code."""
        return {
            "data": self.data.to_plain(),
            "marginals": None if self.marginals is None else self.marginals.to_plain(),
            "importance": None if self.importance is None else self.importance.to_plain(),
            "bounds": None if self.bounds is None else self.bounds.to_plain(),
            "refined_yaml": self.refined_yaml,
            "problem": self.problem,
            "run_ids": None if self.run_ids is None else [str(r) for r in self.run_ids],
            "verdicts": None if self.verdicts is None else verdicts_to_plain(self.verdicts),
        }

    @classmethod
    def from_plain(cls, d: dict[str, Any]) -> SpaceReport:
        """Back from ``to_plain``; raises (KeyError, TypeError, ValueError) on anything else."""
        for key in ("refined_yaml", "problem"):
            if d[key] is not None and not isinstance(d[key], str):
                raise TypeError(f"{key}: not text")
        return cls(
            AnalysisData.from_plain(d["data"]),
            None if d["marginals"] is None else Marginals.from_plain(d["marginals"]),
            None if d["importance"] is None else Importance.from_plain(d["importance"]),
            None if d["bounds"] is None else SuggestedBounds.from_plain(d["bounds"]),
            d["refined_yaml"],
            d["problem"],
            None if d["run_ids"] is None else [str(r) for r in d["run_ids"]],
            None if d.get("verdicts") is None else verdicts_from_plain(d["verdicts"]),
        )

    @property
    def order(self) -> list[str]:
        """Parameters by importance, most important first (the parallel-coordinates axis order)."""
        if self.importance is None:
            return self.data.names
        return sorted(self.data.names, key=lambda n: -self.importance.single_mean.get(n, 0.0))


def active_masks(trials: pd.DataFrame, data: AnalysisData) -> dict[str, np.ndarray]:
    """Per parameter missing from some of the analysed runs (a conditional one, e.g. momentum only with
    sgd): the runs where it is set, in ``data``'s row order. fANOVA then analyses it where it is set."""
    rows = trials.drop_duplicates("run_id").set_index("run_id").reindex(data.run_ids)
    out = {}
    for name in data.names:
        column = f"params.{name}"
        if column in rows:
            present = rows[column].notna().to_numpy()
            if not present.all():
                out[name] = present
    return out


def sampled(data: AnalysisData, max_runs: int, seed: int) -> AnalysisData:
    """The runs the forests are fitted on: all of them, or a seeded sample of ``max_runs`` (the shares and
    ranges settle long before 10k runs, the wait does not), said in the notes. The page and the CLI share it."""
    if not 0 < max_runs < len(data.y):
        return data
    keep = np.sort(np.random.default_rng(seed).choice(len(data.y), max_runs, replace=False))
    data.notes[f"runs not in the {max_runs}-run sample the forests are fitted on"] = len(data.y) - max_runs
    return replace(data, X=data.X[keep], y=data.y[keep], run_ids=[data.run_ids[i] for i in keep])


def analyse(
    table: RunTable,
    trials: pd.DataFrame,
    metric: str,
    direction: str,
    params: list[str] | None = None,
    best_quantile: float | None = None,
    n_trees: int = 64,
    seed: int = 0,
    max_runs: int = 4000,
    marginals: bool = True,
    budget: float | str | None = "auto",
    history: pd.DataFrame | None = None,
) -> SpaceReport:
    """``marginals``: also keep what the page draws of the forest (each parameter's and the top pairs').
    ``budget``: compare the runs at one budget (``trellis.search.analysis.budgets``: "auto", a budget, or None
    for every run as it ended); ``history``: the metric's history of the runs past it (their value at it)."""
    trials, budget_notes = at_budget(trials, metric, budget_choice(trials, metric, budget), history)
    data = prepare(table, trials, metric, direction, params, best_quantile)
    data.notes.update(budget_notes)
    all_runs = list(data.run_ids)
    data = sampled(data, max_runs, seed)
    if len(data.y) < 4 or not data.axes:
        why = f"need at least 4 runs with a finite {metric} and one varying parameter (have {len(data.y)} runs)"
        return SpaceReport(data, None, None, None, None, why, all_runs)
    try:
        return _analysed(table, trials, data, metric, direction, n_trees, seed, all_runs, marginals)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:  # runs the analysis cannot handle: said
        log.exception("search-space analysis failed on %d runs of %s", len(data.y), metric)
        why = f"the analysis failed on these runs ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        return SpaceReport(data, None, None, None, None, why, all_runs)


def _analysed(table, trials, data, metric, direction, n_trees, seed, all_runs, marginals) -> SpaceReport:
    codes = levels_of(data)
    if codes is not None:  # a balanced grid: its exact ANOVA, with no forest to distrust
        return _factorial(table, trials, data, codes, all_runs)
    bounds = suggest_bounds(data, seed=seed)
    r2 = "n/a" if bounds.r2 is None else f"{bounds.r2:.3f}"
    header = f"# Suggested by Trellis from {bounds.n_runs} runs ({metric}, {direction}); forest 10-fold R^2 = {r2}\n"
    spaces = spaces_of(table)
    why_not = untrusted_reason(bounds)
    if why_not:  # nothing ranked, narrowed or fixed; an edge the runs themselves show is still widened
        verdicts = decide(data, bounds, None, trials, spaces)
        text = header + f"# Nothing is narrowed or fixed: {why_not}.\n"
        if any(v.action != "keep" for v in verdicts.values()):
            text += refined_yaml(verdicts, data, spaces)
        else:
            text += "# Run more trials, or widen the runs analysed.\n"
        return SpaceReport(data, None, None, bounds, text, why_not, all_runs, verdicts)
    fan = FastFANOVA(data.X, data.y, data.names, n_trees=n_trees, seed=seed, active=active_masks(trials, data))
    importance = fan.importance(pairs=True)
    verdicts = decide(data, bounds, importance, trials, spaces)
    fixed = [n for n, v in verdicts.items() if v.action == "fix"]
    if fixed:
        data.notes[f"parameters without measurable effect ({', '.join(fixed)}): fix them"] = len(fixed)
    text = header + refined_yaml(verdicts, data, spaces)
    kept = marginals_of(fan, most_important_pairs(importance)) if marginals else None
    return SpaceReport(data, kept, importance, bounds, text, run_ids=all_runs, verdicts=verdicts)


def _factorial(table, trials, data, codes, all_runs) -> SpaceReport:
    importance = factorial_importance(data, codes)
    bounds = factorial_bounds(data, codes, importance)
    verdicts = decide(data, bounds, importance, trials, spaces_of(table))
    cells = len(data.y) // int(np.prod([int(c.max()) + 1 for c in codes]))
    what = f"runs of a balanced full-factorial grid ({cells} per cell), analysed exactly (ANOVA, no forest)"
    data.notes[what] = len(data.y)
    header = (
        f"# Suggested by Trellis from the exact ANOVA of {len(data.y)} grid runs ({data.metric}, {data.direction})\n"
    )
    text = header + refined_yaml(verdicts, data, spaces_of(table))
    return SpaceReport(data, None, importance, bounds, text, run_ids=all_runs, verdicts=verdicts)
