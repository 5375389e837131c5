"""``SchedulerContract``: a scheduler driven as the runner drives it (two workers, jobs ending out of order).

A continuation must resume a known, idle trial exactly where its checkpoint is; a copy (PBT) must start where
its source stands; budgets stay within bounds; tags are strings; self-ending schedulers end; the same seed
gives the same decisions.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from trellis.search.config import (
    AlgorithmConfig,
    Budget,
    EarlyStopping,
    ExecutorConfig,
    Objective,
    SearchConfig,
    Termination,
    TrackingConfig,
    TrialSpec,
)
from trellis.search.engine.build import make_scheduler
from trellis.search.registry import ALGORITHMS
from trellis.search.schedulers.base import Decision
from trellis.search.space import Float, SearchSpace

SPACE = SearchSpace([Float("lr", low=1e-4, high=1.0, log=True)])
BUDGET_MAX = 9


def contract_loss(lr: float, step: int) -> float:
    return abs(math.log10(lr) + 2) + 1.0 / step  # best at lr = 1e-2, improving with the budget


def drive_scheduler(
    algorithm: str, settings: dict[str, Any], early: EarlyStopping | None, seed: int, max_new: int | None = None
) -> dict[str, Any]:
    """Run a scheduler to its end (or ``max_new`` trials) with checks at every job; what it did."""
    spec = ALGORITHMS[algorithm]
    max_new = max_new if max_new is not None else (500 if spec.self_ending and spec.budgeted else 12)
    budget = Budget(min=1, max=BUDGET_MAX)
    config = SearchConfig(
        "contract",
        Objective("loss", "min"),
        SPACE,
        AlgorithmConfig(algorithm, seed, settings),
        budget,
        Termination(),
        ExecutorConfig(),
        TrialSpec(function="m:f"),
        TrackingConfig(),
        early_stopping=early,
    )
    sched = make_scheduler(config)
    rng = np.random.default_rng(seed)
    params: dict[int, dict] = {}
    reached: dict[int, int] = {}
    running: list[tuple[int, int, int]] = []
    ended_jobs = continued = 0
    for _ in range(10_000):
        while len(running) < 2 and len(params) <= max_new:
            req = sched.next_job()
            if req is None:
                break
            assert 0 <= req.budget_start < req.budget_stop <= budget.max
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in req.tags.items())
            if req.trial is not None:
                assert req.trial in params and req.trial not in [r[0] for r in running]
                assert req.budget_start == reached[req.trial], "a continuation starts where its checkpoint is"
                number = req.trial
                continued += 1
            else:
                number = len(params)
                params[number] = dict(req.params) if req.params else {"lr": float(10 ** rng.uniform(-4, 0))}
                SPACE.validate(params[number])
                if req.copy_checkpoint_from is not None:
                    assert reached[req.copy_checkpoint_from] == req.budget_start
                else:
                    assert req.budget_start == 0
            sched.on_job_started(number, params[number])
            running.append((number, req.budget_start, req.budget_stop))
        if not running:
            break
        number, start, stop = running.pop(int(rng.integers(len(running))))  # jobs end in any order
        state, step = "completed", stop
        for s in range(start + 1, stop + 1):
            lr = params[number]["lr"]
            if sched.needs_decisions and sched.on_report(number, s, contract_loss(lr, s)) is Decision.STOP:
                state, step = "early_stopped", s
                break
        reached[number] = step
        value = contract_loss(params[number]["lr"], step) if state == "completed" else None
        sched.on_trial_end(number, step, value, state)
        ended_jobs += 1
        for trial, tags in sched.drain_updates():
            assert trial in params and trial not in [r[0] for r in running]
            assert all(isinstance(v, str) for v in tags.values())
    return {"sched": sched, "params": params, "reached": reached, "jobs": ended_jobs, "continued": continued}


class SchedulerContract:
    """Subclass with ``algorithm`` (a registered name), its ``settings``, an optional ``early_stopping``, and
    whether its scheduler ``continues`` trials from their checkpoints."""

    algorithm: ClassVar[str] = ""
    settings: ClassVar[dict[str, Any]] = {}
    early_stopping: ClassVar[EarlyStopping | None] = None
    continues: ClassVar[bool] = False

    def drive(self, seed: int) -> dict[str, Any]:
        return drive_scheduler(self.algorithm, dict(self.settings), self.early_stopping, seed)

    def test_jobs_budgets_and_endings(self):
        out = self.drive(seed=3)
        sched, spec = out["sched"], ALGORITHMS[self.algorithm]
        assert out["jobs"] >= len(out["params"]) > 0
        if spec.self_ending and spec.budgeted:
            assert sched.finished and sched.next_job() is None
            size = sched.size()
            assert size is None or len(out["params"]) <= size
        assert max(out["reached"].values()) == BUDGET_MAX  # someone reaches the full budget
        assert (out["continued"] > 0) == self.continues  # continues trials exactly when it says it does

    def test_same_seed_same_decisions(self):
        a, b = self.drive(seed=5), self.drive(seed=5)
        assert a["params"] == b["params"] and a["reached"] == b["reached"]
