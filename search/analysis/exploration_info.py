"""Everything the exploration page draws for one search, or several side by side: ``_get_exploration_info``.

Pure: a function of ``SearchData`` (what ``trellis.tracking.evaluations`` read for a search's runs), tested without
Dash. The figures are ``trellis.layouts.exploration``'s.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from trellis.search.analysis.exploration import (
    CorrelationInfo,
    EndsInfo,
    EvaluationsInfo,
    OrderInfo,
    SearchData,
    _get_correlation_info,
    _get_ends_info,
    _get_evaluations_info,
    _get_order_info,
    _tag,
    config_of,
    running_best,
    spread_categorical,
)
from trellis.search.analysis.exploration_tree import (
    HierarchyInfo,
    LineageInfo,
    ProjectionInfo,
    _get_hierarchy_info,
    _get_lineage_info,
    _get_projection_info,
    scaled_configurations,
)


class ParamAxis(NamedTuple):
    name: str
    log: bool
    choices: list[str]  # categorical: the labels of codes 0, 1, ...; empty for a numeric parameter
    values: np.ndarray  # per trial (sampling order): the value, or the category code; NaN where inactive
    eval_y: np.ndarray  # per evaluation (``EvaluationsInfo.frame`` rows): where it is drawn, categories spread


class ExplorationInfo(NamedTuple):
    search_id: str
    label: str
    objective: str
    direction: str
    kind: str  # a registry shape: sequential | bracketed | population
    order: OrderInfo
    finals: np.ndarray  # per trial: the objective it ended with (NaN if none)
    best: np.ndarray  # running best of ``finals`` by sampling order (completed trials only)
    evaluations: EvaluationsInfo
    ends: EndsInfo
    lineage: LineageInfo
    correlation: CorrelationInfo
    hierarchy: HierarchyInfo
    params: list[ParamAxis]


def param_axes(trials: pd.DataFrame, params: list[str], log_params: set[str], space: dict) -> list[ParamAxis]:
    """Each parameter's values in sampling order; a categorical one as codes in the order its space lists the
    choices (else sorted), every value as text (``True`` and ``"True"`` are one category)."""
    axes = []
    for name in params:
        raw = trials[f"params.{name}"] if f"params.{name}" in trials else pd.Series(np.nan, index=trials.index)
        numbers = pd.to_numeric(raw, errors="coerce").astype(float)
        if numbers.notna().sum() == raw.notna().sum() and numbers.notna().any():
            log = name in log_params and bool((numbers.dropna() > 0).all())
            axes.append(ParamAxis(name, log, [], numbers.to_numpy(), np.zeros(0)))
            continue
        text = raw.map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
        declared = [str(c) for c in (space.get(name) or {}).get("choices", [])]
        seen = sorted(set(text.dropna()) - set(declared))
        choices = [c for c in declared if c in set(text.dropna())] + seen
        code = {c: i for i, c in enumerate(choices)}
        axes.append(ParamAxis(name, False, choices, text.map(code).astype(float).to_numpy(), np.zeros(0)))
    return axes


def placed(axis: ParamAxis, evaluations: pd.DataFrame) -> ParamAxis:
    """The axis with each evaluation's y: its trial's value; a category spread so points do not overlap."""
    trial = evaluations["trial"].to_numpy()
    y = axis.values[trial] if len(trial) else np.zeros(0)
    if axis.choices:
        active = np.isfinite(y)
        keys = evaluations["run_id"].to_numpy(dtype=object)[active]
        y = y.copy()
        y[active] = spread_categorical(y[active], evaluations["x"].to_numpy()[active], list(keys))
    return axis._replace(eval_y=y)


def completed_finals(trials: pd.DataFrame, objective: str) -> np.ndarray:
    """The objective each trial ended with, counted for the running best only when it completed (Trellis) or
    FINISHED (other tools): a pruned trial's low-budget value is no result."""
    col = f"metrics.{objective}"
    values = pd.to_numeric(trials[col], errors="coerce").astype(float) if col in trials else pd.Series(np.nan)
    values = values.reindex(trials.index)
    reason = trials["end_reason"] if "end_reason" in trials else pd.Series(None, index=trials.index, dtype=object)
    ended = reason.eq("completed") | (reason.isna() & trials["status"].eq("FINISHED"))
    return np.where(ended.to_numpy(dtype=bool), values.to_numpy(), np.nan)


def _get_exploration_info(data: SearchData) -> ExplorationInfo:
    order = _get_order_info(data.trials)
    trials = data.trials.set_index("run_id", drop=False).reindex(order.run_ids)
    replaced = _tag(data.tags, "trellis.pbt.replaced_trial")
    trials = trials.assign(pbt_replaced=replaced.reindex(trials.index).to_numpy(dtype=object))
    evaluations = _get_evaluations_info(data, order)
    col = f"metrics.{data.objective}"
    last_values = pd.to_numeric(trials[col], errors="coerce").to_numpy(dtype=float) if col in trials else None
    finals = last_values if last_values is not None else np.full(len(order.run_ids), np.nan)
    lineage = _get_lineage_info(trials.reset_index(drop=True), order.run_ids)
    frame = evaluations.frame.merge(evaluations.rounds[["x", "group", "group_start"]], on="x", how="left")
    hierarchy = _get_hierarchy_info(data.label, evaluations.kind, lineage, order.numbers, finals, frame)
    space = config_of(data.trials).get("space") or {}
    return ExplorationInfo(
        data.search_id,
        data.label,
        data.objective,
        data.direction,
        evaluations.kind,
        order,
        finals,
        running_best(completed_finals(trials, data.objective), data.direction),
        evaluations,
        _get_ends_info(data, order),
        lineage,
        _get_correlation_info(data, evaluations.kind),
        hierarchy,
        [placed(a, evaluations.frame) for a in param_axes(trials, data.params, data.log_params, space)],
    )


class PageInfo(NamedTuple):
    searches: list[ExplorationInfo]
    offsets: list[int]  # each search's first trial index on the page (hover ids are page-wide)
    projection: ProjectionInfo
    score_range: tuple[float, float] | None  # finite final values, all searches
    params: list[str]  # the union of parameters, in the order drawn (one row of small plots each)
    note: str


def _get_page_info(datas: list[SearchData], log_params: set[str], note: str = "") -> PageInfo:
    """Several searches side by side: each one's info, one projection over all of them (the union of their
    parameters), one colour range."""
    infos = [_get_exploration_info(d) for d in datas]
    offsets = list(np.cumsum([0] + [len(i.order.run_ids) for i in infos])[:-1].astype(int))
    params = list(dict.fromkeys(p for d in datas for p in d.params))
    frames = [
        d.trials.set_index("run_id", drop=False).reindex(i.order.run_ids) for d, i in zip(datas, infos, strict=True)
    ]
    matrix = scaled_configurations(pd.concat(frames) if frames else pd.DataFrame(), params, log_params)
    projection = _get_projection_info(matrix)
    finals = np.concatenate([i.finals for i in infos]) if infos else np.zeros(0)
    finite = finals[np.isfinite(finals)]
    score_range = (float(finite.min()), float(finite.max())) if len(finite) else None
    return PageInfo(infos, offsets, projection, score_range, params, note)
