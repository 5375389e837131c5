"""Search diagnosis: what to change in a search, from what it recorded in MLflow.

``diagnose(table, trials)`` runs every rule over each Trellis search among ``trials`` and returns
``Finding``s (evidence with numbers, the fix in words and as config keys). It is pure: it reads the run
table the app's reader gives and, for the rules on early decisions, the objective's history of the runs
``history_request`` names (``trellis.tracking.histories.read_histories``). One module per rule.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from trellis.search.analysis.diagnosis.base import Finding, SearchFacts, facts_of
from trellis.search.analysis.diagnosis.budget import early_step, low_rung_correlation, slow_starters
from trellis.search.analysis.diagnosis.edges import range_edges
from trellis.search.analysis.diagnosis.failures import failed_trials
from trellis.search.analysis.diagnosis.importance import ReportFor, negligible_parameters
from trellis.search.analysis.diagnosis.population import pbt_collapse
from trellis.search.analysis.diagnosis.tpe import tpe_no_better
from trellis.tracking.reader import RunTable

__all__ = ["Finding", "SearchFacts", "diagnose", "history_request", "RULES"]

# rule id -> what it checks (the order findings are listed in: broken first, then what wastes budget)
RULES = {
    "failed_trials": "many trials failed",
    "pbt_collapse": "a PBT population descends from one member",
    "slow_starters": "early stopping cut off trials that would have caught up",
    "low_rung_correlation": "an early rung or stopping step does not predict the final objective",
    "tpe_no_better": "TPE did no better than its random start-up trials",
    "range_edge": "the best values sit at a range edge",
    "negligible_parameter": "a parameter hardly matters",
}
MAX_HISTORY_RUNS = 2000  # runs per search whose history the early-decision rules read (a seeded sample beyond)
MAX_HISTORY_TOTAL = 8000  # and in all: one SQL query binds each id (SQLite allows 32766); later searches go without


def history_request(table: RunTable, trials: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The run ids and metric keys whose histories the rules need: the objective of the trials of searches
    that decide early (early stopping, Hyperband, BOHB). Empty when none does: nothing to read."""
    run_ids: list[str] = []
    keys: list[str] = []
    for facts in facts_of(table, trials):
        if early_step(facts) is None:
            continue
        ids = facts.trials["run_id"]
        if len(ids) > MAX_HISTORY_RUNS:
            ids = ids.sample(MAX_HISTORY_RUNS, random_state=0)
        if len(run_ids) + len(ids) > MAX_HISTORY_TOTAL:
            break
        run_ids += [str(r) for r in ids]
        keys.append(facts.metric)
    return run_ids, list(dict.fromkeys(keys))


def diagnose(
    table: RunTable,
    trials: pd.DataFrame,
    labels: dict[str, str] | None = None,
    history: pd.DataFrame | None = None,
    report_for: ReportFor | None = None,
    rules: Callable[[str], bool] | None = None,
) -> list[Finding]:
    """Every finding of every Trellis search among ``trials``, search by search, in ``RULES`` order.

    ``history``: ``read_histories`` rows of ``history_request``'s runs (None: the early-decision rules say
    nothing). ``report_for``: the search-space analysis of one search (None: computed here). ``rules``:
    which rule ids to run (default all)."""
    checks = {
        "failed_trials": failed_trials,
        "pbt_collapse": pbt_collapse,
        "slow_starters": slow_starters,
        "low_rung_correlation": low_rung_correlation,
        "tpe_no_better": tpe_no_better,
        "range_edge": range_edges,
        "negligible_parameter": lambda facts: negligible_parameters(facts, report_for),
    }
    out: list[Finding] = []
    for facts in facts_of(table, trials, labels, history):
        for rule, check in checks.items():
            if rules is None or rules(rule):
                out += check(facts)
    return out
