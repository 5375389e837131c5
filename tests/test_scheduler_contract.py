"""The same checks for every scheduler, driven as the runner drives them (two workers, jobs ending out of order).

A continuation must resume a known, idle trial exactly where its checkpoint is; a PBT copy must start where
its source stands; budgets stay within bounds; tags are strings; self-ending schedulers end.
"""

import math

import numpy as np
import pytest

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
CASES = {
    "fifo": ("random", {}, None),
    "median": ("random", {}, EarlyStopping("median", 1, 2, 3, resume=False)),
    "stop-and-go": ("random", {}, EarlyStopping("median", 1, 2, 3, resume=True)),
    "successive_halving": ("tpe", {}, EarlyStopping("successive_halving", 1, 2, 3)),
    "hyperband": ("hyperband", {"eta": 3}, None),
    "bohb": ("bohb", {"eta": 2}, None),
    "pbt": (
        "pbt",
        {"population_size": 5, "interval": 2, "quantile": 0.4, "perturb": 0.1, "resample_probability": 0.2},
        None,
    ),
}
SELF_ENDING = {name for name, spec in ALGORITHMS.items() if spec.self_ending and name != "grid"}


def loss(lr: float, step: int) -> float:
    return abs(math.log10(lr) + 2) + 1.0 / step  # best at lr = 1e-2, improving with the budget


def drive(name: str, seed: int) -> dict:
    algorithm, settings, early = CASES[name]
    max_new = 500 if name in SELF_ENDING else 12  # the others run until the runner's max_trials
    budget = Budget(min=1, max=9)
    config = SearchConfig(
        name,
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
    params, reached, running, ended_jobs, continued = {}, {}, [], 0, 0
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
            if sched.needs_decisions and sched.on_report(number, s, loss(params[number]["lr"], s)) is Decision.STOP:
                state, step = "early_stopped", s
                break
        reached[number] = step
        value = loss(params[number]["lr"], step) if state == "completed" else None
        sched.on_trial_end(number, step, value, state)
        ended_jobs += 1
        for trial, tags in sched.drain_updates():
            assert trial in params and trial not in [r[0] for r in running]
            assert all(isinstance(v, str) for v in tags.values())
    return {"sched": sched, "params": params, "reached": reached, "jobs": ended_jobs, "continued": continued}


@pytest.mark.parametrize("name", sorted(CASES))
def test_scheduler_contract(name):
    out = drive(name, seed=3)
    sched = out["sched"]
    assert out["jobs"] >= len(out["params"]) > 0
    if name in SELF_ENDING:
        assert sched.finished and sched.next_job() is None
        size = sched.size()
        assert size is None or len(out["params"]) <= size
    assert max(out["reached"].values()) == 9  # someone reaches the full budget
    continues = name in ("stop-and-go", "hyperband", "bohb", "pbt")
    assert (out["continued"] > 0) == continues  # only these ever continue a trial


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_seed_same_decisions(name):
    a, b = drive(name, seed=5), drive(name, seed=5)
    assert a["params"] == b["params"] and a["reached"] == b["reached"]


def test_the_suite_covers_every_registered_scheduler():
    covered = {ALGORITHMS[algorithm].scheduler for algorithm, _, _ in CASES.values()}
    assert covered >= {spec.scheduler for spec in ALGORITHMS.values()}
