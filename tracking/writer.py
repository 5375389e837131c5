"""Write a search into MLflow: a parent run per search, a nested child run per trial.

All writes go through ``MlflowClient`` batch calls: a trial costs ``create_run`` (tags at creation),
one ``log_batch`` per flush of intermediate metrics, and a final ``log_batch`` + ``set_terminated``.
Intermediate metrics are buffered and flushed at most every ``flush_interval`` seconds, so a fast
trial's many reports cost one call, while a slow trial's curve still shows up live.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from tracking import schema

MAX_PARAM_LEN = 6000
MAX_TAG_LEN = 8000
BATCH_PARAMS_TAGS = 100
BATCH_METRICS = 1000

log = logging.getLogger(__name__)


def _ms(t: float | None = None) -> int:
    return int((time.time() if t is None else t) * 1000)


def default_artifact_location(tracking_uri: str) -> str | None:
    """Keep artifacts beside a SQLite store (``<db dir>/mlartifacts``) rather than in the cwd."""
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri[len("sqlite:///") :]).resolve()
        return (db.parent / "mlartifacts").as_uri()
    return None


def ensure_experiment(client: MlflowClient, name: str, artifact_location: str | None = None) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            client.restore_experiment(exp.experiment_id)
        return exp.experiment_id
    location = artifact_location or default_artifact_location(client.tracking_uri)
    return client.create_experiment(name, artifact_location=location)


def _param_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value) if isinstance(value, bool) else str(value)
    return text[:MAX_PARAM_LEN]


def _tags(items: dict[str, Any]) -> list[RunTag]:
    return [RunTag(k, str(v)[:MAX_TAG_LEN]) for k, v in items.items() if v is not None]


class SearchRecorder:
    """Owns one search's MLflow runs. Not thread-safe: the runner calls it from one thread."""

    def __init__(self, client: MlflowClient, experiment_id: str, flush_interval: float = 1.0) -> None:
        self.client = client
        self.experiment_id = experiment_id
        self.flush_interval = flush_interval
        self.search_run_id: str | None = None
        self._pending: dict[str, list[Metric]] = defaultdict(list)
        self._pending_params: dict[str, list[Param]] = {}
        self._last_flush = time.monotonic()

    # -- search ---------------------------------------------------------------------------------
    def start_search(self, config_dict: dict[str, Any], tags: dict[str, Any]) -> str:
        run = self.client.create_run(
            self.experiment_id,
            start_time=_ms(),
            tags={k: str(v) for k, v in tags.items() if v is not None},
            run_name=config_dict.get("name"),
        )
        run_id = run.info.run_id
        self.search_run_id = run_id
        config_json = json.dumps(config_dict, default=str)
        params = {
            "algorithm": config_dict["algorithm"]["name"],
            "objective": config_dict["objective"]["metric"],
            "direction": config_dict["objective"]["direction"],
            "workers": config_dict["executor"]["workers"],
            "executor": config_dict["executor"]["kind"],
            "budget_max": config_dict["budget"]["max"],
        }
        extra_tags = {schema.SEARCH_ID: run_id}
        if len(config_json) <= MAX_TAG_LEN:
            extra_tags[schema.CONFIG_JSON] = config_json
        self.client.log_batch(
            run_id, params=[Param(k, _param_value(v)) for k, v in params.items()], tags=_tags(extra_tags)
        )
        self.client.log_text(run_id, yaml.safe_dump(config_dict, sort_keys=False), schema.CONFIG_ARTIFACT)
        return run_id

    def update_search(self, tags: dict[str, Any]) -> None:
        assert self.search_run_id
        self.client.log_batch(self.search_run_id, tags=_tags(tags))

    def log_best(self, metric: str, value: float, step: int, at: float | None = None) -> None:
        assert self.search_run_id
        self._pending[self.search_run_id].append(Metric(schema.BEST_METRIC_PREFIX + metric, value, _ms(at), step))

    def end_search(self, status: str, tags: dict[str, Any]) -> None:
        assert self.search_run_id
        self.flush()
        self.client.log_batch(self.search_run_id, tags=_tags(tags))
        self.client.set_terminated(self.search_run_id, status=status, end_time=_ms())

    # -- trials ---------------------------------------------------------------------------------
    def start_trial(self, number: int, params: dict[str, Any], tags: dict[str, Any], at: float) -> str:
        assert self.search_run_id
        run = self.client.create_run(
            self.experiment_id,
            start_time=_ms(at),
            tags={
                schema.MLFLOW_PARENT_RUN: self.search_run_id,
                **{k: str(v)[:MAX_TAG_LEN] for k, v in tags.items() if v is not None},
            },
            run_name=f"trial-{number:04d}",
        )
        # Params go out with the first flush (or the final batch), not in a call of their own.
        self._pending_params[run.info.run_id] = [Param(k, _param_value(v)) for k, v in params.items()]
        return run.info.run_id

    def log_metrics(self, run_id: str, step: int, metrics: dict[str, float], at: float) -> None:
        ts = _ms(at)
        self._pending[run_id].extend(Metric(k, float(v), ts, int(step)) for k, v in metrics.items())

    def end_trial(
        self,
        run_id: str,
        status: str,
        tags: dict[str, Any],
        final_metrics: dict[str, float] | None = None,
        final_step: int = 0,
        stderr_tail: str | None = None,
        at: float | None = None,
    ) -> None:
        if final_metrics:
            self.log_metrics(run_id, final_step, final_metrics, at or time.time())
        self._write(run_id, tags)
        if stderr_tail:
            try:
                self.client.log_text(run_id, stderr_tail, schema.STDERR_ARTIFACT)
            except Exception as exc:  # the run must still be closed even if artifacts are unwritable
                log.warning("could not store the stderr tail of %s: %s", run_id, exc)
        self.client.set_terminated(run_id, status=status, end_time=_ms(at))

    # -- buffering --------------------------------------------------------------------------------
    def flush_due(self) -> None:
        if time.monotonic() - self._last_flush >= self.flush_interval:
            self.flush()

    def flush(self) -> None:
        for run_id in list(self._pending) + [r for r in self._pending_params if r not in self._pending]:
            self._write(run_id)
        self._last_flush = time.monotonic()

    def _write(self, run_id: str, tags: dict[str, Any] | None = None) -> None:
        metrics = self._pending.pop(run_id, [])
        params = self._pending_params.pop(run_id, [])
        tag_list = _tags(tags or {})
        if not (metrics or params or tag_list):
            return
        # One call when it fits MLflow's batch limits (the common case), else chunks.
        while metrics or params or tag_list:
            p, params = params[:BATCH_PARAMS_TAGS], params[BATCH_PARAMS_TAGS:]
            t, tag_list = tag_list[:BATCH_PARAMS_TAGS], tag_list[BATCH_PARAMS_TAGS:]
            room = BATCH_METRICS - len(p) - len(t)
            m, metrics = metrics[:room], metrics[room:]
            self.client.log_batch(run_id, metrics=m, params=p, tags=t)
