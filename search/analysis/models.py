"""The model overview's numbers (REMAP's model overview, ../shared/seeds/003_*): each trained architecture's
score and size, the Pareto front of score against parameters, and a 2-D map of the architectures by their
structural distance. Pure: a runs frame in, ``ModelsInfo`` out; ``trellis.layouts.models`` draws it.

The map embeds the models that are not children of another (classical MDS over the edit distance of layer
sequences); an ablation's or variation's children are placed from their distances to those alone, so the
models already drawn never move when children come in.
"""

from __future__ import annotations

import json
from typing import NamedTuple

import numpy as np
import pandas as pd

from trellis.search.architectures.distance import distance_matrix, structural_distance
from trellis.search.architectures.layers import (
    INPUTS,
    Architecture,
    ArchitectureError,
    count_parameters,
    parse_architecture,
    shapes,
)
from trellis.search.architectures.projection import classical_mds
from trellis.search.config.origin import parse_queue

MAX_LANDMARKS = 200  # embedded by MDS (the best ones); the rest are placed out of sample
MAX_MODELS = 2000


class ModelsInfo(NamedTuple):
    run_ids: list[str]
    archs: list[Architecture]
    score: np.ndarray  # the objective at each model's last step
    n_params: np.ndarray
    search_ids: list[str]
    origin_model: list[str]  # the parent model's run id, "" for a model that is not a child
    origin_change: list[str]
    pareto: np.ndarray  # bool: no other model is better and at most as large
    coords: np.ndarray  # (n, 2) the structural map
    objective: str
    direction: str
    param: str
    input_shape: tuple[int, ...] | None
    note: str
    run_names: tuple[str, ...] = ()  # MLflow's run names (a trial's ``trial-0002``), as the curves name them


def architecture_param(trials: pd.DataFrame, params: list[str]) -> str | None:
    """The parameter whose values are architecture texts (the first that parses on every non-empty value)."""
    for name in params:
        values = trials[f"params.{name}"].dropna()
        values = values[values.astype(str).str.startswith("[")]
        if values.empty:
            continue
        try:
            for text in values.astype(str).unique()[:20]:
                parse_architecture(text)
        except ArchitectureError:
            continue
        return name
    return None


def input_of_configs(configs: pd.Series, param: str) -> tuple[tuple[int, ...], int] | None:
    """The (input shape, classes) a search config gives the architecture parameter, or None."""
    for text in configs.dropna().unique():
        try:
            spec = json.loads(text)["space"][param]
        except (ValueError, KeyError, TypeError):
            continue
        raw = spec.get("input", "digits") if isinstance(spec, dict) else None
        if isinstance(raw, str) and raw in INPUTS:
            return INPUTS[raw]
        if isinstance(raw, list) and spec.get("classes"):
            return tuple(int(v) for v in raw), int(spec["classes"])
    return None


def pareto_front(score: np.ndarray, size: np.ndarray, direction: str) -> np.ndarray:
    """True for the models no other model beats on score while being no larger (ties on both kept)."""
    better = score if direction == "max" else -score
    order = np.lexsort((-better, size))  # smallest first; among equal sizes the best first
    front = np.zeros(len(score), dtype=bool)
    best = -np.inf
    for i in order:
        if better[i] > best:
            front[i] = True
            best = better[i]
    return front


def structural_map(archs: list[Architecture], children: np.ndarray, score: np.ndarray, direction: str) -> np.ndarray:
    """2-D coordinates: MDS over the non-children (the best ``MAX_LANDMARKS``), the others placed from
    their distances to those."""
    n = len(archs)
    coords = np.zeros((n, 2))
    if n < 2:
        return coords
    roots = np.flatnonzero(~children) if (~children).any() else np.arange(n)
    better = score if direction == "max" else -score
    roots = roots[np.argsort(-np.nan_to_num(better[roots], nan=-np.inf), kind="stable")][:MAX_LANDMARKS]
    projection = classical_mds(distance_matrix([archs[i] for i in roots]))
    coords[roots] = projection.coords
    rest = np.setdiff1d(np.arange(n), roots)
    if len(rest):
        d = np.array([[structural_distance(archs[i], archs[j]) for j in roots] for i in rest])
        coords[rest] = projection.place(d)
    return coords


def _get_models_info(
    trials: pd.DataFrame, params: list[str], objective: str, direction: str, configs: pd.Series | None = None
) -> ModelsInfo | str:
    """The overview's numbers, or why there is nothing to draw (a sentence for the page)."""
    param = architecture_param(trials, params)
    if param is None:
        return (
            "No architecture parameter in these runs: pick the experiment of an architecture search (the demo's "
            "is trellis-architectures), or run one (examples/configs/arch_digits.yaml)."
        )
    column = f"metrics.{objective}"
    if column not in trials:
        return f"No run has logged {objective!r}: pick another objective."
    rows = trials[trials[f"params.{param}"].notna() & trials[column].notna()]
    rows = rows.drop_duplicates("run_id")
    note = ""
    if len(rows) > MAX_MODELS:
        note = f"the best {MAX_MODELS} of {len(rows)} models are drawn"
        rows = rows.sort_values(column, ascending=direction == "min").head(MAX_MODELS)
    if rows.empty:
        return f"No model has a value of {objective!r} yet."
    shape = input_of_configs(configs if configs is not None else pd.Series(dtype=object), param)
    archs, keep = [], []
    for i, text in enumerate(rows[f"params.{param}"].astype(str)):
        try:
            archs.append(parse_architecture(text))
            keep.append(i)
        except ArchitectureError:
            continue
    rows = rows.iloc[keep]
    recorded = rows["metrics.n_params"].to_numpy(float) if "metrics.n_params" in rows else np.full(len(rows), np.nan)
    n_params = np.array([_size(a, r, shape) for a, r in zip(archs, recorded, strict=True)])
    score = rows[column].to_numpy(float)
    origin = rows["origin_model"].fillna("").astype(str).tolist() if "origin_model" in rows else [""] * len(rows)
    change = rows["origin_change"].fillna("").astype(str).tolist() if "origin_change" in rows else [""] * len(rows)
    children = np.array([bool(o) for o in origin])
    sized = np.isfinite(n_params)
    pareto = np.zeros(len(rows), dtype=bool)
    pareto[sized] = pareto_front(score[sized], n_params[sized], direction)
    return ModelsInfo(
        rows["run_id"].astype(str).tolist(),
        archs,
        score,
        n_params,
        rows["search_id"].astype(str).tolist(),
        origin,
        change,
        pareto,
        structural_map(archs, children, score, direction),
        objective,
        direction,
        param,
        None if shape is None else tuple(shape[0]),
        note,
        tuple(rows["run_name"].fillna("").astype(str)) if "run_name" in rows else (),
    )


def _size(arch: Architecture, recorded: float, shape: tuple | None) -> float:
    if np.isfinite(recorded):
        return float(recorded)
    if shape is None:
        return float("nan")
    try:
        return float(count_parameters(arch, shape[0], shape[1]))
    except ArchitectureError:
        return float("nan")


def activation_sizes(arch: Architecture, input_shape: tuple[int, ...] | None) -> list[int | None]:
    """The number of values after each layer (the glyphs' widths), None where unknown."""
    if input_shape is None:
        return [None] * len(arch)
    try:
        return [int(np.prod(s)) for s in shapes(arch, input_shape)]
    except ArchitectureError:
        return [None] * len(arch)


class ChildRow(NamedTuple):
    run_id: str
    change: str
    score: float
    delta: float  # the child's score minus the parent's, in the better direction (> 0: the child is better)
    n_params: float


def children_of(info: ModelsInfo, run_id: str) -> list[ChildRow]:
    """The trained children of one model, the change that hurt most first (the layers that matter)."""
    if run_id not in info.run_ids:
        return []
    parent = info.score[info.run_ids.index(run_id)]
    sign = 1.0 if info.direction == "max" else -1.0
    rows = [
        ChildRow(rid, info.origin_change[i], float(info.score[i]), sign * (info.score[i] - parent), info.n_params[i])
        for i, rid in enumerate(info.run_ids)
        if info.origin_model[i] == run_id
    ]
    return sorted(rows, key=lambda r: r.delta)


class QueueRow(NamedTuple):
    search_id: str
    experiment_id: str
    kind: str  # ablation | variation
    status: str  # the search run's MLflow status
    expected: int  # children it trains
    ended: int  # children that ended (trained, failed or stopped)
    waiting_children: tuple[tuple[str, str], ...] = ()  # (architecture, change) not started, in training order

    @property
    def waiting(self) -> int:
        return 0 if self.status in ("FINISHED", "FAILED", "KILLED") else len(self.waiting_children)


def children_queue(runs: pd.DataFrame, run_id: str, queues: dict[str, str] | None = None) -> list[QueueRow]:
    """The searches training children of one model: how many ended, and the waiting ones in the order they
    will train (the models page's reordering, ``trellis.origin.queue``, when there is one; ``queues``: fresher
    values of that tag by search id, read from the store)."""
    if "origin_model" not in runs:
        return []
    searches = runs[(runs["kind"] == "search") & (runs["origin_model"] == run_id)]
    out = []
    for _, row in searches.iterrows():
        try:
            config = json.loads(row["trellis_config"])
            expected, origin = int(config["termination"]["max_trials"]), config["origin"]
            changes = list(origin["changes"].items())
            param, kind = str(origin.get("param", "architecture")), str(origin["kind"])
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        trials = runs[(runs["search_id"] == row["run_id"]) & (runs["kind"] != "search")]
        ended = int(trials["status"].isin(["FINISHED", "FAILED", "KILLED"]).sum())
        started = set(trials[f"params.{param}"].dropna().astype(str)) if f"params.{param}" in trials else set()
        order = parse_queue((queues or {}).get(str(row["run_id"]), row.get("origin_queue")), len(changes))
        queued = tuple(changes[i] for i in order) if order is not None else tuple(changes)
        waiting = tuple((text, what) for text, what in queued if text not in started)
        out.append(
            QueueRow(str(row["run_id"]), str(row["experiment_id"]), kind, str(row["status"]), expected, ended, waiting)
        )
    return out


def active_children_searches(runs: pd.DataFrame, run_id: str) -> list[str]:
    """The children searches of one model still waiting or running (their queue can still change)."""
    if "origin_model" not in runs:
        return []
    rows = runs[(runs["kind"] == "search") & (runs["origin_model"] == run_id)]
    return rows.loc[rows["status"].isin(["RUNNING", "SCHEDULED"]), "run_id"].astype(str).tolist()


def existing_children(runs: pd.DataFrame, run_id: str) -> set[str]:
    """The architectures already trained or queued as children of one model (not made again)."""
    if "origin_model" not in runs:
        return set()
    out: set[str] = set()
    for _, row in runs[runs["origin_model"] == run_id].iterrows():
        if row["kind"] == "search":
            try:
                out |= set(json.loads(row["trellis_config"])["origin"]["changes"])
            except (ValueError, KeyError, TypeError):
                continue
        else:
            out |= {str(v) for k, v in row.items() if str(k).startswith("params.") and str(v).startswith("[")}
    return out
