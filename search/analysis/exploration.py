"""How a search explored its space (HyperTendril's exploration overview), as pure functions of MLflow's runs.

Input: one search's trials (rows of the run table), the lineage tags and rungs ``trellis.tracking.evaluations`` reads
and the objective at chosen steps. Output: NamedTuples the exploration page draws, tested without Dash.

- **Sampling order**: Trellis' ``trellis.trial`` number; runs of other tools by start time (no lineage).
- **Evaluations**: every value a search compared trials on. Hyperband/BOHB: one per rung (the
  ``trellis.rung`` metric's steps); PBT: one per generation a member lived through; others: the last value.
  Their x is the *iteration*: trials evaluated together (a rung of a bracket, a PBT generation) share it,
  so they align vertically; for a sequential search it is the sampling order.
- **End reasons**, **running best**, **categorical spreading** and **rung correlation** (Spearman's rank
  correlation between the objective at each rung or stopping step and at the final step).

Lineage edges, the hierarchy and the 2-D projection live in ``trellis.search.analysis.exploration_tree``.
"""

from __future__ import annotations

import json
import math
import zlib
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from trellis.search.registry import BRACKETED, POPULATION, SEQUENTIAL, shape_of

MAX_CORRELATION_STEPS = 12


class SearchData(NamedTuple):
    """One search's runs and what was read for them (``trellis.tracking.evaluations``)."""

    search_id: str
    label: str
    objective: str
    direction: str  # "max" | "min"
    trials: pd.DataFrame  # run table rows of this search's trials
    params: list[str]  # hyperparameters shown (present in these trials)
    log_params: set[str]
    tags: pd.DataFrame  # run_id, key, value (stopped_at_rung, pbt.replaced_trial, resumed_from, model_based)
    rungs: pd.DataFrame  # run_id, step, rung
    values: pd.DataFrame  # run_id, step, value: the objective at chosen steps and at each run's last step
    last_steps: pd.DataFrame  # run_id, step: last step each run logged the objective at


# -- sampling order ---------------------------------------------------------------------------------------


class OrderInfo(NamedTuple):
    run_ids: list[str]  # in sampling order
    numbers: np.ndarray  # trellis.trial, or the position for runs without it
    foreign: bool  # no trellis.trial: ordered by start time


def _get_order_info(trials: pd.DataFrame) -> OrderInfo:
    """Trials by ``trellis.trial``; runs without it (another tool's) after them by start time, then run id."""
    if trials.empty:
        return OrderInfo([], np.zeros(0, dtype=int), True)
    number = pd.to_numeric(trials["trial"], errors="coerce").astype(float).to_numpy()
    tagged = np.isfinite(number)
    start = trials["start_time"].astype("int64").to_numpy() if "start_time" in trials else np.zeros(len(trials))
    keys = np.lexsort((trials["run_id"].to_numpy(dtype=str), start, np.where(tagged, number, np.inf), ~tagged))
    run_ids = trials["run_id"].to_numpy(dtype=object)[keys].tolist()
    numbers = np.where(tagged[keys], number[keys], np.arange(len(keys))).astype(int)
    return OrderInfo(run_ids, numbers, not tagged.any())


# -- evaluations and their iterations ----------------------------------------------------------------------


class EvaluationsInfo(NamedTuple):
    frame: pd.DataFrame  # trial (position in sampling order), run_id, x, step, rung, value, final
    kind: str  # a registry shape: sequential | bracketed | population
    rounds: pd.DataFrame  # x, label, group (bracket s / generation g / ""), group_start (first x of the group)


def config_of(trials: pd.DataFrame) -> dict[str, Any]:
    """The search's recorded config (``trellis.config`` on the search run, copied into the view), or {}."""
    if "trellis_config" not in trials:
        return {}
    for text in pd.Series(trials["trellis_config"]).dropna().unique():
        try:
            return json.loads(text)
        except ValueError:
            continue
    return {}


def algorithm_of(trials: pd.DataFrame) -> str | None:
    found = trials["algorithm"].dropna() if "algorithm" in trials else pd.Series(dtype=object)
    return str(found.mode().iloc[0]) if len(found) else None


def pbt_interval(trials: pd.DataFrame, config: dict) -> int:
    """PBT's generation length: the config's ``interval``, else the gcd of the steps members ended at."""
    interval = (config.get("algorithm") or {}).get("interval")
    if interval:
        return int(interval)
    reached = pd.to_numeric(trials.get("budget_reached"), errors="coerce").dropna().astype(int)
    reached = [r for r in reached if r > 0]
    return max(1, math.gcd(*reached)) if reached else 1


def evaluation_steps(data: SearchData, kind: str, interval: int = 1) -> list[int]:
    """The steps the objective must be read at: rung steps, PBT generation ends, early-stopping steps, or (for
    a search that compared trials only at the end) a few evenly spaced steps, for the rung correlation."""
    top = int(data.last_steps["step"].max()) if len(data.last_steps) else 0
    if kind == BRACKETED and len(data.rungs):
        return sorted(set(data.rungs["step"].astype(int)))
    if kind == POPULATION:
        return list(range(interval, top + 1, interval))
    stopped = _tag(data.tags, "trellis.stopped_at_rung")
    steps = sorted({int(float(v)) for v in stopped.dropna()})
    es = (config_of(data.trials).get("early_stopping") or {}).get("step")
    if es and int(es) > 0:
        steps = sorted(set(steps) | set(range(int(es), top, int(es))))
    if not steps and top > 1:
        steps = sorted({int(s) for s in np.linspace(1, top, 7)[:-1].round()})
    if len(steps) > MAX_CORRELATION_STEPS:
        pick = np.linspace(0, len(steps) - 1, MAX_CORRELATION_STEPS).round().astype(int)
        steps = [steps[i] for i in sorted(set(pick))]
    return steps


def _tag(tags: pd.DataFrame, key: str) -> pd.Series:
    """A tag's value per run id."""
    if tags.empty:
        return pd.Series(dtype=object)
    rows = tags[tags["key"] == key]
    return pd.Series(rows["value"].to_numpy(dtype=object), index=rows["run_id"].to_numpy(dtype=object))


def search_kind(data: SearchData) -> str:
    """The search's shape (``trellis.search.registry``): its algorithm's row says; a search whose algorithm
    this install does not know is bracketed when it recorded rungs, else sequential."""
    shape = shape_of(algorithm_of(data.trials))
    if shape is None:
        return BRACKETED if len(data.rungs) else SEQUENTIAL
    return shape


def _get_evaluations_info(data: SearchData, order: OrderInfo) -> EvaluationsInfo:
    kind = search_kind(data)
    position = pd.Series(np.arange(len(order.run_ids)), index=pd.Index(order.run_ids, dtype=object))
    values = data.values[data.values["run_id"].isin(position.index)]
    last = data.last_steps.set_index("run_id")["step"] if len(data.last_steps) else pd.Series(dtype="int64")
    if kind == BRACKETED:
        frame, rounds = _bandit(data, position, values)
    elif kind == POPULATION:
        frame, rounds = _pbt(data, position, values, last)
    else:
        frame = values.assign(last=values["run_id"].map(last))
        frame = frame[frame["step"] == frame["last"]].drop(columns="last")
        frame = frame.assign(trial=frame["run_id"].map(position).astype(int), rung=np.nan)
        frame["x"] = frame["trial"]
        rounds = pd.DataFrame({"x": [], "label": [], "group": [], "group_start": []})
    frame = frame.sort_values(["trial", "step"], kind="stable").reset_index(drop=True)
    frame["final"] = ~frame["trial"].duplicated(keep="last").to_numpy()
    columns = ["trial", "run_id", "x", "step", "rung", "value", "final"]
    return EvaluationsInfo(frame[columns].astype({"x": "int64", "trial": "int64"}), kind, rounds)


def _bandit(data: SearchData, position: pd.Series, values: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One evaluation per rung job. A round is a rung of a bracket *run*: consecutive trial numbers with the
    same bracket tag form one run of it (a search may run a bracket more than once)."""
    rungs = data.rungs[data.rungs["run_id"].isin(position.index)].astype({"run_id": str})
    frame = rungs.merge(values.astype({"run_id": str}), on=["run_id", "step"], how="left")
    frame["trial"] = frame["run_id"].map(position).astype(int)
    brackets = data.trials.set_index("run_id")["bracket"] if "bracket" in data.trials else pd.Series(dtype=object)
    by_trial = pd.Series(
        pd.to_numeric(brackets.reindex(position.index), errors="coerce").to_numpy(dtype=float),
        index=np.arange(len(position)),
    )
    changes = by_trial.ne(by_trial.shift()) & by_trial.notna()
    block = changes.cumsum()
    frame["block"] = frame["trial"].map(block).astype(int)
    frame["bracket"] = frame["trial"].map(by_trial)
    keys = frame[["block", "rung", "bracket"]].drop_duplicates().sort_values(["block", "rung"], kind="stable")
    keys = keys.reset_index(drop=True)
    keys["x"] = np.arange(len(keys))
    frame = frame.merge(keys[["block", "rung", "x"]], on=["block", "rung"], how="left")
    first_x = keys.groupby("block")["x"].transform("min")
    rounds = pd.DataFrame(
        {
            "x": keys["x"],
            "label": [f"rung {int(r)}" for r in keys["rung"]],
            "group": [f"bracket {int(b)}" if np.isfinite(b) else "" for b in keys["bracket"]],
            "group_start": first_x,
        }
    )
    return frame, rounds


def _pbt(
    data: SearchData, position: pd.Series, values: pd.DataFrame, last: pd.Series
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One evaluation per generation a member lived through (its value at the generation's last step, or at
    its own last step); x is the generation."""
    interval = pbt_interval(data.trials, config_of(data.trials))
    ends = values["step"] % interval == 0
    at_last = values["step"].to_numpy() == values["run_id"].map(last).to_numpy()
    frame = values[ends.to_numpy() | at_last].copy()
    frame["trial"] = frame["run_id"].map(position).astype(int)
    frame["x"] = ((frame["step"] + interval - 1) // interval - 1).clip(lower=0).astype(int)
    frame = frame.drop_duplicates(["trial", "x"], keep="first")
    frame["rung"] = frame["x"].astype(float)
    xs = sorted(frame["x"].unique())
    rounds = pd.DataFrame(
        {"x": xs, "label": [f"generation {g}" for g in xs], "group": [f"generation {g}" for g in xs], "group_start": xs}
    )
    return frame, rounds


# -- why each trial ended ---------------------------------------------------------------------------------

STATUS_REASON = {"FINISHED": "completed", "FAILED": "failed", "KILLED": "killed", "RUNNING": "running"}


class EndsInfo(NamedTuple):
    frame: pd.DataFrame  # trial, run_id, reason, label, last_step, stopped_at


def _get_ends_info(data: SearchData, order: OrderInfo) -> EndsInfo:
    """Why each trial ended (Trellis' ``trellis.end_reason``; MLflow's status for other runs) and the last
    step it reached (``trellis.budget.reached``, else the last step it logged the objective at)."""
    trials = data.trials.set_index("run_id").reindex(order.run_ids)
    status = trials["status"].astype(object)
    reason = trials["end_reason"].astype(object) if "end_reason" in trials else pd.Series(None, index=trials.index)
    running = status.eq("RUNNING") | status.eq("SCHEDULED")
    reason = reason.where(reason.notna() & ~running, status.map(STATUS_REASON).fillna("running"))
    stopped = pd.to_numeric(_tag(data.tags, "trellis.stopped_at_rung").reindex(trials.index), errors="coerce")
    reached = pd.to_numeric(trials.get("budget_reached"), errors="coerce").astype(float)
    logged = data.last_steps.set_index("run_id")["step"] if len(data.last_steps) else pd.Series(dtype=float)
    last = reached.where(reached.notna(), logged.reindex(trials.index).astype(float))
    labels = []
    for r, k in zip(reason.to_numpy(dtype=object), stopped.to_numpy(dtype=float), strict=True):
        if r == "pruned":
            labels.append(f"pruned at rung {int(k)}" if np.isfinite(k) else "pruned")
        elif r == "early_stopped":
            labels.append(f"early-stopped at step {int(k)}" if np.isfinite(k) else "early-stopped")
        else:
            labels.append(str(r))
    frame = pd.DataFrame(
        {
            "trial": np.arange(len(order.run_ids)),
            "run_id": order.run_ids,
            "reason": reason.to_numpy(dtype=object),
            "label": labels,
            "last_step": last.to_numpy(dtype=float),
            "stopped_at": stopped.to_numpy(dtype=float),
        }
    )
    return EndsInfo(frame)


# -- running best, spreading, correlation -----------------------------------------------------------------


def running_best(values: np.ndarray, direction: str) -> np.ndarray:
    """The best value so far at each position (NaN until the first finite one)."""
    v = np.asarray(values, dtype=float)
    v = np.where(np.isfinite(v), v, -np.inf if direction == "max" else np.inf)
    best = np.maximum.accumulate(v) if direction == "max" else np.minimum.accumulate(v)
    return np.where(np.isfinite(best), best, np.nan)


def spread_categorical(codes: np.ndarray, x: np.ndarray, keys: list[str], width: float = 0.7) -> np.ndarray:
    """Category codes plus an offset so points do not overlap, deterministic (a redraw moves nothing).

    Points sharing an x and a category are spread evenly across ``width`` (HyperTendril's repulsion, for
    trials evaluated together); a point alone at its x gets a jitter from a hash of its key (its run id), so
    a long sequential search shows a band per category instead of one line.
    """
    codes = np.asarray(codes, dtype=float)
    x = np.asarray(x)
    out = codes.copy()
    if len(codes) == 0:
        return out
    frame = pd.DataFrame({"x": x, "c": codes})
    group = frame.groupby(["x", "c"], sort=False)
    size = group["c"].transform("size").to_numpy()
    rank = group.cumcount().to_numpy()
    even = (rank + 0.5) / np.maximum(size, 1) - 0.5  # in (-0.5, 0.5)
    hashed = np.array([zlib.crc32(str(k).encode()) / 2**32 - 0.5 for k in keys]) if len(keys) else np.zeros(0)
    offset = np.where(size > 1, even, hashed * 0.6)
    return out + offset * width


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN with fewer than 3 pairs or a constant side."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3:
        return float("nan")
    ra = pd.Series(a[keep]).rank().to_numpy()
    rb = pd.Series(b[keep]).rank().to_numpy()
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


class CorrelationInfo(NamedTuple):
    frame: pd.DataFrame  # step, label, rho, n
    final_step: int | None
    what: str  # "rung" | "generation" | "stopping step" | "step"


def _get_correlation_info(data: SearchData, kind: str) -> CorrelationInfo:
    """Spearman's rho between the objective at each rung/stopping step and at the final step, over the trials
    that reached the final step (DeepCAVE's budget correlation)."""
    values = data.values
    empty = pd.DataFrame({"step": [], "label": [], "rho": [], "n": []})
    if values.empty or data.last_steps.empty:
        return CorrelationInfo(empty, None, "step")
    final_step = int(data.last_steps["step"].max())
    finals = values[values["step"] == final_step].set_index("run_id")["value"]
    interval = pbt_interval(data.trials, config_of(data.trials)) if kind == POPULATION else 1
    steps = [s for s in evaluation_steps(data, kind, interval) if s < final_step]
    rung_of = data.rungs.groupby("step")["rung"].agg(lambda r: sorted({int(v) for v in r})) if len(data.rungs) else {}
    rows = []
    for step in steps:
        at = values[values["step"] == step].set_index("run_id")["value"]
        both = at.index.intersection(finals.index)
        rho = spearman(at.reindex(both).to_numpy(), finals.reindex(both).to_numpy())
        label = f"step {step}"
        if kind == BRACKETED and step in rung_of:
            label += " (rung " + "/".join(str(r) for r in rung_of[step]) + ")"
        rows.append((step, label, rho, len(both)))
    frame = pd.DataFrame(rows, columns=["step", "label", "rho", "n"]) if rows else empty
    stopped = _tag(data.tags, "trellis.stopped_at_rung")
    what = {BRACKETED: "rung", POPULATION: "generation"}.get(kind, "stopping step" if len(stopped) else "step")
    return CorrelationInfo(frame, final_step, what)
