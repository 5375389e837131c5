"""PBT: explore on each parameter's own scale, exploit copies a top member's checkpoint, lineage in MLflow."""

import math

import numpy as np
import pytest

from tests.conftest import child_runs, duplicate_steps
from trellis.search.config import Budget, Objective
from trellis.search.engine.runner import run_search
from trellis.search.schedulers.pbt import PBTScheduler, explore
from trellis.search.space import Categorical, Float, Int, SearchSpace
from trellis.tracking import schema


def space() -> SearchSpace:
    return SearchSpace(
        [
            Float("lr", low=1e-5, high=1e-1, log=True),
            Float("dropout", low=0.0, high=0.5),
            Int("batch", low=16, high=256, log=True),
            Categorical("act", choices=("relu", "tanh")),
        ]
    )


def test_log_parameters_move_by_a_constant_factor_and_linear_ones_by_a_constant_step():
    s, rng = space(), np.random.default_rng(0)
    start = {"lr": 1e-3, "dropout": 0.25, "batch": 64, "act": "relu"}
    log_step = 0.1 * (math.log(1e-1) - math.log(1e-5))
    ups = 0
    for _ in range(200):
        new = explore(s, start, rng, perturb=0.1, resample_probability=0.0)
        ratio = math.log(new["lr"] / start["lr"])
        assert ratio == pytest.approx(log_step) or ratio == pytest.approx(-log_step)
        ups += ratio > 0
        assert abs(new["dropout"] - start["dropout"]) == pytest.approx(0.05)
        assert new["act"] == "relu"  # categorical values only change by resampling
        s.validate(new)
    assert 70 < ups < 130  # as likely to double as to halve: no drift towards small learning rates


def test_linear_perturbation_would_be_biased_where_log_is_not():
    """The reason for log space: the geometric mean of many perturbed lrs stays at the start value."""
    s, rng = space(), np.random.default_rng(1)
    lr = {"lr": 1e-3, "dropout": 0.1, "batch": 32, "act": "tanh"}
    logs = [math.log10(explore(s, lr, rng, 0.1, 0.0)["lr"]) for _ in range(2000)]
    assert abs(np.mean(logs) - (-3.0)) < 0.05


def test_values_stay_in_range_and_resampling_draws_from_the_prior():
    s, rng = space(), np.random.default_rng(2)
    edge = {"lr": 1e-1, "dropout": 0.5, "batch": 256, "act": "tanh"}
    new = [explore(s, edge, rng, perturb=0.3, resample_probability=1.0) for _ in range(100)]
    for c in new:
        s.validate(c)
    assert len({c["act"] for c in new}) == 2 and len({c["lr"] for c in new}) == 100
    clipped = explore(s, edge, np.random.default_rng(3), perturb=0.3, resample_probability=0.0)
    s.validate(clipped)


def drive(sched: PBTScheduler, value_of) -> list:
    """Run the scheduler to the end with one worker; returns (number, request) per job."""
    jobs, params, next_number = [], {}, 0
    while not sched.finished:
        request = sched.next_job()
        assert request is not None
        if request.trial is None:
            number = next_number
            next_number += 1
            params[number] = request.params or {"lr": 10 ** -(1 + number % 4)}
        else:
            number = request.trial
        sched.on_job_started(number, params[number])
        jobs.append((number, request))
        sched.on_trial_end(number, request.budget_stop, value_of(params[number]), "completed")
    return jobs


def test_generations_exploit_the_bottom_quantile_from_the_top():
    sched = PBTScheduler(
        Budget(max=6),
        Objective("score", "max"),
        population_size=4,
        interval=2,
        quantile=0.25,
        perturb=0.1,
        resample_probability=0.0,
        seed=0,
        space=space(),
    )
    jobs = drive(sched, lambda p: -abs(math.log10(p["lr"]) + 2))  # best at lr = 1e-2: trial 1
    assert [(r.budget_start, r.budget_stop) for _, r in jobs[:4]] == [(0, 2)] * 4
    gen1 = jobs[4:8]
    children = [(n, r) for n, r in gen1 if r.params is not None]
    assert len(children) == 1  # a quarter of four
    child, req = children[0]
    assert req.tags[schema.PBT_GENERATION] == "1" and gen1[0][0] == child  # the exploit starts first
    assert req.copy_checkpoint_from == 1 and req.tags[schema.PBT_PARENT] == "1"
    worst = 3  # lr = 1e-4 (number 3 -> 10 ** -4) is the farthest from 1e-2
    assert req.tags[schema.PBT_REPLACED] == str(worst) and (req.budget_start, req.budget_stop) == (2, 4)
    assert math.log10(req.params["lr"]) == pytest.approx(-2 + 0.4) or math.log10(req.params["lr"]) == pytest.approx(
        -2 - 0.4
    )
    continued = sorted(n for n, r in gen1 if r.trial is not None)
    assert continued == [0, 1, 2]
    assert len(jobs) == 12 and sched.finished  # three generations of four


def test_pbt_search_continues_members_and_records_lineage(make_config, client):
    config = make_config(
        algorithm={"name": "pbt", "seed": 1, "population_size": 4, "interval": 2, "resample_probability": 0.0},
        objective={"metric": "score", "direction": "max"},
        budget={"min": 1, "max": 6},
        space={"lr": {"low": 1e-4, "high": 1.0, "log": True}},
        termination={},
        trial={"function": "trellis.examples.synthetic:pbt_member"},
    )
    result = run_search(config)
    assert result.state == "completed" and result.stop_reason == "exhausted"
    runs = child_runs(client, result.search_id)
    assert all(r.info.status == "FINISHED" for r in runs)  # a member resumed from a wrong checkpoint fails
    by_number = {int(r.data.tags[schema.TRIAL_NUMBER]): r for r in runs}
    children = [r for r in runs if schema.PBT_PARENT in r.data.tags]
    assert len(runs) == 4 + len(children) and len(children) == 2  # one exploit per later generation
    assert result.progress.started == result.progress.completed == result.progress.limit == len(runs)
    for child in children:
        tags = child.data.tags
        parent = by_number[int(tags[schema.PBT_PARENT])]
        first = min(client.get_metric_history(child.info.run_id, "inherited_from"), key=lambda m: m.step)
        assert int(first.value) == int(tags[schema.PBT_PARENT])  # its checkpoint was the parent's
        generation = int(tags[schema.PBT_GENERATION])
        assert first.step == 2 * generation + 1
        parent_lr, child_lr = float(parent.data.params["lr"]), float(child.data.params["lr"])
        assert abs(math.log10(child_lr / parent_lr)) == pytest.approx(0.1 * 4, rel=1e-6) or child_lr in (1e-4, 1.0)
        replaced = by_number[int(tags[schema.PBT_REPLACED])]
        assert replaced.data.tags[schema.END_REASON] == "exploited"
    survivors = [r for r in runs if r.data.tags[schema.END_REASON] == "completed"]
    assert len(survivors) == 4 and all(r.data.tags[schema.BUDGET_REACHED] == "6" for r in survivors)
    assert duplicate_steps(config.tracking.uri) == []  # the search run's best_score too: one value per step


def test_pbt_settings_are_validated(make_config):
    from trellis.search.config import ConfigError

    with pytest.raises(ConfigError, match="algorithm.quantile"):
        make_config(algorithm={"name": "pbt", "quantile": 0.9}, termination={})
    with pytest.raises(ConfigError, match="algorithm.interval"):
        make_config(algorithm={"name": "pbt", "interval": 10}, termination={})
    with pytest.raises(ConfigError, match="early_stopping"):
        make_config(algorithm={"name": "pbt"}, termination={}, early_stopping={"rule": "median"})
