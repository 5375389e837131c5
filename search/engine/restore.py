"""Taking up an interrupted search (``SearchRunner`` with ``resume=``): learn from its finished trials,
replay a budgeted scheduler, queue or continue what was cut off, close what a dead process left open."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

from trellis.search.engine.records import TrialRecord
from trellis.search.registry import ALGORITHMS
from trellis.tracking import schema
from trellis.tracking.schema import EndReason

log = logging.getLogger("trellis.search.engine.runner")


class Restoring:
    """The resume half of ``SearchRunner`` (its attributes are the runner's)."""

    client: Any
    config: Any
    sampler: Any
    scheduler: Any
    recorder: Any
    progress: Any
    search_id: Any
    trials: dict
    _past: dict
    _retry: list
    _pending: list
    _n_sampled: int
    _next_number: int

    def _restore(self) -> None:
        """Take up a search where it stopped: learn from its finished trials, queue the interrupted ones."""
        from trellis.search.engine.resume import past_trials

        past = past_trials(self.client, self.search_id, self.config)
        best_key = schema.BEST_METRIC_PREFIX + self.config.objective.metric
        logged = self.client.get_metric_history(self.search_id, best_key)
        self._best_step = max((m.step for m in logged), default=-1)  # its next bests go after these
        self._past = {t.number: t for t in past}
        self.progress.started = len(past)
        if ALGORITHMS[self.config.algorithm.name].budgeted:
            self._replay(past)
        else:
            self._take_back(past)
        # Samplers see the proposals they made before, so the resumed search goes on where it left off.
        self._n_sampled = sum(t.sampled for t in past)
        self.sampler.skip(self._n_sampled)
        self._next_number = max((t.number for t in past), default=-1) + 1
        finished = sum(t.finished for t in past)
        log.info("resuming %s: %d finished trials, %d to run again", self.search_id, finished, len(self._retry))

    def _take_back(self, past: list) -> None:
        """Random, grid, TPE: tell the sampler each finished trial; queue each interrupted one to run again."""
        from trellis.search.engine.resume import retries

        for t in past:
            if t.finished:
                value = t.value if t.end_reason == EndReason.COMPLETED else None
                values = list(t.values) if value is not None and None not in t.values else None
                self._tell(t.number, t.params, value, values, t.end_reason, None)
                self.progress.count(t.number, t.end_reason)
                self._note_best(t.number, t.params, value)
            else:
                self.progress.count(t.number, EndReason.KILLED)
        self._retry = retries(past)
        for t in past:
            if t.end_reason == "running":  # its process died without closing it (SIGKILL, a crash)
                self._close_abandoned(t)

    def _replay(self, past: list) -> None:
        """Budgeted searches: rebuild the scheduler's brackets or population from the recorded runs."""
        from trellis.search.engine.resume import replay

        metric = self.config.objective.metric
        objective_at = {
            t.number: {m.step: m.value for m in self.client.get_metric_history(t.run_id, metric)} for t in past
        }
        # A run left RUNNING by a crash never got its reached tag: its reports say how far it got.
        past = [
            replace(t, reached=max(t.reached, max(objective_at[t.number], default=0)))
            if t.end_reason == "running"
            else t
            for t in past
        ]
        by_number = {t.number: t for t in past}
        done, self._pending = replay(self.scheduler, by_number, objective_at)
        continued = {request.trial for request in self._pending}
        for t in past:
            if t.end_reason == "running" and t.number not in continued:
                self._close_abandoned(t)
        now = time.time()
        for t in past:  # the runner's own record of each trial, so cut-off jobs can continue in their run
            value = objective_at[t.number].get(t.reached)
            self.trials[t.number] = TrialRecord(
                t.number, t.params, t.run_id, f"{t.number}.0", "", now, now, t.reached, last_step=t.reached, value=value
            )
        for request in self._pending:  # cut-off jobs go on: the kill's error tag no longer says why they ended
            if request.trial is not None and by_number[request.trial].end_reason == EndReason.KILLED:
                self.client.delete_tag(by_number[request.trial].run_id, schema.ERROR)
        for job in done:
            params = by_number[job.trial].params
            self.sampler.observe(job.trial, params, job.value, job.state, budget=job.step)
            self.progress.count(job.trial, job.state)
            self._note_best(job.trial, params, job.value)

    def _close_abandoned(self, past) -> None:
        """A trial run its dead process left RUNNING: closed KILLED, saying why (a retry names it later)."""
        why = "interrupted: the search process ended without closing this trial (resumed later)"
        tags = {schema.END_REASON: EndReason.KILLED.value, schema.ERROR: why, schema.BUDGET_REACHED: past.reached}
        self.recorder.end_trial(past.run_id, "KILLED", tags, at=time.time())
