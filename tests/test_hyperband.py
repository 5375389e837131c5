"""Hyperband: bracket sizes, successive halving, promotions from checkpoints, rungs and pruning in MLflow."""

import pytest

from tests.conftest import child_runs
from trellis.search.config import Budget, Objective
from trellis.search.engine.runner import run_search
from trellis.search.schedulers.hyperband import HyperbandScheduler, hyperband_brackets
from trellis.tracking import schema


def test_bracket_sizes_as_in_the_paper():
    brackets = hyperband_brackets(81, 1, 3)
    assert [b.n_configs for b in brackets] == [81, 34, 15, 8, 5]
    assert brackets[0].rungs == ((81, 1), (27, 3), (9, 9), (3, 27), (1, 81))
    assert brackets[1].rungs == ((34, 3), (11, 9), (3, 27), (1, 81))
    assert brackets[4].rungs == ((5, 81),)
    with pytest.raises(ValueError):
        hyperband_brackets(81, 1, 1)


def test_successive_halving_promotes_the_best_and_prunes_the_rest():
    sched = HyperbandScheduler(Budget("epochs", 1, 9), Objective("loss", "min"), eta=3)
    values, jobs, next_number = {}, [], 0
    while not sched.finished:
        request = sched.next_job()
        assert request is not None, "with no job running the scheduler must have work"
        number = request.trial if request.trial is not None else next_number
        if request.trial is None:
            values[number] = (number * 7) % 10  # a fixed, known loss per configuration
            next_number += 1
        sched.on_job_started(number)
        jobs.append((number, request.budget_start, request.budget_stop, request.tags[schema.RUNG]))
        sched.on_trial_end(number, request.budget_stop, float(values[number]), "completed")
    assert next_number == 9 + 5 + 3  # new configurations in the three brackets
    bracket0 = [j for j in jobs if j[0] < 9]
    promoted = sorted(range(9), key=values.get)[:3]
    assert sorted(n for n, start, stop, rung in bracket0 if rung == "1") == sorted(promoted)
    assert all(start == 1 and stop == 3 for n, start, stop, rung in bracket0 if rung == "1")
    (final,) = [j for j in bracket0 if j[3] == "2"]
    assert final[0] == promoted[0] and (final[1], final[2]) == (3, 9)
    pruned = {t: int(tags[schema.STOPPED_AT_RUNG]) for t, tags in sched.drain_updates()}
    assert pruned[promoted[1]] == 1 and set(pruned.values()) <= {0, 1}


def test_hyperband_search_resumes_from_checkpoints_and_records_rungs(make_config, client):
    config = make_config(
        algorithm={"name": "hyperband", "eta": 3, "seed": 3},
        budget={"min": 1, "max": 9},
        space={"x": {"low": -1.0, "high": 1.0}},
        termination={},
        trial={"function": "trellis.examples.synthetic:resumable"},
    )
    result = run_search(config)
    assert result.stop_reason == "exhausted"
    p = result.progress  # counts trials, not the jobs (rungs) they ran
    assert p.started == p.completed == p.limit == 17 and p.failed == p.killed == 0
    runs = child_runs(client, result.search_id)
    assert len(runs) == 17 and all(r.info.status == "FINISHED" for r in runs)  # a bad resume would fail
    by_number = {int(r.data.tags[schema.TRIAL_NUMBER]): r for r in runs}
    first = [by_number[n] for n in range(9)]  # the most exploratory bracket
    assert {r.data.tags[schema.BRACKET] for r in first} == {"2"}
    winner = max(first, key=lambda r: int(r.data.tags[schema.BUDGET_REACHED]))
    assert winner.data.tags[schema.BUDGET_REACHED] == "9" and winner.data.tags[schema.RUNG] == "2"
    best_x = min(first, key=lambda r: abs(float(r.data.params["x"]) - 0.3))
    assert winner.info.run_id == best_x.info.run_id  # the loss ranks x by its distance to 0.3
    steps = sorted(m.step for m in client.get_metric_history(winner.info.run_id, "loss"))
    assert steps == list(range(1, 10))  # one continuous curve over three jobs
    rungs = sorted((m.step, m.value) for m in client.get_metric_history(winner.info.run_id, schema.RUNG))
    assert rungs == [(1, 0.0), (3, 1.0), (9, 2.0)]
    assert winner.data.metrics["resumed_from"] == 3.0
    pruned = [r for r in first if r.data.tags[schema.END_REASON] == "pruned"]
    assert len(pruned) == 8 and {r.data.tags[schema.STOPPED_AT_RUNG] for r in pruned} == {"0", "1"}
    assert sum(r.data.tags[schema.STOPPED_AT_RUNG] == "1" for r in pruned) == 2
