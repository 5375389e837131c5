"""The search loop: ask the scheduler and sampler for work, hand it to the executor, record everything.

One thread owns every decision and every MLflow write, so the store sees one writer per search (no
SQLite lock contention) and the order of events is the order they are recorded in. The pieces it uses
are small and tested on their own: ``progress`` (counting), ``termination``, ``run_tags``,
``checkpoints``, ``resume`` (what an interrupted search left) and ``build`` (collaborators from the
registries).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from mlflow import MlflowClient

from trellis.search.config import SearchConfig
from trellis.search.engine import repro, run_tags, termination
from trellis.search.engine.build import make_executor, make_sampler, make_scheduler
from trellis.search.engine.checkpoints import CheckpointFolders
from trellis.search.engine.job_endings import JobEndings
from trellis.search.engine.outcomes import Outcomes
from trellis.search.engine.progress import Progress
from trellis.search.engine.records import SearchResult, TrialRecord
from trellis.search.engine.restore import Restoring
from trellis.search.engine.signals import SearchInterrupted, signals_end_the_search
from trellis.search.engine.steering import Steering
from trellis.search.executors.base import Executor, Placed, Report, Restarted
from trellis.search.samplers.base import Sampler
from trellis.search.schedulers.base import Decision, JobRequest, Scheduler
from trellis.search.trial import TrialJob
from trellis.tracking import schema
from trellis.tracking.links import public_app_url
from trellis.tracking.schema import SearchState
from trellis.tracking.writer import SearchRecorder, ensure_experiment

log = logging.getLogger(__name__)
POLL_S = 0.2

__all__ = ["Progress", "SearchResult", "SearchRunner", "TrialRecord", "run_search"]


class SearchRunner(Restoring, JobEndings, Steering, Outcomes):
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
        resume: str | None = None,
        on_started: Callable[[str], None] | None = None,
        adopt: str | None = None,
        seeds: dict[int, int] | None = None,
        trial_tags: dict[str, str] | None = None,
    ) -> None:
        """``resume``: the id of an interrupted search to continue (see ``trellis.search.engine.resume``).
        ``adopt``: the id of a search run an agent claimed: it starts in that run (launched from the app),
        or, with ``resume`` the same id, continues it.
        ``on_started``: called with the search id as soon as the search run exists.
        ``seeds``: trial number -> seed, instead of the seed derived from the search seed (``trellis rerun``).
        ``trial_tags``: extra tags for every trial run (``trellis rerun``: the run it reproduces)."""
        self.config = config
        self.resume_id = resume
        self.adopt_id = adopt
        self.executor = executor or make_executor(config)
        self.sampler = sampler or make_sampler(config)
        self.scheduler = scheduler or make_scheduler(config)
        self.checkpoint_root = checkpoint_root
        self.on_progress = on_progress
        self.on_started = on_started
        self._seeds = dict(seeds or {})
        self._extra_trial_tags = dict(trial_tags or {})
        self.client = MlflowClient(tracking_uri=config.tracking.uri)
        with signals_end_the_search(defer=True):  # a signal waits until the store is set up, then ends it
            experiment_id = ensure_experiment(
                self.client, config.tracking.experiment, config.tracking.artifact_location
            )
        self.recorder = SearchRecorder(
            self.client,
            experiment_id,
            flush_interval=flush_interval,
            prefer_sql=prefer_sql,
            app_url=public_app_url(config.tracking.app_url),
        )
        self.experiment_id = experiment_id
        self.progress = Progress(limit=config.termination.max_trials or self.sampler.size() or self.scheduler.size())
        self.trials: dict[int, TrialRecord] = {}
        self._running: dict[str, TrialRecord] = {}
        self._best_params: dict[str, Any] | None = None
        self._best_step = -1  # the last step of the search run's best_<objective> (a resume reads it back)
        self._next_number = 0
        self._n_sampled = 0  # configurations proposed by the sampler (what max_trials limits)
        self._retry: list[tuple[int, dict[str, Any]]] = []  # interrupted trials a resumed search runs again
        self._pending: list[JobRequest] = []  # a resumed budgeted search: requests to start before asking again
        self._stop_checked_at = -math.inf  # the first pass looks for requests (an edit made while scheduled)
        self._heartbeat_at = 0.0
        self.search_id: str | None = None
        self._past: dict[int, Any] = {}  # a resumed search: its recorded trials by number
        self._to_prune: set[int] = set()  # trials with reports since their checkpoints were last pruned

    def _emit(self) -> None:
        self.progress.running = len(self._running)
        if self.on_progress:
            self.on_progress(self.progress)

    # -- main loop --------------------------------------------------------------------------------
    def run(self) -> SearchResult:
        with signals_end_the_search() as self._signals:
            return self._run()

    def _handle(self, events: list) -> None:
        for event in events:
            if isinstance(event, Report):
                self._on_report(event)
            elif isinstance(event, Placed):  # where it runs (its GPU): on the trial run while it runs
                if event.key in self._running:
                    self.recorder.update_trial(self._running[event.key].run_id, event.tags)
            elif isinstance(event, Restarted):
                self._on_restarted(event)
            else:
                self._on_ended(event)

    def _note_best(self, number: int, params: dict[str, Any], value: float | None) -> bool:
        """Keep the best trial so far; True when this one is the new best."""
        if value is None or not self.config.objective.better(value, self.progress.best_value):
            return False
        self.progress.best_value, self.progress.best_trial, self._best_params = value, number, params
        return True

    def _open(self) -> None:
        """The search run (new, or reopened by a resume), the checkpoint folders, the past, the workers."""
        running = {schema.SEARCH_STATE: SearchState.RUNNING}
        if self.resume_id and not self.adopt_id:  # an agent's claim already made sure nobody runs it
            from trellis.search.engine.resume import check_resumable

            check_resumable(self.client, self.resume_id)
        if self.resume_id or self.adopt_id:
            running.update(run_tags.heartbeat_tags(time.time()))
            if self.adopt_id and not self.resume_id:  # a submitted search starts now, not when it was submitted
                running[schema.SEARCH_STARTED] = f"{time.time():.3f}"
            self.search_id = self.recorder.reopen_search(self.resume_id or self.adopt_id, running)
        else:
            self.search_id = self.recorder.start_search(self.config.to_dict(), run_tags.search_start_tags(self.config))
        self.checkpoints = CheckpointFolders(self.checkpoint_root, self.search_id)
        self._tags = run_tags.trial_common_tags(self.config, self.search_id)
        self._tags.update({**repro.search_repro_tags(self.config), **self._extra_trial_tags})
        self._search_seed = repro.search_seed(self.config, self.search_id)
        if self.on_started:
            self.on_started(self.search_id)
        self._learn_from_parent()
        if self.resume_id:
            self._restore()
        self._apply_queue_at_start()
        with self._signals.held():
            self.executor.start()

    def _run(self) -> SearchResult:
        self._started = time.monotonic()
        state, stop_reason = SearchState.COMPLETED, "exhausted"
        try:  # everything after the search run exists: however it ends, its runs are closed
            self._open()
            stop_reason = self._loop()
            if stop_reason == "max_time":
                self._kill_running("the search reached termination.max_time_s")
            elif stop_reason == "stopped":
                state = SearchState.KILLED
                self._kill_running("the search was stopped (trellis search stop)")
        except KeyboardInterrupt as exc:
            state, stop_reason = SearchState.KILLED, "interrupted"
            how = exc.signal_name if isinstance(exc, SearchInterrupted) else "SIGINT"
            self._kill_running(f"the search was interrupted ({'Ctrl-C' if how == 'SIGINT' else how})")
        except BaseException:
            state, stop_reason = SearchState.FAILED, "error"
            self._kill_running("the search stopped on an internal error")
            raise
        finally:
            self._signals.closing()
            self.executor.shutdown()
            if self.recorder.search_run_id is not None:
                with contextlib.suppress(Exception):  # the ranks are a summary: never what fails a search's end
                    self._rank_pareto()
                tags = run_tags.search_end_tags(self.progress, state, stop_reason)
                self.recorder.end_search(run_tags.SEARCH_STATUS[state], tags)
        return SearchResult(
            search_id=self.search_id,
            experiment_id=self.experiment_id,
            tracking_uri=self.config.tracking.uri,
            state=state,
            stop_reason=stop_reason,
            progress=self.progress,
            best_params=self._best_params,
            trials=sorted(self.trials.values(), key=lambda t: t.number),
        )

    def _elapsed(self) -> float:
        return time.monotonic() - self._started

    def _loop(self) -> str:
        stop_reason: str | None = None
        while True:
            if self._stop_requested():
                return "stopped"
            if stop_reason is None:
                stop_reason = self._launch()
            if stop_reason is not None and not self._running:
                return stop_reason
            if termination.out_of_time(self.config.termination, self._elapsed()):
                return "max_time"
            self._handle(self.executor.poll(POLL_S))
            self._enforce_trial_timeout()
            self._beat()
            self.recorder.flush_due()
            self._fail_refused()
            self._prune_checkpoints()

    def _launch(self) -> str | None:
        """Start jobs while workers are free; return why launching stopped for good, if it did."""
        cfg = self.config
        while self.executor.free_slots() > 0:
            why = termination.launch_stop(cfg.termination, cfg.objective, self.progress.best_value, self._elapsed())
            why = "threshold" if self._thresholds_met else why
            if why is not None:
                return why
            request = self._next_request()
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
            sampled = request.params is None
            if sampled and termination.trials_exhausted(cfg.termination, self._n_sampled):
                return "max_trials"
            if not self._start_new(request, sampled):
                return "exhausted"
        return None

    def _next_request(self) -> JobRequest | None:
        request = self._pending.pop(0) if self._pending else self.scheduler.next_job()
        if request is not None and request.trial is None and request.params is None and self._retry:
            retried, params = self._retry.pop(0)  # a resumed search first reruns what was interrupted
            request = replace(request, params=params, tags={**request.tags, schema.RETRY_OF: str(retried)})
        return request

    def _start_new(self, request: JobRequest, sampled: bool) -> bool:
        """Start a new trial for ``request``; False when the sampler has nothing left to propose."""
        number = self._next_number
        queued = time.time()
        params = self._propose(number, request.budget_stop) if sampled else dict(request.params or {})
        if params is None:
            return False
        self.config.space.validate(params)
        self._next_number += 1
        self._n_sampled += sampled
        if request.copy_checkpoint_from is not None:
            self.checkpoints.copy(request.copy_checkpoint_from, number)
        tags = {**request.tags, **self.sampler.trial_tags(number)} if sampled else request.tags
        self._start(number, params, request.budget_start, request.budget_stop, tags, queued)
        if schema.RETRY_OF in request.tags:  # the run it supersedes names the trial that reran it
            superseded = self._past[int(request.tags[schema.RETRY_OF])]
            self.recorder.update_trial(superseded.run_id, {schema.RETRIED_BY: number})
        return True

    def _beat(self) -> None:
        """A live runner says so on its search run, so a resume elsewhere can tell it from a dead one."""
        now = time.time()
        if now - self._heartbeat_at >= run_tags.HEARTBEAT_S:
            self._heartbeat_at = now
            self.recorder.update_search(run_tags.heartbeat_tags(now))

    def _start(
        self, number: int, params: dict[str, Any], start: int, stop: int, extra: dict[str, str], queued: float
    ) -> None:
        key = f"{number}.0"
        folder = str(self.checkpoints.folder(number))
        tags = {**self._tags, **extra, **run_tags.trial_start_tags(number, stop, queued, folder)}
        tags[schema.SEED] = self._seed_of(number)
        tags.update(run_tags.origin_tags(self.config, params))
        started = time.time()
        run_id = self.recorder.start_trial(number, params, tags, started)
        record = TrialRecord(number, params, run_id, key, "", queued, started, stop, last_step=start, tags=extra)
        record.worker = self.executor.submit(self._job(record, key, start, stop, extra))
        self.trials[number] = record
        self._running[key] = record
        self.scheduler.on_job_started(number, params)
        self.progress.started += 1
        self._emit()

    def _job(self, record: TrialRecord, key: str, start: int, stop: int, extra: dict[str, str]) -> TrialJob:
        return TrialJob(
            key=key,
            number=record.number,
            params=record.params,
            spec=self.config.trial,
            budget_start=start,
            budget_stop=stop,
            resource=self.config.budget.resource,
            checkpoint_dir=str(self.checkpoints.folder(record.number)),
            objective=self.config.objective.metric,
            wants_decisions=self.scheduler.needs_decisions,
            search_id=self.search_id,
            tags=extra,
            seed=self._seed_of(record.number),
        )

    def _seed_of(self, number: int) -> int:
        return self._seeds.get(number, repro.trial_seed(self._search_seed, number))

    def _continue(self, number: int, start: int, stop: int, extra: dict[str, str]) -> None:
        """Run an existing trial further, from its checkpoint, in the same MLflow run."""
        record = self.trials[number]
        record.segment += 1
        record.key = f"{number}.{record.segment}"
        record.budget_stop, record.tags = stop, extra
        record.started_at = time.time()
        reopened = {**extra, schema.BUDGET_MAX: stop, schema.END_REASON: "running"}
        self.recorder.reopen_trial(record.run_id, reopened)
        record.worker = self.executor.submit(self._job(record, record.key, start, stop, extra))
        self._running[record.key] = record
        self.scheduler.on_job_started(number)
        self._emit()

    # -- events -------------------------------------------------------------------------------------
    def _on_report(self, event: Report) -> None:
        record = self._running.get(event.key)
        if record is None:
            return
        record.last_step = max(record.last_step, event.step)
        record.metric_keys.update(event.metrics)
        self._to_prune.add(record.number)
        self.recorder.log_metrics(record.run_id, event.step, event.metrics, event.at)
        value = event.metrics.get(self.config.objective.metric)
        if value is not None:
            record.value = value
        for o in self.config.objectives[1:]:
            if o.metric in event.metrics:
                record.values[o.metric] = event.metrics[o.metric]
        if self.scheduler.needs_decisions:
            decision = self.scheduler.on_report(record.number, event.step, value)
            self.executor.decide(event.key, decision.value if isinstance(decision, Decision) else str(decision))


def run_search(config: SearchConfig, **kwargs: Any) -> SearchResult:
    return SearchRunner(config, **kwargs).run()
