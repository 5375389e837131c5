"""One call that computes everything the search-space page and the CLI show for a metric and a subset."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from trellis.search.analysis.bounds import SuggestedBounds, refined_yaml, suggest_bounds, untrusted_reason
from trellis.search.analysis.design import AnalysisData, prepare
from trellis.search.analysis.fanova import FastFANOVA, Importance
from trellis.tracking.reader import RunTable, spaces_of

log = logging.getLogger(__name__)


@dataclass
class SpaceReport:
    data: AnalysisData
    fanova: FastFANOVA | None
    importance: Importance | None
    bounds: SuggestedBounds | None
    refined_yaml: str | None
    problem: str | None = None  # why something could not be computed, said on the page
    run_ids: list[str] | None = None  # every run analysed (the forests may see a sample of them)

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
) -> SpaceReport:
    data = prepare(table, trials, metric, direction, params, best_quantile)
    all_runs = list(data.run_ids)
    if len(data.y) > max_runs:
        # Forests on a seeded sample: the shares and ranges settle long before 10k runs, the wait does not.
        keep = np.sort(np.random.default_rng(seed).choice(len(data.y), max_runs, replace=False))
        data.notes[f"runs not in the {max_runs}-run sample the forests are fitted on"] = len(data.y) - max_runs
        data = replace(data, X=data.X[keep], y=data.y[keep], run_ids=[data.run_ids[i] for i in keep])
    if len(data.y) < 4 or not data.axes:
        why = f"need at least 4 runs with a finite {metric} and one varying parameter (have {len(data.y)} runs)"
        return SpaceReport(data, None, None, None, None, why, all_runs)
    try:
        return _analysed(table, trials, data, metric, direction, n_trees, seed, all_runs)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:  # runs the analysis cannot handle: said
        log.exception("search-space analysis failed on %d runs of %s", len(data.y), metric)
        why = f"the analysis failed on these runs ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        return SpaceReport(data, None, None, None, None, why, all_runs)


def _analysed(table, trials, data, metric, direction, n_trees, seed, all_runs) -> SpaceReport:
    bounds = suggest_bounds(data, seed=seed)
    r2 = "n/a" if bounds.r2 is None else f"{bounds.r2:.3f}"
    header = f"# Suggested by Trellis from {bounds.n_runs} runs ({metric}, {direction}); forest 10-fold R^2 = {r2}\n"
    why_not = untrusted_reason(bounds)
    if why_not:  # nothing ranked, narrowed or fixed: the page says why instead
        text = header + f"# No refined space is offered: {why_not}.\n# Run more trials, or widen the runs analysed.\n"
        return SpaceReport(data, None, None, bounds, text, why_not, all_runs)
    fan = FastFANOVA(data.X, data.y, data.names, n_trees=n_trees, seed=seed, active=active_masks(trials, data))
    importance = fan.importance(pairs=True)
    if bounds.unimportant:
        names = ", ".join(bounds.unimportant)
        data.notes[f"parameters without measurable effect near the best runs ({names}): fix them"] = len(
            bounds.unimportant
        )
    text = header + refined_yaml(bounds, data, spaces_of(table))
    return SpaceReport(data, fan, importance, bounds, text, run_ids=all_runs)
