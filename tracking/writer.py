"""Write a search into MLflow: a parent run per search, a nested child run per trial.

Changes are collected per run and written at most every ``flush_interval`` seconds (and at the end)
by a writer from ``tracking.batch_writers``: one transaction for all pending runs on a database store, batch
calls through ``MlflowClient`` elsewhere. A slow trial's curve still shows up live; a burst of fast
trials costs one write.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import yaml
from mlflow import MlflowClient

from tracking import schema
from tracking.batch_writers import PendingRun, make_writer

MAX_PARAM_LEN = 6000
MAX_TAG_LEN = 8000

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


def param_text(value: Any) -> str:
    """How a parameter value is stored in MLflow (booleans as JSON, so `true`, like YAML writes them)."""
    text = value if isinstance(value, str) else json.dumps(value) if isinstance(value, bool) else str(value)
    return text[:MAX_PARAM_LEN]


def _tag_values(items: dict[str, Any]) -> dict[str, str]:
    return {k: str(v)[:MAX_TAG_LEN] for k, v in items.items() if v is not None}


class SearchRecorder:
    """Owns one search's MLflow runs. Not thread-safe: the runner calls it from one thread."""

    def __init__(
        self, client: MlflowClient, experiment_id: str, flush_interval: float = 1.0, prefer_sql: bool = True
    ) -> None:
        self.client = client
        self.experiment_id = experiment_id
        self.flush_interval = flush_interval
        self.writer = make_writer(client, prefer_sql=prefer_sql)
        self.search_run_id: str | None = None
        self._pending: dict[str, PendingRun] = {}
        self._last_flush = time.monotonic()

    def _run(self, run_id: str) -> PendingRun:
        if run_id not in self._pending:
            self._pending[run_id] = PendingRun(run_id, self.experiment_id)
        return self._pending[run_id]

    # -- search ---------------------------------------------------------------------------------
    def start_search(self, config_dict: dict[str, Any], tags: dict[str, Any]) -> str:
        """Created at once through the client: the search id is printed and the config stored."""
        run = self.client.create_run(
            self.experiment_id, start_time=_ms(), tags=_tag_values(tags), run_name=config_dict.get("name")
        )
        run_id = run.info.run_id
        self.search_run_id = run_id
        config_json = json.dumps(config_dict, default=str)
        pending = self._run(run_id)
        pending.params.update(
            {
                "algorithm": config_dict["algorithm"]["name"],
                "objective": config_dict["objective"]["metric"],
                "direction": config_dict["objective"]["direction"],
                "workers": str(config_dict["executor"]["workers"]),
                "executor": config_dict["executor"]["kind"],
                "budget_max": str(config_dict["budget"]["max"]),
            }
        )
        pending.tags[schema.SEARCH_ID] = run_id
        if len(config_json) <= MAX_TAG_LEN:
            pending.tags[schema.CONFIG_JSON] = config_json
        self.flush()
        self.client.log_text(run_id, yaml.safe_dump(config_dict, sort_keys=False), schema.CONFIG_ARTIFACT)
        return run_id

    def reopen_search(self, search_id: str, tags: dict[str, Any]) -> str:
        """Take over an ended search run (``trellis search resume``): RUNNING again, stop request cleared."""
        run = self.client.get_run(search_id)
        if schema.STOP_REQUESTED in run.data.tags:
            self.client.delete_tag(search_id, schema.STOP_REQUESTED)
        self.search_run_id = search_id
        pending = self._run(search_id)
        pending.tags.update(_tag_values(tags))
        pending.end = ("RUNNING", None)
        self.flush()
        return search_id

    def log_best(self, metric: str, value: float, step: int, at: float | None = None) -> None:
        assert self.search_run_id
        self._run(self.search_run_id).metrics.append((schema.BEST_METRIC_PREFIX + metric, value, _ms(at), step))

    def end_search(self, status: str, tags: dict[str, Any]) -> None:
        assert self.search_run_id
        pending = self._run(self.search_run_id)
        pending.tags.update(_tag_values(tags))
        pending.end = (status, _ms())
        self.flush()

    # -- trials ---------------------------------------------------------------------------------
    def start_trial(self, number: int, params: dict[str, Any], tags: dict[str, Any], at: float) -> str:
        assert self.search_run_id
        name = f"trial-{number:04d}"
        all_tags = {
            schema.MLFLOW_PARENT_RUN: self.search_run_id,
            schema.MLFLOW_RUN_NAME: name,
            **_tag_values(tags),
        }
        if self.writer.creates_eagerly:
            run_id = self.writer.create_run(self.experiment_id, _ms(at), all_tags, name)
            pending = self._run(run_id)
        else:
            run_id = self.writer.create_run(self.experiment_id, _ms(at), all_tags, name)
            pending = self._run(run_id)
            pending.create = {"start_time": _ms(at), "name": name}
            pending.tags.update(all_tags)
        pending.params.update({k: param_text(v) for k, v in params.items()})
        return run_id

    def reopen_trial(self, run_id: str, tags: dict[str, Any]) -> None:
        """A trial continues (a promotion to the next rung): RUNNING again, with its new tags."""
        pending = self._run(run_id)
        pending.tags.update(_tag_values(tags))
        pending.end = ("RUNNING", None)

    def update_trial(self, run_id: str, tags: dict[str, Any]) -> None:
        self._run(run_id).tags.update(_tag_values(tags))

    def log_metrics(self, run_id: str, step: int, metrics: dict[str, float], at: float) -> None:
        ts = _ms(at)
        self._run(run_id).metrics.extend((k, float(v), ts, int(step)) for k, v in metrics.items())

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
        pending = self._run(run_id)
        pending.tags.update(_tag_values(tags))
        pending.end = (status, _ms(at))
        if stderr_tail:
            self.flush()  # the artifact store looks the run up
            try:
                self.client.log_text(run_id, stderr_tail, schema.STDERR_ARTIFACT)
            except Exception as exc:  # the run is closed either way
                log.warning("could not store the stderr tail of %s: %s", run_id, exc)

    # -- buffering --------------------------------------------------------------------------------
    def flush_due(self) -> None:
        if time.monotonic() - self._last_flush >= self.flush_interval:
            self.flush()

    def flush(self) -> None:
        runs = [r for r in self._pending.values() if not r.empty()]
        self._pending = {}
        self._last_flush = time.monotonic()
        if not runs:
            return
        try:
            self.writer.write(runs)
        except BaseException:
            # Nothing is lost: put the changes back (merged with any made meanwhile) and re-raise.
            for run in runs:
                later = self._pending.get(run.run_id)
                if later is not None:
                    run.params.update(later.params)
                    run.tags.update(later.tags)
                    run.metrics.extend(later.metrics)
                    run.end = later.end or run.end
                self._pending[run.run_id] = run
            raise
