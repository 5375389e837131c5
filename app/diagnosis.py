"""The search diagnosis of a page's view, computed once per state of its trials (per process) and shown by the
overview (and the exploration page). The space analysis it uses for parameter importance is the search-space
page's own (``AppContext.space_report``: computed once, shared by all workers)."""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd

from trellis.app.context import AppContext
from trellis.layouts.diagnosis import finding_links, findings_panel
from trellis.search.analysis.diagnosis import Finding, SearchFacts, diagnose, facts_of, history_request
from trellis.tracking.memo import Memo
from trellis.tracking.run_state import runs_state

ENTRIES = 16  # diagnoses kept per process (each a short list of findings)


class Diagnosis(NamedTuple):
    findings: list[Finding]
    n_searches: int  # searches diagnosed, Trellis' or other tools' (0: nothing to diagnose in this view)


class DiagnosisMemo:
    """Diagnoses by (experiments, searches, trials' state): a page view and the live tick reuse one until a trial
    is added or ends. Lives as long as the app (made by the page's ``register``), not as a module global."""

    def __init__(self, context: AppContext) -> None:
        self.context = context
        self._kept: Memo[Diagnosis] = Memo(ENTRIES)

    def __call__(self, selection: dict) -> Diagnosis:
        context = self.context
        experiments = context.readable_ids((selection or {}).get("experiments", []))
        searches = list((selection or {}).get("searches", []))
        view = context.view(experiments, searches)
        if view.trials.empty:
            return Diagnosis([], 0)
        key = (tuple(sorted(experiments)), tuple(sorted(searches)), runs_state(view.trials))  # a trial added or ended
        found = self._kept.get(key)
        if found is not None:
            return found
        run_ids, keys = history_request(view.table, view.trials)
        history = context.histories(run_ids, keys) if run_ids else None
        shown = {"experiments": experiments}

        def report_for(facts: SearchFacts):
            one = {**shown, "searches": [facts.search_id]}
            return context.space_report(one, facts.metric, facts.direction, None, None)

        findings = diagnose(view.table, view.trials, view.labels, history, report_for)
        result = Diagnosis(findings, len(facts_of(view.table, view.trials)))
        self._kept.put(key, result)
        return result


def register_panel(app, context: AppContext, output_id: str) -> None:
    """The findings of the chosen searches into ``output_id`` (a Div at the top of a page), in a callback of its
    own: the page's plots never wait on the diagnosis."""
    from dash import Input, Output

    memo = DiagnosisMemo(context)

    @app.callback(Output(output_id, "children"), Input("selection", "data"), Input("data-version", "data"))
    def show_findings(selection, _version):
        result = memo(selection)
        if not result.n_searches:
            return findings_panel([], finding_links([], pd.DataFrame(), None, {}), 0)
        view = context.view(selection.get("experiments", []), selection.get("searches", []))
        links = finding_links(result.findings, view.table.runs, context.mlflow_ui_url, view.labels)
        return findings_panel(result.findings, links, result.n_searches)
