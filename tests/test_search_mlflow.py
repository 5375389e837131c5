"""What a search leaves in MLflow, read back through MlflowClient on a real SQLite store."""

import json
from pathlib import Path

import yaml

from tests.conftest import child_runs
from trellis.search.engine.runner import run_search
from trellis.tracking import schema


def test_parent_and_nested_trials_with_params_metric_steps_and_tags(make_config, client, tmp_path):
    config = make_config(termination={"max_trials": 7}, budget={"min": 1, "max": 4}, record=["n_params", "latency"])
    result = run_search(config)
    assert result.state == "completed" and result.stop_reason == "max_trials"

    parent = client.get_run(result.search_id)
    tags = parent.data.tags
    assert tags[schema.TYPE] == "search" and tags[schema.SEARCH_ID] == result.search_id
    assert tags[schema.ALGORITHM] == "random" and tags[schema.OBJECTIVE] == "loss"
    assert tags[schema.SEARCH_STATE] == "completed" and tags[schema.N_COMPLETED] == "7"
    assert parent.info.status == "FINISHED" and tags[schema.RECORD] == "n_params,latency"
    assert json.loads(tags[schema.CONFIG_JSON])["space"]["shape"]["choices"] == ["bowl", "ridge", "flat"]
    artifact = client.download_artifacts(result.search_id, schema.CONFIG_ARTIFACT, str(tmp_path))
    assert yaml.safe_load(Path(artifact).read_text())["termination"]["max_trials"] == 7

    trials = child_runs(client, result.search_id)
    assert [int(r.data.tags[schema.TRIAL_NUMBER]) for r in trials] == list(range(7))
    for run in trials:
        t = run.data.tags
        assert run.info.status == "FINISHED"
        assert t[schema.SEARCH_ID] == result.search_id and t[schema.TYPE] == "trial"
        assert t[schema.END_REASON] == "completed" and t[schema.BUDGET_REACHED] == "4"
        assert t[schema.WORKER].endswith(("local-0", "local-1"))
        assert float(t[schema.ENDED_AT]) >= float(t[schema.STARTED_AT]) >= float(t[schema.QUEUED_AT]) - 1
        assert set(run.data.params) == {"x", "y", "shape"}
        history = client.get_metric_history(run.info.run_id, "loss")
        assert [m.step for m in sorted(history, key=lambda m: m.step)] == [1, 2, 3, 4]
        # The synthetic loss is known in closed form: check the logged values are the trial's own.
        p = run.data.params
        scale = {"bowl": 1.0, "ridge": 2.0, "flat": 3.0}[p["shape"]]
        base = scale * ((float(p["x"]) - 0.3) ** 2 + (float(p["y"]) + 0.5) ** 2)
        assert abs(run.data.metrics["loss"] - (base + 2.0**-4)) < 1e-9
        assert run.data.metrics["n_params"] == 20.0
        assert t[schema.MISSING_METRICS] == "latency"  # promised in `record`, never logged

    best = min(trials, key=lambda r: r.data.metrics["loss"])
    assert abs(result.progress.best_value - best.data.metrics["loss"]) < 1e-12
    best_curve = client.get_metric_history(result.search_id, "best_loss")
    assert best_curve and abs(best_curve[-1].value - best.data.metrics["loss"]) < 1e-12
    assert all(a.value >= b.value for a, b in zip(best_curve, best_curve[1:]))


def test_conditional_params_logged_only_when_active(make_config, client):
    config = make_config(
        space={
            "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
            "momentum": {"type": "float", "low": 0.0, "high": 0.9, "when": {"optimizer": "sgd"}},
            "x": {"type": "float", "low": -1.0, "high": 1.0},
        },
        termination={"max_trials": 12},
        algorithm={"name": "tpe", "seed": 1, "n_startup_trials": 4},
    )
    result = run_search(config)
    trials = child_runs(client, result.search_id)
    assert len(trials) == 12
    for run in trials:
        assert ("momentum" in run.data.params) == (run.data.params["optimizer"] == "sgd")
        assert run.data.tags[schema.ALGORITHM] == "tpe"


def test_relaunched_search_points_to_its_origin(make_config, client):
    first = run_search(make_config(termination={"max_trials": 2}))
    second = run_search(make_config(termination={"max_trials": 2}, relaunched_from=first.search_id))
    assert client.get_run(second.search_id).data.tags[schema.RELAUNCHED_FROM] == first.search_id


def test_grid_search_finds_the_known_optimum(make_config):
    config = make_config(
        algorithm={"name": "grid", "points": 11},
        space={"x": {"low": -0.7, "high": 1.3}, "y": {"low": -1.5, "high": 0.5}, "shape": "bowl"},
        termination={},
        budget={"max": 2},
    )
    result = run_search(config)
    assert result.stop_reason == "exhausted" and result.progress.completed == 121
    assert abs(result.best_params["x"] - 0.3) < 1e-9 and abs(result.best_params["y"] + 0.5) < 1e-9


def test_threshold_stops_launching(make_config):
    config = make_config(
        objective={"metric": "loss", "direction": "min"},
        termination={"max_trials": 200, "threshold": 10.0},  # every trial beats 10: stop after the first
        executor={"workers": 1},
    )
    result = run_search(config)
    assert result.stop_reason == "threshold" and result.progress.started == 1
