"""The tags a search writes on its MLflow runs (docs/mlflow-schema.md), built from plain values."""

from __future__ import annotations

import json
import os
import socket
from typing import Any

from trellis.search.config import SearchConfig
from trellis.search.engine.progress import Progress
from trellis.tracking import schema
from trellis.tracking.schema import EndReason, SearchState

HEARTBEAT_S = 5.0  # how often a running search says it is alive


def heartbeat_tags(now: float) -> dict[str, str]:
    return {schema.HEARTBEAT: f"{now:.0f}", schema.RUNNER: f"{socket.gethostname()}:{os.getpid()}"}


SEARCH_STATUS = {SearchState.COMPLETED: "FINISHED", SearchState.KILLED: "KILLED", SearchState.FAILED: "FAILED"}


def search_start_tags(config: SearchConfig) -> dict[str, Any]:
    """The parent run's tags as a search starts (None values are left out by the recorder)."""
    return {
        schema.TYPE: "search",
        schema.SEARCH_NAME: config.name,
        schema.ALGORITHM: config.algorithm.name,
        schema.OBJECTIVE: config.objective.metric,
        schema.DIRECTION: config.objective.direction,
        schema.OBJECTIVES: json.dumps([{"metric": o.metric, "direction": o.direction} for o in config.objectives]),
        schema.SEARCH_STATE: SearchState.RUNNING,
        schema.RELAUNCHED_FROM: config.relaunched_from,
        schema.SEED: config.algorithm.seed,
        schema.RECORD: ",".join(config.record) or None,
        schema.SCHEMA: schema.SCHEMA_VERSION,
        schema.MLFLOW_SOURCE_NAME: config.source or "trellis",
        schema.ORIGIN_MODEL: config.origin.model if config.origin else None,
        schema.ORIGIN_KIND: config.origin.kind if config.origin else None,
    }


def trial_common_tags(config: SearchConfig, search_id: str) -> dict[str, str]:
    """Tags every trial run of the search carries."""
    return {
        schema.TYPE: "trial",
        schema.SEARCH_ID: search_id,
        schema.ALGORITHM: config.algorithm.name,
        schema.OBJECTIVE: config.objective.metric,
        schema.DIRECTION: config.objective.direction,
        schema.BUDGET_RESOURCE: config.budget.resource,
        schema.SCHEMA: schema.SCHEMA_VERSION,
    }


def trial_start_tags(number: int, budget_stop: int, queued_at: float, checkpoint: str) -> dict[str, Any]:
    return {
        schema.TRIAL_NUMBER: number,
        schema.BUDGET_MAX: budget_stop,
        schema.QUEUED_AT: f"{queued_at:.3f}",
        schema.CHECKPOINT: checkpoint,
    }


def trial_end_tags(
    reason: EndReason, step: int, worker: str, started_at: float, ended_at: float, error: str | None
) -> dict[str, Any]:
    tags: dict[str, Any] = {
        schema.END_REASON: reason.value,
        schema.BUDGET_REACHED: step,
        schema.WORKER: worker,
        schema.STARTED_AT: f"{started_at:.3f}",
        schema.ENDED_AT: f"{ended_at:.3f}",
        schema.DURATION: f"{ended_at - started_at:.3f}",
        schema.ERROR: error,
    }
    if reason in (EndReason.EARLY_STOPPED, EndReason.PRUNED):
        tags[schema.STOPPED_AT_RUNG] = step
    return tags


def missing_metrics_tag(record: tuple[str, ...], logged: set[str], reason: EndReason) -> dict[str, str]:
    """A completed trial that never logged some of ``record:``'s metrics says which."""
    missing = [m for m in record if m not in logged]
    if missing and reason is EndReason.COMPLETED:
        return {schema.MISSING_METRICS: ",".join(missing)}
    return {}


def search_end_tags(progress: Progress, state: str, stop_reason: str) -> dict[str, Any]:
    return {
        schema.SEARCH_STATE: state,
        schema.SEARCH_STOP_REASON: stop_reason,
        schema.N_TRIALS: progress.started,
        schema.N_COMPLETED: progress.completed,
        schema.N_FAILED: progress.failed,
        "trellis.host": socket.gethostname(),
    }


def sampler_state(end_reason: str) -> str:
    """What a sampler is told: early-stopped and pruned trials are both 'pruned' to it."""
    return "pruned" if end_reason in (EndReason.EARLY_STOPPED, EndReason.PRUNED) else str(end_reason)


def origin_tags(config: SearchConfig, params: dict[str, Any]) -> dict[str, str]:
    """An ablation's or variation's trial: its parent model and the change that made its architecture."""
    change = config.origin.change_of(params) if config.origin else None
    if change is None:
        return {}
    return {schema.ORIGIN_MODEL: config.origin.model, schema.ORIGIN_CHANGE: change}
