"""Write a search into MLflow: a parent run per search, a nested child run per trial.

Changes are collected per run and written at most every ``flush_interval`` seconds (and at the end)
by a writer from ``trellis.tracking.batch_writers``: one transaction for all pending runs on a database store, batch
calls through ``MlflowClient`` elsewhere. A slow trial's curve still shows up live; a burst of fast
trials costs one write.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import yaml
from mlflow import MlflowClient

from trellis.tracking import schema
from trellis.tracking.batch_writers import PendingRun, make_writer
from trellis.tracking.links import MLFLOW_NOTE, trellis_note_line, with_trellis_note
from trellis.tracking.retry import StoreUnavailable, backoff_s, is_transient, retry_window_s
from trellis.tracking.stores import store_for
from trellis.tracking.uris import artifact_location_problem

MAX_PARAM_LEN = 6000
MAX_TAG_LEN = 8000

log = logging.getLogger(__name__)


def _ms(t: float | None = None) -> int:
    return int((time.time() if t is None else t) * 1000)


def default_artifact_location(tracking_uri: str) -> str | None:
    """Keep artifacts beside a SQLite store (``<db dir>/mlartifacts``) rather than in the cwd."""
    return store_for(tracking_uri).default_artifact_location()


class ExperimentUnusable(ValueError):
    """An experiment this store cannot log into (its artifacts are out of reach): said before any run exists."""


def ensure_experiment(client: MlflowClient, name: str, artifact_location: str | None = None) -> str:
    exp = client.get_experiment_by_name(name)
    location = exp.artifact_location if exp is not None else artifact_location
    problem = artifact_location_problem(client.tracking_uri, location)
    if problem:
        raise ExperimentUnusable(f"tracking.experiment: {name!r}: {problem}")
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
        self,
        client: MlflowClient,
        experiment_id: str,
        flush_interval: float = 1.0,
        prefer_sql: bool = True,
        app_url: str | None = None,
    ) -> None:
        self.client = client
        self.experiment_id = experiment_id
        self.app_url = app_url  # set: every run's MLflow description links to its views in the Trellis app
        self.flush_interval = flush_interval
        self.writer = make_writer(client, prefer_sql=prefer_sql)
        self.search_run_id: str | None = None
        self._pending: dict[str, PendingRun] = {}
        self._last_flush = time.monotonic()
        self._refused: dict[str, str] = {}
        self.retry_s = retry_window_s()
        self._outage_since: float | None = None
        self._attempts = 0
        self._retry_at = 0.0
        self._given_up = False

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
        try:
            self._record_search(run_id, config_dict)
        except BaseException as exc:  # never left RUNNING or SCHEDULED half-written: it ends failed, saying why
            self._pending.pop(run_id, None)
            with contextlib.suppress(Exception):
                self.client.set_tag(run_id, schema.ERROR, f"the search could not be recorded: {exc}"[:MAX_TAG_LEN])
                self.client.set_tag(run_id, schema.SEARCH_STATE, "failed")
                self.client.set_terminated(run_id, status="FAILED")
            raise
        return run_id

    def _record_search(self, run_id: str, config_dict: dict[str, Any]) -> None:
        config_json = json.dumps(config_dict, default=str)
        pending = self._run(run_id)
        objective = config_dict["objective"]
        first = objective[0] if isinstance(objective, list) else objective  # several objectives: a list
        pending.params.update(
            {
                "algorithm": config_dict["algorithm"]["name"],
                "objective": first["metric"],
                "direction": first["direction"],
                "workers": str(config_dict["executor"]["workers"]),
                "executor": config_dict["executor"]["kind"],
                "budget_max": str(config_dict["budget"]["max"]),
            }
        )
        pending.tags[schema.SEARCH_ID] = run_id
        pending.tags.update(self._note(run_id))
        if len(config_json) <= MAX_TAG_LEN:
            pending.tags[schema.CONFIG_JSON] = config_json
        self.flush()
        self.client.log_text(run_id, yaml.safe_dump(config_dict, sort_keys=False), schema.CONFIG_ARTIFACT)

    def reopen_search(self, search_id: str, tags: dict[str, Any]) -> str:
        """Take over an ended search run (``trellis search resume``): RUNNING again, stop request cleared."""
        run = self.client.get_run(search_id)
        if schema.STOP_REQUESTED in run.data.tags:
            self.client.delete_tag(search_id, schema.STOP_REQUESTED)
        self.search_run_id = search_id
        pending = self._run(search_id)
        pending.tags.update(_tag_values(tags))
        note = self._note(search_id, run.data.tags.get(MLFLOW_NOTE))
        if note.get(MLFLOW_NOTE) != run.data.tags.get(MLFLOW_NOTE):
            pending.tags.update(note)
        pending.end = ("RUNNING", None)
        self.flush()
        return search_id

    def _note(self, search_id: str, description: str | None = None) -> dict[str, str]:
        """The run description (MLflow's run note) linking the search's views in the app, when its URL is set;
        an existing description keeps its text."""
        if not self.app_url:
            return {}
        line = trellis_note_line(self.app_url, self.experiment_id, search_id)
        return {MLFLOW_NOTE: with_trellis_note(description, line)[:MAX_TAG_LEN]}

    def update_search(self, tags: dict[str, Any]) -> None:
        assert self.search_run_id
        self._run(self.search_run_id).tags.update(_tag_values(tags))

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
            **self._note(self.search_run_id),
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
        artifacts: Path | None = None,
    ) -> None:
        """Close a trial's run. ``artifacts``: a folder whose files (if any) are stored under ``trial/``."""
        if final_metrics:
            self.log_metrics(run_id, final_step, final_metrics, at or time.time())
        pending = self._run(run_id)
        pending.tags.update(_tag_values(tags))
        pending.end = (status, _ms(at))
        files = artifacts is not None and artifacts.is_dir() and any(p.is_file() for p in artifacts.iterdir())
        if stderr_tail or files:
            self.flush(wait=False)  # the artifact store looks the run up
            if run_id in self._pending:  # the store is down: the run is closed later, without its files
                log.warning("the stderr tail and files of %s are not stored: the tracking store is unavailable", run_id)
                return
        if stderr_tail:
            try:
                self.client.log_text(run_id, stderr_tail, schema.STDERR_ARTIFACT)
            except Exception as exc:  # the run is closed either way
                log.warning("could not store the stderr tail of %s: %s", run_id, exc)
        if files:
            try:
                self.client.log_artifacts(run_id, str(artifacts), schema.TRIAL_ARTIFACTS)
            except Exception as exc:
                log.warning("could not store the files of %s: %s", run_id, exc)

    # -- buffering ------------------------------------------------------------------------------
    # A write the store refuses for its data is isolated to the run that holds it: the batch is written again
    # without it, and that run is closed FAILED with the store's reason (``take_refused`` tells the runner).
    # A transient error (a lock, a lost connection) keeps everything buffered and is retried with backoff
    # until ``retry_window_s`` passes without a success; then ``StoreUnavailable`` ends the search.
    def flush_due(self) -> None:
        now = time.monotonic()
        if now - self._last_flush >= self.flush_interval and now >= self._retry_at:
            self.flush(wait=False)

    def flush(self, wait: bool = True) -> None:
        """Write what is pending. ``wait``: during an outage, retry here until the window ends."""
        while True:
            try:
                self._write_pending()
                return
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self._note_outage(exc)
                if not wait:
                    return
                time.sleep(max(0.0, self._retry_at - time.monotonic()))

    @property
    def has_pending(self) -> bool:
        """Whether some changes are not in the store yet."""
        return any(not r.empty() for r in self._pending.values())

    def take_refused(self) -> dict[str, str]:
        """Runs whose data the store refused since the last call (run id -> reason); they are closed FAILED."""
        refused, self._refused = self._refused, {}
        return refused

    def _note_outage(self, exc: Exception) -> None:
        now = time.monotonic()
        if self._outage_since is None:
            self._outage_since = now
            log.warning("the tracking store is unavailable (%s); retrying for up to %.0f s", exc, self.retry_s)
        if self._given_up or now - self._outage_since > self.retry_s:
            self._given_up = True
            raise StoreUnavailable(f"the tracking store failed for over {self.retry_s:.0f} s: {exc}") from exc
        self._attempts += 1
        self._retry_at = now + backoff_s(self._attempts)

    def _write_pending(self) -> None:
        runs = [r for r in self._pending.values() if not r.empty()]
        self._pending = {}
        self._last_flush = time.monotonic()
        if not runs:
            return
        try:
            self.writer.write(runs)
        except Exception as exc:
            if is_transient(exc):
                self._put_back(runs)
                raise
            self._isolate(runs)
        if self._outage_since is not None:
            log.warning("the tracking store is back after %.0f s", time.monotonic() - self._outage_since)
        self._outage_since, self._attempts, self._retry_at = None, 0, 0.0

    def _put_back(self, runs: list[PendingRun]) -> None:
        """Nothing is lost: the changes go back, merged with any made meanwhile."""
        for run in runs:
            later = self._pending.get(run.run_id)
            if later is not None:
                run.params.update(later.params)
                run.tags.update(later.tags)
                run.metrics.extend(later.metrics)
                run.end = later.end or run.end
            self._pending[run.run_id] = run

    def _isolate(self, runs: list[PendingRun]) -> None:
        """Write each run on its own; a run the store still refuses is closed FAILED with the reason."""
        for i, run in enumerate(runs):
            try:
                self.writer.write([run])
            except Exception as exc:
                if is_transient(exc):
                    self._put_back(runs[i:])
                    raise
                reason = f"the tracking store refused this run's data: {type(exc).__name__}: {exc}"[:MAX_TAG_LEN]
                log.warning("run %s: %s", run.run_id, reason)
                self._refused[run.run_id] = reason
                self._close_refused(run, reason)

    def _close_refused(self, run: PendingRun, reason: str) -> None:
        kept = {k: v for k, v in run.tags.items() if k.startswith(("trellis.", "mlflow.")) and len(k) <= 250}
        kept[schema.ERROR] = reason[:500]
        kept[schema.END_REASON] = schema.EndReason.FAILED.value
        closed = PendingRun(run.run_id, run.experiment_id, create=run.create, tags=kept, end=("FAILED", _ms()))
        try:
            self.writer.write([closed])
        except Exception as exc:  # nothing more can be done for this run's data
            log.error("could not close refused run %s: %s", run.run_id, exc)
