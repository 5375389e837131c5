"""Analysis ``pareto``: for searches with several objectives, the non-dominated trials and each search's
hypervolume as its trials ended (to compare searches), as plain data. Its row is in the analysis registry, so
the Analyses page and ``trellis analysis show pareto`` read it; ``trellis pareto`` prints the same front."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from trellis.search.analysis.design import prepare
from trellis.search.analysis.fanova import FastFANOVA
from trellis.search.pareto import (
    Reference,
    as_losses,
    contributions,
    hypervolume,
    pareto_front,
    pareto_ranks,
    reference_point,
)
from trellis.tracking.reader import RunTable

PlainData = dict[str, Any]
HISTORY_POINTS = 200  # hypervolume points per search (evenly spaced over its trials)
MIN_RANKED = 20  # fewer finished trials and no importance is given (a forest on fewer ranks noise)
CONTRIBUTION = "hypervolume contribution"


def objectives_of(runs: pd.DataFrame, trials: pd.DataFrame, given: str | None = None) -> list[tuple[str, str]]:
    """``metric:max,metric:min`` when given, else what a search recorded (``trellis.objectives``)."""
    if given:
        out = []
        for item in str(given).split(","):
            metric, _, direction = item.strip().rpartition(":")
            if metric and direction in ("max", "min"):
                out.append((metric, direction))
        return out
    column = "objectives"  # the reader's column of the ``trellis.objectives`` tag
    for frame in (runs, trials):
        if column in frame:
            for text in frame[column].dropna():
                try:
                    found = [(str(o["metric"]), str(o["direction"])) for o in json.loads(text)]
                except (ValueError, KeyError, TypeError):
                    continue
                if len(found) > 1:
                    return found
    return []


def process(
    table: RunTable, trials: pd.DataFrame, objectives: str | None = None, reference: str | None = None
) -> PlainData:
    """``objectives``: ``metric:max,metric:min`` (default: what the searches recorded); ``reference``: the
    hypervolume's reference point, one number per objective (default: chosen from the data, and said)."""
    chosen = objectives_of(table.runs[table.runs["run_id"].isin(set(trials["search_id"]))], trials, objectives)
    if objectives and len(chosen) < 2:
        return {"objectives": [], "problem": f"objectives={objectives!r}: give at least two as metric:max,metric:min"}
    if len(chosen) < 2:
        return {"objectives": [], "problem": "no search here recorded several objectives: give objectives="
                "metric:max,metric:min"}  # fmt: skip
    columns = [f"metrics.{m}" for m, _ in chosen]
    missing = [c.removeprefix("metrics.") for c in columns if c not in trials]
    if missing:
        return {"objectives": [], "problem": f"no metric {missing[0]!r} in these runs"}
    directions = [d for _, d in chosen]
    finished = trials[trials["status"] == "FINISHED"] if "status" in trials else trials
    values = finished[columns].to_numpy(dtype=float)
    keep = np.all(np.isfinite(values), axis=1)
    finished, values = finished[keep], values[keep]
    if not len(values):
        return {"objectives": [m for m, _ in chosen], "problem": "no finished trial has every objective"}
    ref = _reference(reference, values, directions)
    if isinstance(ref, str):
        return {"objectives": [m for m, _ in chosen], "problem": ref}
    front = pareto_front(values, directions)
    searches = []
    order_col = "end_time" if "end_time" in finished else "start_time"
    for search_id, rows in finished.assign(_i=np.arange(len(finished))).groupby("search_id", sort=True):
        rows = rows.sort_values(order_col, kind="stable") if order_col in rows else rows
        idx = rows["_i"].to_numpy()
        stops = np.unique(np.linspace(1, len(idx), min(HISTORY_POINTS, len(idx))).round().astype(int))
        history = [[int(n), hypervolume(values[idx[:n]], directions, ref.point)] for n in stops]
        searches.append({"search": str(search_id), "trials": int(len(idx)), "hypervolume": history})
    ids = finished["run_id"].astype(str).to_numpy()
    order = np.flatnonzero(front)[np.lexsort(as_losses(values[front], directions).T[::-1])]  # best first on the first
    return {
        "region": pareto_region(table, finished, front),
        "objectives": [{"metric": m, "direction": d} for m, d in chosen],
        "reference": [float(v) for v in ref.point],
        "reference_chosen": ref.how,
        "pareto": [
            {"run_id": str(r), "values": [float(v) for v in row]}
            for r, row in zip(ids[order], values[order], strict=True)
        ],  # fmt: skip
        "hypervolume": hypervolume(values, directions, ref.point),
        "searches": searches,
        "points": _points(ids, values, directions),
        "importance": importance(table, finished, chosen, contributions(values, directions, ref.point)),
        "trials": int(len(values)),
        "problem": None,
    }


def _reference(given: str | None, values: np.ndarray, directions: list[str]) -> Reference | str:
    """The reference point given (one number per objective), else one chosen from the data; a text: why not."""
    if given in (None, ""):
        return reference_point(values, directions)
    try:
        point = np.array([float(v) for v in str(given).split(",")], dtype=float)
    except ValueError:
        return f"reference={given!r}: a comma-separated list of numbers"
    if len(point) != len(directions) or not np.all(np.isfinite(point)):
        return f"reference={given!r}: one finite number per objective ({len(directions)})"
    return Reference(point, "given")


def importance(table: RunTable, finished: pd.DataFrame, chosen: list[tuple[str, str]], contribution) -> PlainData:
    """fANOVA shares of each parameter: for each objective, and for the trials' exclusive hypervolume
    contribution (what the front would lose without them: 0 off the front). ``{target: {param: [share,
    std]}}``, or ``{"problem": why}``."""
    if len(finished) < MIN_RANKED:
        return {"problem": f"too few finished trials to rank parameters ({len(finished)}; from {MIN_RANKED})"}
    if not np.all(np.isfinite(contribution)):
        contribution = np.zeros(len(finished))  # too large a front to weigh each point: only the objectives
    frame = finished.assign(**{"metrics.__contribution": contribution})
    targets = [(f"{m} ({d})", m, d) for m, d in chosen]
    if np.ptp(contribution) > 0:
        targets.append((CONTRIBUTION, "__contribution", "max"))
    out: PlainData = {}
    for label, metric, direction in targets:
        data = prepare(table, frame, metric, direction)
        if not data.axes or np.ptp(data.y) == 0:
            continue
        shares = FastFANOVA(data.X, data.y, data.names, seed=0).importance(pairs=False)
        out[label] = {n: [float(shares.single_mean[n]), float(shares.single_std[n])] for n in shares.names}
    return out


MAX_POINTS = 5000  # trials drawn one by one in the scatter matrix and the parallel coordinates


def _points(ids: np.ndarray, values: np.ndarray, directions: list[str]) -> dict[str, Any]:
    """Every finished trial's objectives and Pareto rank (1 = non-dominated), the best ranks first, at most
    ``MAX_POINTS`` of them (the page says how many it draws)."""
    ranks = pareto_ranks(values, directions) if len(values) <= MAX_POINTS else pareto_front(values, directions) * 1
    ranks = np.where(ranks == 0, 2, ranks) if len(values) > MAX_POINTS else ranks
    order = np.argsort(ranks, kind="stable")[:MAX_POINTS]
    return {"run_ids": [str(r) for r in ids[order]], "values": values[order].tolist(),
            "rank": [int(r) for r in ranks[order]], "of": int(len(values))}  # fmt: skip


def pareto_region(table: RunTable, finished: pd.DataFrame, front: np.ndarray) -> dict[str, Any]:
    """Where the Pareto-optimal trials lie, per parameter: the range (numeric) or the choices (otherwise) the
    non-dominated trials span, for a range the share of the searched one it covers, and the front's median
    beside all trials' (the front's extreme points stretch its range: the medians show where it leans)."""
    out: dict[str, Any] = {}
    for name in table.params:
        column = f"params.{name}"
        if column not in finished:
            continue
        on_front = finished[column][front].dropna()
        everywhere = finished[column].dropna()
        if on_front.empty or everywhere.astype(str).nunique() < 2:
            continue
        numbers = pd.to_numeric(everywhere, errors="coerce")
        if name in table.numeric_params and numbers.notna().all():
            lo, hi = float(numbers.min()), float(numbers.max())
            f_lo, f_hi = (float(v) for v in pd.to_numeric(on_front).agg(["min", "max"]))
            log = name in table.log_params and lo > 0
            width = (np.log(hi) - np.log(lo)) if log else (hi - lo)
            part = (np.log(f_hi) - np.log(f_lo)) if log else (f_hi - f_lo)
            share = float(part / width) if width > 0 else 1.0
            median = float(pd.to_numeric(on_front).median())
            out[name] = {"range": [f_lo, f_hi], "share": share, "log": log, "median": median,
                         "median_all": float(numbers.median())}  # fmt: skip
        else:
            out[name] = {"choices": sorted(on_front.astype(str).unique().tolist()),
                         "of": int(everywhere.astype(str).nunique())}  # fmt: skip
    return out


def figures(data: PlainData) -> list[dict]:
    if data.get("problem"):
        return []
    names = [o["metric"] for o in data["objectives"]]
    history = [
        {"type": "scatter", "mode": "lines", "name": s["search"][:8], "x": [p[0] for p in s["hypervolume"]],
         "y": [p[1] for p in s["hypervolume"]], "line": {"shape": "hv"}}
        for s in data["searches"]
    ]  # fmt: skip
    hv = {"data": history, "layout": {"title": {"text": "Hypervolume as the trials ended"},
          "xaxis": {"title": {"text": "trials ended"}}, "yaxis": {"title": {"text": "hypervolume"}}}}  # fmt: skip
    points = sorted(data["pareto"], key=lambda p: p["values"][0])
    front = {"data": [{"type": "scatter", "mode": "lines+markers", "name": "non-dominated",
                       "x": [p["values"][0] for p in points], "y": [p["values"][1] for p in points],
                       "text": [p["run_id"][:8] for p in points], "line": {"shape": "hv", "color": "#D55E00"}}],
             "layout": {"title": {"text": f"Pareto front: {names[0]} and {names[1]}"},
                        "xaxis": {"title": {"text": names[0]}}, "yaxis": {"title": {"text": names[1]}}}}  # fmt: skip
    figs = [front, hv]
    if len(names) >= 3 and data.get("points"):
        figs += _many_objectives(data["points"], names)
    shares = {k: v for k, v in (data.get("importance") or {}).items() if k != "problem"}
    if shares:
        params = sorted({p for per in shares.values() for p in per}, key=lambda p: -max(
            per.get(p, [0.0])[0] for per in shares.values()))  # fmt: skip
        bars = [{"type": "bar", "orientation": "h", "name": target, "y": params[::-1],
                 "x": [per.get(p, [0.0, 0.0])[0] for p in params[::-1]],
                 "error_x": {"type": "data", "array": [per.get(p, [0.0, 0.0])[1] for p in params[::-1]]}}
                for target, per in shares.items()]  # fmt: skip
        figs.append({"data": bars, "layout": {"barmode": "group", "height": max(280, 28 * len(params) * len(bars)),
                     "title": {"text": "Importance (fANOVA share) per objective and for the hypervolume contribution"},
                     "xaxis": {"title": {"text": "share of the variance"}, "range": [0, 1]},
                     "yaxis": {"automargin": True}}})  # fmt: skip
    return figs


def _many_objectives(points: dict[str, Any], names: list[str]) -> list[dict]:
    """Three to six objectives: every pair in a scatter matrix (the non-dominated trials in the front's colour),
    and one line per trial across the objectives, coloured by Pareto rank (darker = better)."""
    values = np.asarray(points["values"], dtype=float)
    rank = np.asarray(points["rank"], dtype=float)
    front = rank == 1
    dims = [{"label": n, "values": values[:, i].tolist()} for i, n in enumerate(names)]
    drawn = f"{len(values)} of {points['of']} trials" if len(values) < points["of"] else f"{len(values)} trials"
    splom = {"data": [{"type": "splom", "dimensions": dims, "text": points["run_ids"], "showupperhalf": False,
                       "marker": {"size": 5, "color": ["#D55E00" if f else "#BBBBBB" for f in front]}}],
             "layout": {"title": {"text": f"Every pair of objectives ({drawn}; the non-dominated in orange)"},
                        "height": 160 * len(names) + 120}}  # fmt: skip
    lines = {"data": [{"type": "parcoords", "dimensions": dims,
                       "line": {"color": rank.tolist(), "colorscale": "Viridis", "showscale": True,
                                "colorbar": {"title": {"text": "Pareto rank"}}}}],
             "layout": {"title": {"text": f"The objectives of {drawn}, by Pareto rank (darker = better)"}}}  # fmt: skip
    return [splom, lines]


def lines(data: PlainData) -> list[str]:
    if data.get("problem"):
        return [str(data["problem"])]
    names = ", ".join(f"{o['metric']} ({o['direction']})" for o in data["objectives"])
    reference = f"{data['reference']} ({data['reference_chosen']})"
    out = [f"{len(data['pareto'])} non-dominated of {data['trials']} finished trials: {names}",
           f"hypervolume {data['hypervolume']:.6g} against {reference}"]  # fmt: skip
    for name, where in data.get("region", {}).items():
        if "range" in where:
            lo, hi = where["range"]
            out.append(f"Pareto-optimal trials have {name} in [{lo:.4g}, {hi:.4g}] ({where['share']:.0%} of the "
                       f"range), median {where['median']:.4g} (all trials: {where['median_all']:.4g})")  # fmt: skip
        else:
            out.append(f"Pareto-optimal trials have {name} in {where['choices']} ({where['of']} tried)")
    shares = data.get("importance") or {}
    if shares.get("problem"):
        out.append(f"no importance: {shares['problem']}")
    for target, per in shares.items():
        if target != "problem":
            top = sorted(per.items(), key=lambda kv: -kv[1][0])[:3]
            out.append(f"importance for {target}: " + ", ".join(f"{n} {v[0]:.2f}" for n, v in top))
    for s in data["searches"]:
        last = s["hypervolume"][-1][1] if s["hypervolume"] else 0.0
        out.append(f"search {s['search'][:8]}: {s['trials']} trials, hypervolume {last:.6g}")
    return out
