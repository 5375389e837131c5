"""The search loop: ask the scheduler and sampler for work, hand it to the executor, record everything.

One thread owns every decision and every MLflow write, so the store sees one writer per search (no
SQLite lock contention) and the order of events is the order they are recorded in.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow import MlflowClient

from search.config import SearchConfig
from search.executors import Ended, Executor, Report, make_executor
from search.samplers import Sampler, make_sampler
from search.schedulers import Decision, Scheduler, make_scheduler
from search.trial import TrialJob, TrialOutcome
from tracking import schema
from tracking.schema import STATUS_FOR_REASON, EndReason
from tracking.writer import SearchRecorder, ensure_experiment

log = logging.getLogger(__name__)
POLL_S = 0.2


@dataclass
class TrialRecord:
    number: int
    params: dict[str, Any]
    run_id: str
    key: str
    worker: str
    queued_at: float
    started_at: float
    budget_stop: int
    last_step: int = 0
    value: float | None = None
    metric_keys: set[str] = field(default_factory=set)
    segment: int = 0  # how many times the trial was continued (Hyperband promotions)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Progress:
    """What a progress display shows; passed to the ``on_progress`` callback after each event."""

    started: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    killed: int = 0
    best_value: float | None = None
    best_trial: int | None = None
    limit: int | None = None


@dataclass
class SearchResult:
    search_id: str
    experiment_id: str
    tracking_uri: str
    state: str  # completed | killed | failed
    stop_reason: str
    progress: Progress
    best_params: dict[str, Any] | None = None
    trials: list[TrialRecord] = field(default_factory=list)


class SearchRunner:
    def __init__(
        self,
        config: SearchConfig,
        *,
        executor: Executor | None = None,
        sampler: Sampler | None = None,
        scheduler: Scheduler | None = None,
        checkpoint_root: str | Path | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        flush_interval: float = 1.0,
        prefer_sql: bool = True,
    ) -> None:
        self.config = config
        self.executor = executor or make_executor(config.executor.kind, config.executor.workers)
        self.sampler = sampler or make_sampler(config)
        self.scheduler = scheduler or make_scheduler(
            config.algorithm.name, config.budget, config.objective, config.algorithm.settings, config.early_stopping
        )
        self.checkpoint_root = Path(checkpoint_root or os.environ.get("TRELLIS_CHECKPOINTS", ".trellis/checkpoints"))
        self.on_progress = on_progress
        self.client = MlflowClient(tracking_uri=config.tracking.uri)
        experiment_id = ensure_experiment(self.client, config.tracking.experiment, config.tracking.artifact_location)
        self.recorder = SearchRecorder(self.client, experiment_id, flush_interval=flush_interval, prefer_sql=prefer_sql)
        self.experiment_id = experiment_id
        self.progress = Progress(limit=config.termination.max_trials or self.sampler.size())
        self.trials: dict[int, TrialRecord] = {}
        self._running: dict[str, TrialRecord] = {}
        self._best_params: dict[str, Any] | None = None
        self._next_number = 0

    # -- bookkeeping ------------------------------------------------------------------------------
    def _common_tags(self) -> dict[str, str]:
        return {
            schema.TYPE: "trial",
            schema.SEARCH_ID: self.search_id,
            schema.ALGORITHM: self.config.algorithm.name,
            schema.OBJECTIVE: self.config.objective.metric,
            schema.DIRECTION: self.config.objective.direction,
            schema.BUDGET_RESOURCE: self.config.budget.resource,
            schema.SCHEMA: schema.SCHEMA_VERSION,
        }

    def _emit(self) -> None:
        self.progress.running = len(self._running)
        if self.on_progress:
            self.on_progress(self.progress)

    # -- main loop --------------------------------------------------------------------------------
    def run(self) -> SearchResult:
        cfg = self.config
        self.search_id = self.recorder.start_search(
            cfg.to_dict(),
            {
                schema.TYPE: "search",
                schema.SEARCH_NAME: cfg.name,
                schema.ALGORITHM: cfg.algorithm.name,
                schema.OBJECTIVE: cfg.objective.metric,
                schema.DIRECTION: cfg.objective.direction,
                schema.SEARCH_STATE: "running",
                schema.RELAUNCHED_FROM: cfg.relaunched_from,
                schema.RECORD: ",".join(cfg.record) or None,
                schema.SCHEMA: schema.SCHEMA_VERSION,
                schema.MLFLOW_SOURCE_NAME: cfg.source or "trellis",
            },
        )
        self._tags = self._common_tags()
        self._started = time.monotonic()
        state, stop_reason = "completed", "exhausted"
        self.executor.start()
        try:
            stop_reason = self._loop()
            if stop_reason == "max_time":
                self._kill_running("the search reached termination.max_time_s")
        except KeyboardInterrupt:
            state, stop_reason = "killed", "interrupted"
            self._kill_running("the search was interrupted (Ctrl-C)")
        except BaseException:
            state, stop_reason = "failed", "error"
            self._kill_running("the search stopped on an internal error")
            raise
        finally:
            self.executor.shutdown()
            self._finish(state, stop_reason)
        return SearchResult(
            search_id=self.search_id,
            experiment_id=self.experiment_id,
            tracking_uri=cfg.tracking.uri,
            state=state,
            stop_reason=stop_reason,
            progress=self.progress,
            best_params=self._best_params,
            trials=sorted(self.trials.values(), key=lambda t: t.number),
        )

    def _loop(self) -> str:
        term = self.config.termination
        stop_reason: str | None = None
        while True:
            if stop_reason is None:
                stop_reason = self._launch()
            if stop_reason is not None and not self._running:
                return stop_reason
            if term.max_time_s is not None and time.monotonic() - self._started >= term.max_time_s:
                return "max_time"
            for event in self.executor.poll(POLL_S):
                if isinstance(event, Report):
                    self._on_report(event)
                else:
                    self._on_ended(event)
            self._enforce_trial_timeout()
            self.recorder.flush_due()

    def _launch(self) -> str | None:
        """Start jobs while workers are free; return why launching stopped for good, if it did."""
        term = self.config.termination
        while self.executor.free_slots() > 0:
            if term.max_trials is not None and self._next_number >= term.max_trials:
                return "max_trials"
            if term.threshold is not None and self._threshold_reached():
                return "threshold"
            if term.max_time_s is not None and time.monotonic() - self._started >= term.max_time_s:
                return "max_time"
            request = self.scheduler.next_job()
            if request is None:
                if self.scheduler.finished:
                    return "exhausted"
                if not self._running:
                    log.warning("the scheduler waits with nothing running: ending the search")
                    return "exhausted"
                return None
            if request.trial is not None:
                self._continue(request.trial, request.budget_start, request.budget_stop, request.tags)
                continue
            number = self._next_number
            queued = time.time()
            params = self.sampler.propose(number)
            if params is None:
                return "exhausted"
            self.config.space.validate(params)
            self._next_number += 1
            self._start(number, params, request.budget_start, request.budget_stop, request.tags, queued)
        return None

    def _start(
        self, number: int, params: dict[str, Any], start: int, stop: int, extra: dict[str, str], queued: float
    ) -> None:
        ckpt = self._checkpoint_dir(number)
        key = f"{number}.0"
        tags = {
            **self._tags,
            **extra,
            schema.TRIAL_NUMBER: number,
            schema.BUDGET_MAX: stop,
            schema.QUEUED_AT: f"{queued:.3f}",
            schema.CHECKPOINT: str(ckpt.resolve()),
        }
        started = time.time()
        run_id = self.recorder.start_trial(number, params, tags, started)
        record = TrialRecord(number, params, run_id, key, "", queued, started, stop, last_step=start, tags=extra)
        record.worker = self.executor.submit(self._job(record, key, start, stop, extra))
        self.trials[number] = record
        self._running[key] = record
        self.scheduler.on_job_started(number)
        self.progress.started += 1
        self._emit()

    def _checkpoint_dir(self, number: int) -> Path:
        return self.checkpoint_root / self.search_id / f"{number:05d}"

    def _job(self, record: TrialRecord, key: str, start: int, stop: int, extra: dict[str, str]) -> TrialJob:
        return TrialJob(
            key=key,
            number=record.number,
            params=record.params,
            spec=self.config.trial,
            budget_start=start,
            budget_stop=stop,
            resource=self.config.budget.resource,
            checkpoint_dir=str(self._checkpoint_dir(record.number)),
            objective=self.config.objective.metric,
            wants_decisions=self.scheduler.needs_decisions,
            search_id=self.search_id,
            tags=extra,
        )

    def _continue(self, number: int, start: int, stop: int, extra: dict[str, str]) -> None:
        """Run an existing trial further, from its checkpoint, in the same MLflow run."""
        record = self.trials[number]
        record.segment += 1
        record.key = f"{number}.{record.segment}"
        record.budget_stop, record.tags = stop, extra
        record.started_at = time.time()
        self.recorder.reopen_trial(record.run_id, {**extra, schema.BUDGET_MAX: stop, schema.END_REASON: "running"})
        record.worker = self.executor.submit(self._job(record, record.key, start, stop, extra))
        self._running[record.key] = record
        self.scheduler.on_job_started(number)
        self._emit()

    def _threshold_reached(self) -> bool:
        best, threshold = self.progress.best_value, self.config.termination.threshold
        if best is None or threshold is None:
            return False
        return best * self.config.objective.sign >= threshold * self.config.objective.sign

    # -- events -------------------------------------------------------------------------------------
    def _on_report(self, event: Report) -> None:
        record = self._running.get(event.key)
        if record is None:
            return
        record.last_step = max(record.last_step, event.step)
        record.metric_keys.update(event.metrics)
        self.recorder.log_metrics(record.run_id, event.step, event.metrics, event.at)
        value = event.metrics.get(self.config.objective.metric)
        if value is not None:
            record.value = value
        if self.scheduler.needs_decisions:
            decision = self.scheduler.on_report(record.number, event.step, value)
            self.executor.decide(event.key, decision.value if isinstance(decision, Decision) else str(decision))

    def _on_ended(self, event: Ended) -> None:
        record = self._running.pop(event.key, None)
        if record is None:
            return
        outcome = event.outcome
        if outcome.metrics.get(self.config.objective.metric) is not None:
            record.value = outcome.metrics[self.config.objective.metric]
        reason = EndReason(outcome.state)
        error, tail = outcome.error, outcome.tail
        if reason is EndReason.COMPLETED and (record.value is None or math.isnan(record.value)):
            reason = EndReason.FAILED
            error = f"the objective metric {self.config.objective.metric!r} was never reported (or was NaN)"
            tail = tail or error
        self._close(record, reason, event.at, outcome, error, tail)

    def _close(
        self,
        record: TrialRecord,
        reason: EndReason,
        at: float,
        outcome: TrialOutcome | None = None,
        error: str | None = None,
        tail: str | None = None,
    ) -> None:
        step = max(record.last_step, outcome.step if outcome else 0)
        tags = {
            schema.END_REASON: reason.value,
            schema.BUDGET_REACHED: step,
            schema.WORKER: record.worker,
            schema.STARTED_AT: f"{record.started_at:.3f}",
            schema.ENDED_AT: f"{at:.3f}",
            schema.DURATION: f"{at - record.started_at:.3f}",
            schema.ERROR: error,
        }
        if reason in (EndReason.EARLY_STOPPED, EndReason.PRUNED):
            tags[schema.STOPPED_AT_RUNG] = step
        final = dict(outcome.metrics) if outcome else {}
        if schema.RUNG in record.tags:  # the rung of every evaluation, as a curve over the budget
            final[schema.RUNG] = float(record.tags[schema.RUNG])
        record.metric_keys.update(final)
        missing = [m for m in self.config.record if m not in record.metric_keys]
        if missing and reason is EndReason.COMPLETED:
            tags[schema.MISSING_METRICS] = ",".join(missing)
        self.recorder.end_trial(record.run_id, STATUS_FOR_REASON[reason], tags, final, step, stderr_tail=tail, at=at)
        counted = {EndReason.COMPLETED: "completed", EndReason.EARLY_STOPPED: "pruned"}.get(reason, reason.value)
        value = record.value if reason is EndReason.COMPLETED else None
        self.sampler.observe(record.number, record.params, value, counted)
        self.scheduler.on_trial_end(record.number, step, value, reason.value)
        for trial, rung in self.scheduler.drain_pruned():
            pruned = self.trials[trial]
            self.recorder.update_trial(pruned.run_id, {schema.END_REASON: EndReason.PRUNED.value,
                                                       schema.STOPPED_AT_RUNG: rung})  # fmt: skip
        if reason is EndReason.COMPLETED:
            self.progress.completed += 1
        elif reason is EndReason.FAILED:
            self.progress.failed += 1
        elif reason is EndReason.KILLED:
            self.progress.killed += 1
        else:
            self.progress.completed += 1
        if value is not None and self.config.objective.better(value, self.progress.best_value):
            self.progress.best_value, self.progress.best_trial = value, record.number
            self._best_params = record.params
            ended = self.progress.completed + self.progress.failed + self.progress.killed
            self.recorder.log_best(self.config.objective.metric, value, ended, at)
        self._emit()

    def _enforce_trial_timeout(self) -> None:
        limit = self.config.trial.timeout_s
        if limit is None:
            return
        now = time.time()
        for key, record in list(self._running.items()):
            if now - record.started_at > limit:
                self.executor.kill(key)
                self._running.pop(key, None)
                msg = f"killed after exceeding trial.timeout_s={limit:g}"
                self._close(record, EndReason.KILLED, now, error=msg, tail=msg)

    def _kill_running(self, why: str) -> None:
        now = time.time()
        for key, record in list(self._running.items()):
            try:
                self.executor.kill(key)
            except Exception as exc:  # keep marking the others killed
                log.warning("could not kill %s: %s", key, exc)
            self._running.pop(key, None)
            self._close(record, EndReason.KILLED, now, error=why)

    def _finish(self, state: str, stop_reason: str) -> None:
        p = self.progress
        status = {"completed": "FINISHED", "killed": "KILLED", "failed": "FAILED"}[state]
        self.recorder.end_search(
            status,
            {
                schema.SEARCH_STATE: state,
                schema.SEARCH_STOP_REASON: stop_reason,
                schema.N_TRIALS: p.started,
                schema.N_COMPLETED: p.completed,
                schema.N_FAILED: p.failed,
                "trellis.host": socket.gethostname(),
            },
        )


def run_search(config: SearchConfig, **kwargs: Any) -> SearchResult:
    return SearchRunner(config, **kwargs).run()
