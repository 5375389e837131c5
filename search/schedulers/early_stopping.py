"""Early stopping for random, grid and TPE searches (CHOPT's ``step``): stop a trial that lags, mid-run.

Every ``step`` budget units a reporting trial is compared with the trials that reached the same step:
- ``median``: stopped when its value is worse than the median of theirs (Golovin et al., Vizier);
- ``successive_halving``: at steps ``step * eta**k`` it must be in the best 1/eta of them (as in ASHA).
Comparison starts once ``min_trials`` other trials have reached the step. ``step: -1`` disables it.
Stopped trials end as ``early_stopped`` with their checkpoint kept, so they stay resumable.

Stop-and-Go (CHOPT, ``resume: true``, off by default): a trial stopped early may have been unlucky in
whom it was compared with. Whenever a worker is free, each stopped trial is judged again at the step it
stopped at, against every trial that has reached that step since; one the rule would now let continue
is resumed from its checkpoint, in its own MLflow run, before any new trial starts.
"""

from __future__ import annotations

import math

from trellis.search.config import Budget, Objective, SearchConfig
from trellis.search.schedulers.base import Decision, JobRequest
from trellis.search.schedulers.fifo import FIFOScheduler
from trellis.tracking import schema
from trellis.tracking.schema import EndReason


class EarlyStoppingScheduler(FIFOScheduler):
    needs_decisions = True

    @classmethod
    def from_config(cls, config: SearchConfig) -> EarlyStoppingScheduler:
        e = config.early_stopping
        if e is None:
            raise ValueError("early stopping is not configured")
        return cls(config.budget, config.objective, e.rule, e.step, e.min_trials, e.eta, e.resume)

    def __init__(
        self,
        budget: Budget,
        objective: Objective,
        rule: str = "median",
        step: int = 1,
        min_trials: int = 5,
        eta: int = 3,
        resume: bool = False,
    ) -> None:
        super().__init__(budget, objective)
        if rule not in ("median", "successive_halving"):
            raise ValueError(f"unknown early-stopping rule {rule!r}")
        self.rule, self.step, self.min_trials, self.eta, self.resume = rule, step, min_trials, eta, resume
        self._at: dict[int, dict[int, float]] = {}  # step -> trial -> value there
        self._stopped: dict[int, int] = {}  # early-stopped trial -> the step it stopped at
        self._resumed: set[int] = set()  # each trial is resumed at most once

    def next_job(self) -> JobRequest:
        if self.resume:
            for trial, step in sorted(self._stopped.items()):
                if self._verdict(trial, step, self._at[step][trial]) is Decision.CONTINUE:
                    del self._stopped[trial]
                    self._resumed.add(trial)
                    tags = {schema.RESUMED_FROM: str(step)}
                    return JobRequest(budget_stop=self.budget.max, budget_start=step, trial=trial, tags=tags)
        return super().next_job()

    def on_trial_end(self, trial: int, step: int, value: float | None, state: str) -> None:
        if state == EndReason.EARLY_STOPPED and trial not in self._resumed and trial in self._at.get(step, {}):
            self._stopped[trial] = step

    def _checks_at(self, step: int) -> bool:
        if self.step <= 0 or step % self.step or step >= self.budget.max:
            return False
        if self.rule == "median":
            return True
        k = math.log(step / self.step, self.eta)
        return abs(k - round(k)) < 1e-9

    def on_report(self, trial: int, step: int, value: float | None) -> Decision:
        if value is None or not math.isfinite(value) or not self._checks_at(step):
            return Decision.CONTINUE
        self._at.setdefault(step, {})[trial] = value
        return self._verdict(trial, step, value)

    def _verdict(self, trial: int, step: int, value: float) -> Decision:
        others = [v for t, v in self._at.get(step, {}).items() if t != trial]
        if len(others) < self.min_trials:
            return Decision.CONTINUE
        signed = [v * self.objective.sign for v in others]
        mine = value * self.objective.sign
        if self.rule == "median":
            signed.sort()
            mid = len(signed) // 2
            median = signed[mid] if len(signed) % 2 else (signed[mid - 1] + signed[mid]) / 2
            return Decision.STOP if mine < median else Decision.CONTINUE
        better = sum(v > mine for v in signed)
        keep = max(1, (len(signed) + 1) // self.eta)
        return Decision.STOP if better >= keep else Decision.CONTINUE
