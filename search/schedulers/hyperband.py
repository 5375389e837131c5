"""Hyperband (Li et al. 2018) on the Scheduler seam: brackets of successive halving.

With maximum budget R, minimum r_min and reduction factor eta, s_max = floor(log_eta(R / r_min)), and
bracket s starts n = ceil((s_max + 1) / (s + 1) * eta^s) configurations at budget R * eta^-s; after each
rung the best 1/eta continue (from their checkpoint) to eta times the budget. R=81, eta=3 gives brackets
of 81, 34, 15, 8 and 5 configurations. Brackets run one after the other, most exploratory first; inside a
bracket, a rung's promotions wait until every job of that rung has ended.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from trellis.search.config import Budget, Objective, SearchConfig
from trellis.search.schedulers.base import JobRequest, Scheduler
from trellis.tracking import schema
from trellis.tracking.schema import EndReason


@dataclass(frozen=True)
class Bracket:
    index: int  # s
    n_configs: int
    rungs: tuple[tuple[int, int], ...]  # (configurations, budget) per rung


def hyperband_brackets(max_budget: int, min_budget: int, eta: int) -> list[Bracket]:
    if eta < 2:
        raise ValueError("eta must be >= 2")
    s_max = int(math.floor(math.log(max_budget / min_budget, eta) + 1e-9))
    brackets = []
    for s in range(s_max, -1, -1):
        n = int(math.ceil((s_max + 1) / (s + 1) * eta**s))
        rungs = []
        for i in range(s + 1):
            n_i = int(n * eta ** (-i))
            r_i = int(round(max_budget * eta ** (i - s)))
            rungs.append((max(n_i, 1), max(r_i, 1)))
        brackets.append(Bracket(s, n, tuple(rungs)))
    return brackets


@dataclass
class _RungState:
    expected: int = 0  # jobs this rung will run: its size for rung 0, the promotions after that
    started: list[int] = field(default_factory=list)  # trial numbers
    results: dict[int, float | None] = field(default_factory=dict)


class HyperbandScheduler(Scheduler):
    needs_decisions = False

    @classmethod
    def from_config(cls, config: SearchConfig) -> HyperbandScheduler:
        return cls(config.budget, config.objective, eta=int(config.algorithm.settings.get("eta", 3)))

    def __init__(self, budget: Budget, objective: Objective, eta: int = 3) -> None:
        super().__init__(budget, objective)
        self.eta = eta
        self.brackets = hyperband_brackets(budget.max, budget.min, eta)
        self._b = 0  # current bracket
        self._rung = 0
        self._states = [
            [_RungState(expected=b.rungs[0][0] if i == 0 else 0) for i in range(len(b.rungs))] for b in self.brackets
        ]
        self._promote_queue: list[int] = []
        self._pruned: list[tuple[int, int]] = []  # (trial, rung) decided not to continue
        self._reached: dict[int, int] = {}

    def size(self) -> int:
        return sum(b.rungs[0][0] for b in self.brackets)

    @property
    def finished(self) -> bool:
        return self._b >= len(self.brackets)

    def _tags(self, rung: int) -> dict[str, str]:
        return {schema.BRACKET: str(self.brackets[self._b].index), schema.RUNG: str(rung)}

    def next_job(self) -> JobRequest | None:
        if self.finished:
            return None
        bracket, state = self.brackets[self._b], self._states[self._b][self._rung]
        n_rung, budget = bracket.rungs[self._rung]
        if self._rung == 0 and len(state.started) < n_rung:
            return JobRequest(budget_stop=budget, budget_start=0, tags=self._tags(0))
        if self._promote_queue:
            trial = self._promote_queue.pop(0)
            start = self._reached.get(trial, 0)
            return JobRequest(budget_stop=budget, budget_start=start, trial=trial, tags=self._tags(self._rung))
        return None  # wait for the rung to finish

    def on_job_started(self, trial: int, params: dict | None = None) -> None:
        started = self._states[self._b][self._rung].started
        if trial not in started:  # a resumed search starts a cut-off job again
            started.append(trial)

    def on_trial_end(self, trial: int, step: int, value: float | None, state: str) -> None:
        if self.finished:
            return
        self._reached[trial] = step
        rung_state = self._states[self._b][self._rung]
        if trial not in rung_state.started:
            return
        rung_state.results[trial] = value if state == EndReason.COMPLETED else None
        self._advance()

    def _advance(self) -> None:
        """Close the current rung once all its jobs have ended: promote the best 1/eta, prune the rest."""
        while not self.finished:
            bracket = self.brackets[self._b]
            state = self._states[self._b][self._rung]
            if self._promote_queue or len(state.started) < state.expected or len(state.results) < len(state.started):
                return
            if self._rung + 1 >= len(bracket.rungs):
                self._b, self._rung = self._b + 1, 0
                continue
            keep = bracket.rungs[self._rung + 1][0]
            ranked = sorted(
                (t for t, v in state.results.items() if v is not None and math.isfinite(v)),
                key=lambda t: -state.results[t] * self.objective.sign,
            )
            promoted = ranked[:keep]
            self._pruned += [(t, self._rung) for t in state.results if t not in promoted]
            if not promoted:
                self._b, self._rung = self._b + 1, 0
                continue
            self._rung += 1
            self._states[self._b][self._rung].expected = len(promoted)
            self._promote_queue = list(promoted)
            return

    def drain_updates(self) -> list[tuple[int, dict[str, str]]]:
        pruned, self._pruned = self._pruned, []
        return [(t, {schema.END_REASON: EndReason.PRUNED.value, schema.STOPPED_AT_RUNG: str(r)}) for t, r in pruned]
