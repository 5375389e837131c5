"""Early stopping (median and successive-halving rules) for random search, function and script trials."""

import statistics

import pytest

from tests.conftest import ROOT, child_runs
from trellis.search.config import ConfigError
from trellis.search.engine.runner import run_search
from trellis.tracking import schema

TRIALS = {
    "function": {"function": "trellis.examples.synthetic:quadratic"},
    "script": {"script": str(ROOT / "examples" / "synthetic_script.py")},
}


def _loss_at(client, run, step):
    return next(m.value for m in client.get_metric_history(run.info.run_id, "loss") if m.step == step)


@pytest.mark.parametrize("mode", ["function", "script"])
def test_median_rule_stops_laggards_and_says_where(make_config, client, mode):
    config = make_config(
        trial=TRIALS[mode],
        space={"x": {"low": 0.0, "high": 0.9}, "shape": "bowl"},
        budget={"max": 9},
        termination={"max_trials": 14},
        executor={"workers": 1},
        early_stopping={"rule": "median", "step": 3, "min_trials": 3},
    )
    result = run_search(config)
    runs = child_runs(client, result.search_id)
    assert len(runs) == 14 and all(r.info.status == "FINISHED" for r in runs)
    stopped = [r for r in runs if r.data.tags[schema.END_REASON] == "early_stopped"]
    completed = [r for r in runs if r.data.tags[schema.END_REASON] == "completed"]
    assert stopped and completed
    assert all(r.data.tags[schema.BUDGET_REACHED] == "9" for r in completed)
    for run in stopped:
        step = int(run.data.tags[schema.STOPPED_AT_RUNG])
        assert step in (3, 6) and run.data.tags[schema.BUDGET_REACHED] == str(step)
        number = int(run.data.tags[schema.TRIAL_NUMBER])
        earlier = [
            _loss_at(client, r, step)
            for r in runs
            if int(r.data.tags[schema.TRIAL_NUMBER]) < number and int(r.data.tags[schema.BUDGET_REACHED]) >= step
        ]
        assert len(earlier) >= 3 and _loss_at(client, run, step) > statistics.median(earlier)
    # The best trial is never stopped by a median rule on a loss whose ranking does not change with epochs.
    best = min(runs, key=lambda r: abs(float(r.data.params["x"]) - 0.3))
    assert best.data.tags[schema.END_REASON] == "completed"


def test_successive_halving_rule_and_config_checks(make_config, client):
    config = make_config(
        space={"x": {"low": 0.0, "high": 1.0}, "shape": "bowl"},
        budget={"max": 9},
        termination={"max_trials": 12},
        executor={"workers": 1},
        early_stopping={"rule": "successive_halving", "step": 1, "min_trials": 2, "eta": 3},
    )
    result = run_search(config)
    runs = child_runs(client, result.search_id)
    steps = {r.data.tags.get(schema.STOPPED_AT_RUNG) for r in runs if r.data.tags[schema.END_REASON] == "early_stopped"}
    assert steps and steps <= {"1", "3"}  # rungs at step * eta^k below the full budget
    with pytest.raises(ConfigError, match="early_stopping.rule"):
        make_config(early_stopping={"rule": "coin"})
    with pytest.raises(ConfigError, match="hyperband stops trials itself"):
        make_config(algorithm={"name": "hyperband"}, termination={}, early_stopping={"step": 2})
    assert make_config(early_stopping={"step": -1}).early_stopping is None  # CHOPT's -1 disables


@pytest.mark.parametrize("resume", [True, False])
def test_stop_and_go_resumes_a_stopped_trial_from_its_checkpoint_once_it_looks_promising(make_config, client, resume):
    """x = 0.5 is stopped at step 1 (only x = 0.3 was better then); once x = -0.7 has reached step 1 too,
    x = 0.5 sits above the median and, with Stop-and-Go, continues from its step-1 checkpoint."""
    config = make_config(
        trial={"function": "trellis.examples.synthetic:resumable"},
        algorithm={"name": "grid", "shuffle": False},
        space={"x": {"type": "categorical", "choices": [0.3, 0.5, -0.7, -1.0]}},
        budget={"max": 2},
        termination={},
        executor={"workers": 1},
        early_stopping={"rule": "median", "step": 1, "min_trials": 1, "resume": resume},
    )
    runs = child_runs(client, run_search(config).search_id)
    assert all(r.info.status == "FINISHED" for r in runs)  # a resume from the wrong checkpoint step fails
    by_x = {float(r.data.params["x"]): r for r in runs}
    assert by_x[-0.7].data.tags[schema.END_REASON] == "early_stopped"
    resumed = by_x[0.5]
    if not resume:
        assert resumed.data.tags[schema.END_REASON] == "early_stopped" and schema.RESUMED_FROM not in resumed.data.tags
        return
    tags = resumed.data.tags
    assert tags[schema.END_REASON] == "completed" and tags[schema.RESUMED_FROM] == "1"
    assert tags[schema.BUDGET_REACHED] == "2"
    steps = [m.step for m in client.get_metric_history(resumed.info.run_id, "loss")]
    assert sorted(steps) == [1, 2]  # continued, not rerun from scratch
    assert resumed.data.metrics["resumed_from"] == 1.0  # the trial itself saw budget_start = 1
    # It resumed before the next new trial started: x = -1.0 (trial 3) was queued after the resume.
    assert float(tags[schema.STARTED_AT]) < float(by_x[-1.0].data.tags[schema.STARTED_AT])
