"""The search diagnosis as a panel: one alert per finding (title, evidence, fix, the config change), grouped by
search; failed-trial findings link their runs in the MLflow UI. Pure builders: findings and links in, Dash
components out, no store."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import NamedTuple

import dash_bootstrap_components as dbc
import pandas as pd
from dash import html

from trellis.search.analysis.diagnosis import Finding
from trellis.search.control.fixes import encode_fix
from trellis.tracking.links import run_url
from trellis.tracking.schema import STDERR_ARTIFACT

MAX_RUN_LINKS = 10  # run links shown per finding (the count says how many more)


class FindingLinks(NamedTuple):
    """Where a finding's runs open (run id -> MLflow UI URL; empty without a UI URL) and search labels."""

    runs: dict[str, str]
    labels: dict[str, str]
    experiments: dict[str, str] = {}  # search id -> its experiment id (the relaunch-with-this-fix links)


def finding_links(
    findings: Sequence[Finding], runs: pd.DataFrame, ui_base: str | None, labels: dict[str, str]
) -> FindingLinks:
    """Links for the runs the findings name, through ``trellis.tracking.links.run_url`` (none without a UI address),
    and the experiment of each search (for its relaunch link)."""
    searches = {f.search_id for f in findings}
    experiments = {}
    if not runs.empty and searches:
        rows = runs[runs["run_id"].isin(searches)]
        experiments = {str(r): str(e) for r, e in zip(rows["run_id"], rows["experiment_id"], strict=True)}
    wanted = {r for f in findings for r in f.run_ids}
    if not ui_base or not wanted or runs.empty:
        return FindingLinks({}, dict(labels), experiments)
    rows = runs[runs["run_id"].isin(wanted)]
    pairs = zip(rows["run_id"], rows["experiment_id"], strict=True)
    urls = {str(r): run_url(ui_base, str(e), str(r)) for r, e in pairs}
    return FindingLinks(urls, dict(labels), experiments)


def _config_line(finding: Finding, links: FindingLinks) -> html.Div | None:
    change = finding.config_change
    if not change:
        return None
    text = ", ".join(f"{key}: {json.dumps(value)}" for key, value in change.items())
    parts: list = ["In the config: ", html.Code(text, className="diag-config")]
    experiment = links.experiments.get(finding.search_id)
    if experiment is not None:
        href = f"/control?exp={experiment}&search={finding.search_id}&fix={encode_fix(change)}"
        parts += [" · ", html.A("Relaunch with this fix", href=href, className="diag-relaunch")]
    return html.Div(parts, className="small")


def _run_links(finding: Finding, links: FindingLinks) -> html.Div | None:
    if finding.rule != "failed_trials" or not finding.run_ids:
        return None
    shown = finding.run_ids[:MAX_RUN_LINKS]
    items: list = []
    for i, run_id in enumerate(shown):
        label = run_id[:8]
        url = links.runs.get(run_id)
        items += [", " if i else "", html.A(label, href=url, target="_blank") if url else html.Code(label)]
    more = len(finding.run_ids) - len(shown)
    tail = f" and {more} more" if more > 0 else ""
    where = f" (each run's stderr tail: Artifacts → {STDERR_ARTIFACT})"
    return html.Div(["Failed runs: ", *items, tail, where], className="small diag-runs")


def finding_item(finding: Finding, links: FindingLinks, index: int) -> dbc.Alert:
    parts = [
        html.Div(finding.title, className="fw-bold"),
        html.Div(finding.evidence, className="small"),
        html.Div(["Fix: ", finding.fix], className="small"),
        _config_line(finding, links),
        _run_links(finding, links),
    ]
    return dbc.Alert(
        [p for p in parts if p is not None],
        color=finding.severity,
        className=f"py-2 mb-2 diag-{finding.rule}",
        id={"type": "diag-finding", "index": index},
    )


def findings_panel(findings: Sequence[Finding], links: FindingLinks, n_searches: int | None = None) -> html.Div:
    """The panel: findings grouped by search (a heading per search when there are several); one quiet line
    when the searches gave none, nothing at all when there was no Trellis search to diagnose."""
    if not findings:
        if not n_searches:
            return html.Div(id="diag-panel")
        searches = "search" if n_searches == 1 else f"{n_searches} searches"
        line = f"Search diagnosis: nothing to change that the rules can see in the {searches} shown."
        return html.Div(html.Div(line, className="small text-muted mb-2"), id="diag-panel")
    by_search: dict[str, list[Finding]] = {}
    for f in findings:
        by_search.setdefault(f.search_id, []).append(f)
    body: list = [html.H6(f"Search diagnosis ({len(findings)})", className="mb-2")]
    index = 0
    for search_id, group in by_search.items():
        if len(by_search) > 1:
            body.append(html.Div(links.labels.get(search_id, search_id[:8]), className="small text-muted mb-1"))
        for f in group:
            body.append(finding_item(f, links, index))
            index += 1
    return html.Div(body, id="diag-panel", className="mb-3")
