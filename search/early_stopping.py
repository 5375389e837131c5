"""Early stopping for random, grid and TPE searches (CHOPT's ``step``): stop a trial that lags, mid-run.

Every ``step`` budget units a reporting trial is compared with the trials that reached the same step:
- ``median``: stopped when its value is worse than the median of theirs (Golovin et al., Vizier);
- ``successive_halving``: at steps ``step * eta**k`` it must be in the best 1/eta of them (as in ASHA).
Comparison starts once ``min_trials`` other trials have reached the step. ``step: -1`` disables it.
Stopped trials end as ``early_stopped`` with their checkpoint kept, so they stay resumable.
"""

from __future__ import annotations

import math

from search.config import Budget, Objective
from search.schedulers import Decision, FIFOScheduler


class EarlyStoppingScheduler(FIFOScheduler):
    needs_decisions = True

    def __init__(
        self, budget: Budget, objective: Objective, rule: str = "median", step: int = 1, min_trials: int = 5,
        eta: int = 3,
    ) -> None:  # fmt: skip
        super().__init__(budget, objective)
        if rule not in ("median", "successive_halving"):
            raise ValueError(f"unknown early-stopping rule {rule!r}")
        self.rule, self.step, self.min_trials, self.eta = rule, step, min_trials, eta
        self._at: dict[int, dict[int, float]] = {}  # step -> trial -> value there

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
        others = [v for t, v in self._at.get(step, {}).items() if t != trial]
        self._at.setdefault(step, {})[trial] = value
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
