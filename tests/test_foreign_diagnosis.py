"""``trellis diagnose`` on runs Trellis did not write: each group (MLflow parent, else the experiment) is one
search, judged on its own runs: edges, parameters to fix, NaN/inf values, duplicates; the rules that need
Trellis' lineage say they do not apply. The findings are the verdicts ``trellis bounds`` prints."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from tests.foreign import optuna_callback, sklearn_gridsearch
from trellis.cli import main

LINEAGE = {"pbt_collapse", "slow_starters", "low_rung_correlation", "tpe_no_better"}


def _handwritten(uri: str, n: int = 40, nan_runs: int = 0, repeats: int = 0) -> None:
    """A script's runs: accuracy rises with lr to the top of [1e-4, 1e-2]; ``u`` does nothing."""
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("handwritten")
    rng = np.random.default_rng(0)
    rows = [(float(10 ** rng.uniform(-4, -2)), float(rng.uniform())) for _ in range(n)]
    rows += rows[:repeats]
    for i, (lr, u) in enumerate(rows):
        acc = math.nan if i < nan_runs else float(np.log10(lr) + rng.normal(0, 0.05))
        run = client.create_run(exp, run_name=f"run-{i}")
        params = [Param("lr", str(lr)), Param("u", str(u)), Param("epochs", "3")]
        client.log_batch(run.info.run_id, params=params, metrics=[Metric("val_accuracy", acc, 0, 0)])
        client.set_terminated(run.info.run_id)


def _diagnose(uri: str, experiment: str, capsys, *extra: str) -> dict:
    capsys.readouterr()
    assert main(["diagnose", "--tracking-uri", uri, "--experiment", experiment, "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_scripts_runs_are_one_search_with_the_verdicts_of_trellis_bounds(store, capsys):
    _handwritten(store)
    out = _diagnose(store, "handwritten", capsys)
    (search,) = out["searches"]
    assert search["search_id"].startswith("experiment:") and search["trials"] == 40
    assert search["objective"] == {"metric": "val_accuracy", "direction": "max"}
    assert set(search["not_applicable"]) == LINEAGE
    rules = {f["rule"]: f for f in search["findings"]}
    ((key, high),) = rules["range_edge"]["config_change"].items()
    assert key == "space.lr.high" and 0.07 < high < 0.12  # half the observed log range again past ~1e-2
    assert list(rules["negligible_parameter"]["config_change"]) == ["space.u"]
    capsys.readouterr()
    assert (
        main(["bounds", "--tracking-uri", store, "--experiment", "handwritten", "--metric", "val_accuracy", "--json"])
        == 0
    )
    bounds = json.loads(capsys.readouterr().out)
    assert (
        bounds["verdicts"]["lr"]["action"] == "widen"
        and bounds["verdicts"]["lr"]["high"] == rules["range_edge"]["config_change"]["space.lr.high"]
    )
    assert (
        bounds["verdicts"]["u"]["action"] == "fix"
        and bounds["fix"]["u"] == rules["negligible_parameter"]["config_change"]["space.u"]
    )
    with pytest.raises(SystemExit, match="no search 'nope' in experiment 'handwritten'"):
        main(
            [
                "bounds",
                "--tracking-uri",
                store,
                "--experiment",
                "handwritten",
                "--metric",
                "val_accuracy",
                "--search",
                "nope",
            ]
        )
    text_exit = main(["diagnose", "--tracking-uri", store, "--experiment", "handwritten"])
    text = capsys.readouterr().out
    assert text_exit == 0 and "runs of another tool" in text and "not applicable without Trellis' lineage" in text


def test_nan_values_and_repeated_configurations_are_found(store, capsys):
    _handwritten(store, n=30, nan_runs=3, repeats=4)
    (search,) = _diagnose(store, "handwritten", capsys)["searches"]
    rules = {f["rule"]: f for f in search["findings"]}
    assert rules["bad_values"]["title"].startswith("3 of 34 finished runs have no finite val_accuracy")
    assert len(rules["bad_values"]["run_ids"]) == 3
    assert rules["duplicate_runs"]["title"].startswith("4 of 34 runs repeat")


def test_optuna_and_sklearn_runs_are_diagnosed_by_their_groups(store, capsys):
    optuna_callback(store, n_trials=12)
    (search,) = _diagnose(store, "optuna", capsys)["searches"]
    assert search["objective"]["metric"] == "score" and search["trials"] == 12
    sklearn_gridsearch(store)
    out = _diagnose(store, "sklearn-grid", capsys, "--metric", "mean_test_score")
    assert [s["objective"]["metric"] for s in out["searches"]] == ["mean_test_score"]
    assert not out["searches"][0]["search_id"].startswith("experiment:")  # grouped under the GridSearchCV parent
    assert main(["diagnose", "--tracking-uri", store, "--experiment", "optuna", "--metric", "nope"]) == 2
    assert "no metric 'nope'" in capsys.readouterr().err
