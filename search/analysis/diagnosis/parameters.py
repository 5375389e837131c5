"""Rules ``range_edge`` and ``negligible_parameter``: the parameter verdicts as findings.

Neither rule judges anything itself: both read the one verdict per parameter of the search-space analysis
(``trellis.search.analysis.verdicts``: the page, ``trellis bounds`` and the relaunch form read the same), so
a finding can never say "widen hidden" beside "fix hidden". ``range_edge`` lists the parameters to widen,
``negligible_parameter`` those to fix at the best run's value.
"""

from __future__ import annotations

from collections.abc import Callable

from trellis.search.analysis.diagnosis.base import Finding, Rule, SearchFacts
from trellis.search.analysis.plain import shown
from trellis.search.analysis.report import SpaceReport, analyse
from trellis.search.analysis.verdicts import Verdict

ReportFor = Callable[[SearchFacts], SpaceReport | None]


def own_report(facts: SearchFacts) -> SpaceReport | None:
    """The analysis of this search's trials, computed here (the CLI; the app passes its shared one)."""
    if facts.table is None:
        return None
    try:
        return analyse(facts.table, facts.trials, facts.metric, facts.direction, marginals=False, history=facts.history)
    except ValueError:  # the objective is not among these runs' metrics
        return None


def verdicts_of(facts: SearchFacts, report_for: ReportFor | None, action: str) -> list[Verdict]:
    report = (report_for or own_report)(facts)
    verdicts = getattr(report, "verdicts", None) or {}  # none, or not computed yet (the app may answer Pending)
    return [v for v in verdicts.values() if v.action == action]


def range_edges(facts: SearchFacts, report_for: ReportFor | None = None) -> list[Finding]:
    out = []
    for verdict in verdicts_of(facts, report_for, "widen"):
        new = verdict.high if verdict.side == "high" else verdict.low
        out.append(
            Finding(
                rule="range_edge",
                search_id=facts.search_id,
                severity="warning",
                title=f"The best {verdict.name} values sit at the {verdict.side} edge of its range",
                evidence=verdict.why.split(": ", 1)[1],
                fix=f"Widen the {verdict.side} side of {verdict.name} to {shown(new)} (half the range again, on its "
                "scale), if the trial accepts such values.",
                config_change={f"space.{verdict.name}.{verdict.side}": new},
                run_ids=verdict.runs,
            )
        )
    return out


def negligible_parameters(facts: SearchFacts, report_for: ReportFor | None = None) -> list[Finding]:
    out = []
    for verdict in verdicts_of(facts, report_for, "fix"):
        out.append(
            Finding(
                rule="negligible_parameter",
                search_id=facts.search_id,
                severity="info",
                title=f"{verdict.name} hardly matters here",
                evidence=verdict.why.split(": ", 1)[1].removesuffix(": fix it") + f", over the runs of {facts.label}.",
                fix=f"Fix {verdict.name} at the best trial's value, {shown(verdict.value)}, and spend the trials on "
                "the others.",
                config_change={f"space.{verdict.name}": verdict.value},
                run_ids=verdict.runs,
            )
        )
    return out


RANGE_EDGE = Rule("range_edge", "the best values sit at a range edge", range_edges, needs_report=True)
NEGLIGIBLE_PARAMETER = Rule(
    "negligible_parameter", "a parameter hardly matters", negligible_parameters, needs_report=True
)
