"""Rule ``negligible_parameter``: a parameter that explains (almost) none of the objective → fix it at its best.

Uses the search-space page's analysis (``trellis.search.analysis.report.analyse``: fANOVA over a random forest, and
the forest's cross-validated R²). A parameter's share counts its own variance and every pair it is part of,
plus the spread of its share over the trees, as the relaunch form's "fix unimportant" does. When the forest
predicts the objective poorly, its shares mean nothing and the rule says nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from trellis.search.analysis.bounds import untrusted_reason
from trellis.search.analysis.diagnosis.base import Finding, Rule, SearchFacts, shown
from trellis.search.analysis.report import SpaceReport, analyse

NEGLIGIBLE_SHARE = 0.05  # share + its std over trees under 5%: the relaunch form's own cut for fixing a parameter
MIN_R2 = 0.5  # the forest's 10-fold R²: below it, half the objective's variance is unexplained noise to it
MIN_TRIALS = 12  # fewer runs and a forest on several parameters fits noise

ReportFor = Callable[[SearchFacts], SpaceReport | None]


def own_report(facts: SearchFacts) -> SpaceReport | None:
    """The analysis of this search's trials, computed here (the CLI; the app passes its shared one)."""
    if facts.table is None:
        return None
    try:
        return analyse(facts.table, facts.trials, facts.metric, facts.direction, marginals=False)
    except ValueError:  # the objective is not among these runs' metrics
        return None


def negligible_parameters(facts: SearchFacts, report_for: ReportFor | None = None) -> list[Finding]:
    searched = [n for n, s in facts.config.get("space", {}).items() if isinstance(s, dict) and s.get("type") != "fixed"]
    if len(facts.finals()) < MIN_TRIALS or len(searched) < 2:
        return []
    report = (report_for or own_report)(facts)
    if getattr(report, "importance", None) is None or getattr(report, "bounds", None) is None:
        return []  # none, or not computed yet (the app's shared report may answer Pending)
    if untrusted_reason(report.bounds) or report.bounds.r2 is None or report.bounds.r2 < MIN_R2:
        return []
    imp = report.importance
    best = facts.best_row()
    if best is None:
        return []
    out = []
    for name in imp.names:
        if name not in searched or _has_children(facts.config.get("space", {}), name):
            continue
        pairs = sum(m for pair, m in imp.pair_mean.items() if name in pair)
        share = imp.single_mean[name] + pairs
        if share + imp.single_std[name] >= NEGLIGIBLE_SHARE:
            continue
        value = best.get(f"params.{name}")
        if value is None or value != value:
            continue
        value = _typed(value, facts.config["space"][name])
        out.append(
            Finding(
                rule="negligible_parameter",
                search_id=facts.search_id,
                severity="info",
                title=f"{name} hardly matters here",
                evidence=(
                    f"fANOVA gives {name} {share:.1%} of the variance of {facts.metric} (± {imp.single_std[name]:.1%} "
                    f"over {imp.n_trees_used} trees, its pairs included), over {report.bounds.n_runs} runs; the "
                    f"forest's cross-validated R² is {report.bounds.r2:.2f}."
                ),
                fix=f"Fix {name} at the best trial's value, {shown(value)}, and spend the trials on the others.",
                config_change={f"space.{name}": value},
            )
        )
    return out


def _has_children(space: dict, name: str) -> bool:
    """Another parameter's condition names this one: fixing it would change which exist (left to the user)."""
    return any(isinstance(s, dict) and name in (s.get("when") or {}) for s in space.values())


def _typed(value, spec: dict):
    if spec.get("type") == "int":
        return int(round(float(value)))
    if spec.get("type") == "float":
        return float(f"{float(value):.6g}")
    choices = spec.get("choices") or []
    return next((c for c in choices if str(c) == str(value)), value)


NEGLIGIBLE_PARAMETER = Rule(
    "negligible_parameter", "a parameter hardly matters", negligible_parameters, needs_report=True
)
