"""Analysis ``outcomes``: how each search's trials ended (completed, early-stopped, pruned, failed, killed),
and what share of their wall time the failed and killed ones took. Its row is in the analysis registry."""

from __future__ import annotations

from typing import Any

import pandas as pd

from trellis.tracking.reader import RunTable

PlainData = dict[str, Any]

COLOURS = {"completed": "#009E73", "early_stopped": "#56B4E9", "pruned": "#56B4E9", "failed": "#D55E00",
           "killed": "#CC79A7"}  # fmt: skip


def process(table: RunTable, trials: pd.DataFrame) -> PlainData:
    """Per search: trials and wall seconds by how they ended."""
    if trials.empty:
        return {"searches": []}
    reason = trials["end_reason"] if "end_reason" in trials else trials["status"].str.lower()
    ending = reason.fillna(trials["status"].str.lower()).astype(str)
    search = trials["search_id"].astype(str) if "search_id" in trials else pd.Series("runs", index=trials.index)
    seconds = pd.to_numeric(trials.get("duration_s"), errors="coerce").fillna(0.0)
    frame = pd.DataFrame({"search": search.fillna("runs"), "ending": ending, "seconds": seconds})
    out = []
    for sid, group in frame.groupby("search", sort=True):
        counts = group.groupby("ending")["seconds"].agg(["count", "sum"])
        out.append(
            {
                "search": str(sid),
                "trials": int(len(group)),
                "endings": {
                    str(e): {"trials": int(r["count"]), "seconds": float(r["sum"])} for e, r in counts.iterrows()
                },
            }
        )
    return {"searches": out}


def figures(data: PlainData) -> list[dict]:
    searches = data["searches"]
    endings = sorted({e for s in searches for e in s["endings"]})
    traces = [
        {
            "type": "bar",
            "name": ending,
            "y": [s["search"][:8] for s in searches],
            "x": [s["endings"].get(ending, {}).get("trials", 0) for s in searches],
            "orientation": "h",
            "marker": {"color": COLOURS.get(ending, "#999999")},
        }
        for ending in endings
    ]
    layout = {"barmode": "stack", "title": {"text": "How the trials ended"}, "xaxis": {"title": {"text": "trials"}},
              "yaxis": {"automargin": True}, "height": max(260, 40 * len(searches) + 120)}  # fmt: skip
    return [{"data": traces, "layout": layout}]


def lines(data: PlainData) -> list[str]:
    out = []
    for s in data["searches"]:
        parts = ", ".join(f"{e} {v['trials']}" for e, v in sorted(s["endings"].items()))
        wasted = sum(v["seconds"] for e, v in s["endings"].items() if e in ("failed", "killed"))
        total = sum(v["seconds"] for v in s["endings"].values()) or 1.0
        out.append(f"search {s['search'][:8]}: {s['trials']} trials ({parts}); {wasted / total:.0%} of the time failed")
    return out or ["no trials"]
