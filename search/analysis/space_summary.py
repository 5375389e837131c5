"""Analysis ``space``: which parameters matter (fANOVA shares, singles and pairs) and where to search next (one
verdict per parameter: keep, narrow, widen or fix), as plain data. Its row is in the analysis registry, so the
Analyses page and ``trellis analysis show space`` read it; the search-space page draws the full report
(``report.analyse``) that this summarises, from the same computation.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from trellis.search.analysis.objective import default_objective, metric_direction
from trellis.search.analysis.report import SpaceReport, analyse
from trellis.tracking.reader import RunTable

PlainData = dict[str, Any]
TOP_PAIRS = 5  # pairs listed (the rest are in the full report)


def process(
    table: RunTable, trials: pd.DataFrame, metric: str | None = None, direction: str | None = None
) -> PlainData:
    """The space report of ``metric`` (default: the recorded objective) over these runs, summarised."""
    metric = metric or default_objective(trials, table.metrics)
    if metric is None:
        return {"metric": None, "direction": None, "runs": 0, "problem": "these runs log no metric"}
    if direction not in ("min", "max"):
        direction = metric_direction(trials, metric)
    return summary(analyse(table, trials, metric, direction, marginals=False), metric, direction)


def summary(report: SpaceReport, metric: str, direction: str) -> PlainData:
    """The report's numbers a page, a script or a reader needs: shares, pairs, bounds (plain values only)."""
    out: PlainData = {"metric": metric, "direction": direction, "runs": len(report.run_ids or []),
                      "problem": report.problem, "importance": [], "pairs": [], "bounds": None}  # fmt: skip
    imp = report.importance
    if imp is not None:
        out["importance"] = sorted(
            ({"name": n, "share": float(imp.single_mean[n]), "std": float(imp.single_std[n])} for n in imp.names),
            key=lambda row: -row["share"],
        )
        pairs = sorted(imp.pair_mean.items(), key=lambda item: -item[1])[:TOP_PAIRS]
        out["pairs"] = [{"names": [a, b], "share": float(m), "std": float(imp.pair_std[(a, b)])} for (a, b), m in pairs]
    b = report.bounds
    if b is not None:
        out["bounds"] = {"narrowed": bool(b.narrowed), "r2": b.r2}
    out["verdicts"] = [v.to_plain() | {"headline": v.headline} for v in (report.verdicts or {}).values()]
    return out


def figures(data: PlainData) -> list[dict]:
    rows = data.get("importance") or []
    if not rows:
        return []
    trace = {
        "type": "bar",
        "orientation": "h",
        "y": [r["name"] for r in rows][::-1],
        "x": [r["share"] for r in rows][::-1],
        "error_x": {"type": "data", "array": [r["std"] for r in rows][::-1]},
        "marker": {"color": "#0072B2"},
    }
    layout = {"title": {"text": f"Share of the variance of {data['metric']}"}, "xaxis": {"title": {"text": "share"},
              "range": [0, 1]}, "yaxis": {"automargin": True}, "height": max(260, 30 * len(rows) + 120)}  # fmt: skip
    return [{"data": [trace], "layout": layout}]


def lines(data: PlainData) -> list[str]:
    head = f"{data.get('metric')} ({data.get('direction')}) over {data.get('runs', 0)} runs"
    if data.get("problem"):
        return [head, f"no importance: {data['problem']}"]
    out = [head]
    out += [f"{r['name']}: {r['share']:.2f} ± {r['std']:.2f} of the variance" for r in data.get("importance", [])]
    out += [f"{' × '.join(p['names'])}: {p['share']:.2f} (pair)" for p in data.get("pairs", []) if p["share"] >= 0.01]
    out += [f"{v['name']}: {v['headline']} ({v['why'].split(': ', 1)[-1]})" for v in data.get("verdicts", [])]
    return out
