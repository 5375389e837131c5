"""Search diagnosis: what to change in a search, from what it recorded in MLflow.

``diagnose(table, trials)`` runs every rule over each Trellis search among ``trials`` and returns
``Finding``s (evidence with numbers, the fix in words and as config keys). It is pure: it reads the run
table the app's reader gives and, for the rules on early decisions, the objective's history of the runs
``history_request`` names (``trellis.tracking.histories.read_histories``). One module per rule.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from trellis.search.analysis.diagnosis.base import Finding, Rule, SearchFacts, facts_of
from trellis.search.analysis.diagnosis.budget import LOW_RUNG_CORRELATION, SLOW_STARTERS, early_step
from trellis.search.analysis.diagnosis.failures import FAILED_TRIALS
from trellis.search.analysis.diagnosis.hygiene import BAD_VALUES, DUPLICATE_RUNS
from trellis.search.analysis.diagnosis.parameters import NEGLIGIBLE_PARAMETER, RANGE_EDGE, ReportFor
from trellis.search.analysis.diagnosis.population import PBT_COLLAPSE
from trellis.search.analysis.diagnosis.tpe import TPE_NO_BETTER
from trellis.tracking.reader import RunTable

__all__ = [
    "Finding",
    "Rule",
    "SearchFacts",
    "all_rules",
    "diagnose",
    "facts_of",
    "history_request",
    "not_applicable",
    "register_rule",
    "unregister_rule",
    "RULES",
]

# The one table of rules, in the order findings are listed: broken first, then what wastes budget. Each row
# is defined beside its check (``Rule`` in ``base``); a plugin adds one with ``register_rule``.
_RULES: list[Rule] = [
    FAILED_TRIALS,
    BAD_VALUES,
    PBT_COLLAPSE,
    SLOW_STARTERS,
    LOW_RUNG_CORRELATION,
    TPE_NO_BETTER,
    RANGE_EDGE,
    NEGLIGIBLE_PARAMETER,
    DUPLICATE_RUNS,
]


RULES: dict[str, str] = {r.id: r.checks for r in _RULES}  # rule id -> what it checks (kept with the table)


def register_rule(rule: Rule) -> Rule:
    """Add (or replace, by id) a rule; it runs after the built-in ones."""
    _RULES[:] = [r for r in _RULES if r.id != rule.id] + [rule]
    RULES.clear()
    RULES.update((r.id, r.checks) for r in _RULES)
    return rule


def unregister_rule(rule_id: str) -> None:
    _RULES[:] = [r for r in _RULES if r.id != rule_id]
    RULES.pop(rule_id, None)


def all_rules() -> tuple[Rule, ...]:
    return tuple(_RULES)


def not_applicable(facts: SearchFacts) -> list[str]:
    """The rules that say nothing about this search because they need what only Trellis records."""
    return [r.id for r in _RULES if facts.foreign and r.needs_lineage]


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
    metric: str | None = None,
) -> list[Finding]:
    """Every finding of every Trellis search among ``trials``, search by search, in the rules' table order.

    ``history``: ``read_histories`` rows of ``history_request``'s runs (None: the early-decision rules say
    nothing). ``report_for``: the search-space analysis of one search (None: computed here). ``rules``:
    which rule ids to run (default all). ``metric``: the objective of other tools' runs (default: a guess).
    Rules that read Trellis' lineage do not run on other tools' runs (``not_applicable`` names them)."""
    out: list[Finding] = []
    for facts in facts_of(table, trials, labels, history, metric):
        for rule in tuple(_RULES):
            if facts.foreign and rule.needs_lineage:
                continue
            if rules is None or rules(rule.id):
                out += rule.run(facts, report_for)
    return out
