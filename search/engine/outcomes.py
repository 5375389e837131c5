"""How the runner takes an ended or restarted job: what the sampler is told (every objective's value where
there are several), each trial's Pareto rank at the search's end, and a job its executor ran again from the
start (a lost Dask worker) logged in a new run, so no run gets a step twice. A mixin of ``SearchRunner``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from trellis.search.engine import run_tags, termination
from trellis.search.engine.records import TrialRecord
from trellis.search.executors.base import Ended, Restarted
from trellis.search.trial import ARTIFACTS_FOLDER, TrialOutcome
from trellis.tracking import schema
from trellis.tracking.schema import STATUS_FOR_REASON, EndReason

log = logging.getLogger(__name__)


class Outcomes:
    _thresholds_met = False  # several objectives: one trial met every termination.threshold

    def _on_restarted(self, event: Restarted) -> None:
        """The job runs again from its start (its worker was lost): the run it had ends as killed, saying why,
        and the new attempt is logged in a new run tagged as a retry of the same trial, so no run ever gets
        a step twice."""
        record = self._running.get(event.key)
        if record is None:
            return
        why = f"{event.why}: the trial ran again from its start, logged in a new run"
        end = run_tags.trial_end_tags(EndReason.KILLED, record.last_step, record.worker, record.started_at,
                                      event.at, why)  # fmt: skip
        end[schema.RETRIED_BY] = record.number
        self.recorder.end_trial(record.run_id, STATUS_FOR_REASON[EndReason.KILLED], end, {}, record.last_step,
                                stderr_tail=why, at=event.at)  # fmt: skip
        folder = str(self.checkpoints.folder(record.number))
        tags = {**self._tags, **record.tags, **run_tags.trial_start_tags(record.number, record.budget_stop,
                                                                       event.at, folder)}  # fmt: skip
        tags.update({schema.SEED: self._seed_of(record.number), schema.RETRY_OF: record.number})
        tags.update(run_tags.origin_tags(self.config, record.params))
        record.run_id = self.recorder.start_trial(record.number, record.params, tags, event.at)
        record.started_at, record.last_step, record.metric_keys = event.at, 0, set()
        log.warning("trial %d: %s", record.number, why)

    def _values_of(self, record: TrialRecord, value: float | None) -> list[float] | None:
        """Every objective's value of a completed trial (several objectives), in their order."""
        if value is None:
            return None
        return [value, *(record.values.get(o.metric, math.nan) for o in self.config.objectives[1:])]

    def _tell(self, number: int, params: dict[str, Any], value, values, reason, budget: int | None) -> None:
        """The sampler learns from an ended trial: every objective's value where there are several."""
        state = run_tags.sampler_state(reason)
        self.sampler.count_end(number, state)  # the prior's decay (``trellis.search.prior``) counts these
        if self.config.multi_objective:
            self.sampler.observe_values(number, params, values, state, budget=budget)
        else:
            self.sampler.observe(number, params, value, state, budget=budget)

    def _rank_pareto(self) -> None:
        """At the end of a multi-objective search: each completed trial's Pareto rank (1 = non-dominated)."""
        if not self.config.multi_objective:
            return
        from trellis.search.pareto import pareto_ranks

        done = [r for r in self.trials.values() if r.value is not None and r.number in self._completed_numbers()]
        if not done:
            return
        values = [[r.value, *(r.values.get(o.metric, math.nan) for o in self.config.objectives[1:])] for r in done]
        ranks = pareto_ranks(values, [o.direction for o in self.config.objectives])
        for record, rank in zip(done, ranks, strict=True):
            if rank:
                self.recorder.update_trial(record.run_id, {schema.PARETO_RANK: int(rank)})
        self.recorder.update_search({schema.PARETO_SIZE: int((ranks == 1).sum())})

    def _completed_numbers(self) -> set[int]:
        return {n for n, bucket in self.progress.buckets().items() if bucket == EndReason.COMPLETED}

    def _on_ended(self, event: Ended) -> None:
        record = self._running.pop(event.key, None)
        if record is None:
            return
        outcome = event.outcome
        if outcome.metrics.get(self.config.objective.metric) is not None:
            record.value = outcome.metrics[self.config.objective.metric]
        record.values.update({o.metric: outcome.metrics[o.metric] for o in self.config.objectives[1:]
                              if outcome.metrics.get(o.metric) is not None})  # fmt: skip
        reason = EndReason(outcome.state)
        error, tail = outcome.error, outcome.tail
        if reason is EndReason.COMPLETED and (record.value is None or not math.isfinite(record.value)):
            reason = EndReason.FAILED  # an infinite objective is a diverged trial, never the best one
            error = f"the objective metric {self.config.objective.metric!r} was never reported (or was NaN or infinite)"
            tail = tail or error
        elif reason is EndReason.COMPLETED and self.config.multi_objective:
            lacking = [o.metric for o in self.config.objectives[1:]
                       if not math.isfinite(record.values.get(o.metric, math.nan))]  # fmt: skip
            if lacking:  # every objective, or the trial cannot be placed among the others
                reason = EndReason.FAILED
                error = f"the objective metric {lacking[0]!r} was never reported (or was NaN or infinite)"
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
        tell_search: bool = True,
    ) -> None:
        step = max(record.last_step, outcome.step if outcome else 0)
        tags = run_tags.trial_end_tags(reason, step, record.worker, record.started_at, at, error)
        final = dict(outcome.metrics) if outcome else {}
        if schema.RUNG in record.tags and reason not in (EndReason.KILLED, EndReason.FAILED):
            # the rung of every evaluation, as a curve over the budget: only of one that ended its rung (a cut
            # one runs again, and logs its rung then: never two values at one step)
            final[schema.RUNG] = float(record.tags[schema.RUNG])
        record.metric_keys.update(final)
        tags.update(run_tags.missing_metrics_tag(self.config.record, record.metric_keys, reason))
        files = self.checkpoints.folder(record.number) / ARTIFACTS_FOLDER
        self.recorder.end_trial(
            record.run_id, STATUS_FOR_REASON[reason], tags, final, step, stderr_tail=tail, at=at, artifacts=files
        )
        value = record.value if reason is EndReason.COMPLETED else None
        if tell_search:
            self._tell(record.number, record.params, value, self._values_of(record, value), reason, step)
            self.scheduler.on_trial_end(record.number, step, value, reason.value)
            for trial, update in self.scheduler.drain_updates():
                self.recorder.update_trial(self.trials[trial].run_id, update)
        self.progress.count(record.number, reason)
        if self.config.multi_objective and reason is EndReason.COMPLETED:
            values = self._values_of(record, value)
            self._thresholds_met |= termination.thresholds_met(values, self.config.termination.threshold,
                                                               self.config.objectives)  # fmt: skip
        if self._note_best(record.number, record.params, value):
            # one value per step: a trial that ends again (PBT) or a resumed search's bests go on after the last
            self._best_step = max(self.progress.ended, self._best_step + 1)
            self.recorder.log_best(self.config.objective.metric, value, self._best_step, at)
        self._emit()
