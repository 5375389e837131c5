"""A balanced grid is analysed exactly (the ANOVA of the full factorial) rather than refused for a poor forest
fit; the page's report and ``trellis importance`` give the same shares on the same runs."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from tests.foreign import sklearn_gridsearch
from tests.synthetic_runs import table_of
from trellis.cli import main
from trellis.search.analysis.design import prepare
from trellis.search.analysis.factorial import levels_of
from trellis.search.analysis.report import analyse
from trellis.tracking.reader import read_runs

C_EFFECT = {0.1: 0.0, 1.0: 1.0, 10.0: 2.0}
KERNEL_EFFECT = {"linear": 0.0, "rbf": 0.5}


def _grid(replicates: int, interaction: float = 0.0):
    rows = list(itertools.product(C_EFFECT, KERNEL_EFFECT, [16, 64])) * replicates
    c, kernel, units = (list(col) for col in zip(*rows))
    y = [C_EFFECT[a] + KERNEL_EFFECT[b] + interaction * (a == 10.0) * (b == "rbf") for a, b in zip(c, kernel)]
    return table_of({"C": c, "kernel": kernel, "units": units}, {"score": y})


def test_an_additive_grid_gets_its_analytic_shares_and_one_verdict_each():
    """score = f(C) + g(kernel): Var f = 2/3 over C's three levels, Var g = 1/16; units does nothing."""
    table = _grid(replicates=2)
    report = analyse(table, table.trials, "score", "max")
    assert report.problem is None and report.bounds.exact
    var_c, var_k = 2 / 3, 1 / 16
    assert report.importance.single_mean["C"] == pytest.approx(var_c / (var_c + var_k), abs=1e-9)
    assert report.importance.single_mean["kernel"] == pytest.approx(var_k / (var_c + var_k), abs=1e-9)
    assert report.importance.single_mean["units"] == pytest.approx(0.0, abs=1e-12)
    assert all(share == pytest.approx(0.0, abs=1e-12) for share in report.importance.pair_mean.values())
    verdicts = report.verdicts
    assert verdicts["C"].action == "narrow" and verdicts["C"].choices == (10.0,)
    assert verdicts["kernel"].action == "narrow" and verdicts["kernel"].choices == ("rbf",)
    assert verdicts["units"].action == "fix" and verdicts["units"].value in (16, 64)


def test_an_interaction_is_a_pair_share_and_an_unbalanced_grid_is_not_a_factorial():
    table = _grid(replicates=1, interaction=1.0)
    report = analyse(table, table.trials, "score", "max")
    y = table.trials["metrics.score"].to_numpy()
    cells = table.trials.groupby(["params.C", "params.kernel"])["metrics.score"].transform("mean").to_numpy()
    c_means = table.trials.groupby("params.C")["metrics.score"].transform("mean").to_numpy()
    k_means = table.trials.groupby("params.kernel")["metrics.score"].transform("mean").to_numpy()
    pair = (np.var(cells) - np.var(c_means) - np.var(k_means)) / np.var(y)  # by brute force
    assert pair > 0.01 and report.importance.pair_mean[("C", "kernel")] == pytest.approx(pair, abs=1e-9)
    trials = table.trials.iloc[1:]  # one run short: no longer balanced
    assert levels_of(prepare(table, trials, "score", "max")) is None


def test_a_sklearn_grid_gets_the_same_exact_shares_on_the_page_and_in_the_cli(store, capsys):
    sklearn_gridsearch(store)
    table = read_runs(store, [_experiment(store, "sklearn-grid")])
    trials = table.trials.dropna(subset=["metrics.mean_test_score"])
    report = analyse(table, trials, "mean_test_score", "max")
    assert report.problem is None and report.bounds.exact and set(report.verdicts) == {"C", "kernel"}
    args = ["importance", "--tracking-uri", store, "--experiment", "sklearn-grid", "--metric", "mean_test_score"]
    capsys.readouterr()
    assert main([*args, "--json", "--direction", "max"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["exact"] is True
    for name, share in report.importance.single_mean.items():
        assert out["singles"][name]["mean"] == pytest.approx(share, abs=1e-12)


def _experiment(uri: str, name: str) -> str:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri).get_experiment_by_name(name).experiment_id
