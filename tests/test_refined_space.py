"""A refined space stays inside what was searched, keeps each parameter's recorded scale, and is not offered
when the forest cannot be trusted."""

import numpy as np
import pytest

from trellis.search.analysis.bounds import SuggestedBounds, suggest_bounds, untrusted_reason
from trellis.search.analysis.design import AnalysisData, Axis, prepare
from trellis.search.analysis.refine import refined_space
from trellis.search.analysis.report import analyse
from trellis.search.analysis.verdicts import Verdict
from trellis.tracking.foreign_spaces import parse_optuna_distribution
from trellis.tracking.reader import read_runs, spaces_of


def _bounds(ranges, r2=0.8):
    return SuggestedBounds(ranges, {}, {}, r2, 0.05, 100)


def _data(axes):
    return AnalysisData(axes, np.zeros((0, len(axes))), np.zeros(0), [], "loss", "min")


def _narrow(ranges):
    return {n: Verdict(n, "narrow", "test", low=lo, high=hi) for n, (lo, hi) in ranges.items()}


def test_bounds_are_clipped_to_the_recorded_space():
    hidden = Axis("hidden", "int", low=8, high=256, log=True)
    lr = Axis("lr", "float", low=1e-4, high=0.3, log=True)
    original = {"hidden": {"type": "int", "low": 8, "high": 256, "log": True},
                "lr": {"type": "float", "low": 1e-4, "high": 0.3, "log": True}}  # fmt: skip
    space, _ = refined_space(_narrow({"hidden": (7.4, 40.2), "lr": (5e-5, 0.31)}), _data([hidden, lr]), original)
    assert space["hidden"] == {"type": "int", "low": 8, "high": 41, "log": True}
    assert space["lr"]["low"] == 1e-4 and space["lr"]["high"] == 0.3 and space["lr"]["log"] is True


def test_a_narrowing_that_leaves_no_range_keeps_the_searched_one():
    units = Axis("units", "int", low=1, high=64)
    space, _ = refined_space(
        _narrow({"units": (64.0, 64.0)}), _data([units]), {"units": {"type": "int", "low": 1, "high": 64}}
    )
    assert space["units"]["low"] == 1 and space["units"]["high"] == 64


def test_foreign_runs_are_clipped_to_the_observed_range():
    x = Axis("x", "float", low=0.0, high=0.7)
    space, _ = refined_space(_narrow({"x": (-0.1, 0.9)}), _data([x]))
    assert space["x"] == {"type": "float", "low": 0.0, "high": 0.7, "log": False}


def test_optuna_distributions_are_read_as_the_space(store):
    assert parse_optuna_distribution("FloatDistribution(high=0.1, log=True, low=1e-05, step=None)") == {
        "type": "float", "low": 1e-05, "high": 0.1, "log": True
    }  # fmt: skip
    assert parse_optuna_distribution("CategoricalDistribution(choices=('a', 'b'))") == {
        "type": "categorical", "choices": ["a", "b"]
    }  # fmt: skip
    assert parse_optuna_distribution("FloatDistribution(high=__import__('os').system('x'))") is None
    exp = _optuna_study(store)
    table = read_runs(store, [exp])
    declared = spaces_of(table)
    assert declared["lr"]["log"] is True  # Optuna sampled lr on a log scale (a span too small to guess it)
    data = prepare(table, table.trials, "value", "max")
    assert data.axis("lr").log and data.axis("lr").low == declared["lr"]["low"]
    space, _ = refined_space(analyse(table, table.trials, "value", "max").verdicts, data, declared)
    assert space["lr"]["log"] is True and space["lr"]["low"] >= declared["lr"]["low"]


def _optuna_study(uri: str) -> str:
    import mlflow
    import optuna
    from optuna_integration.mlflow import MLflowCallback

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    callback = MLflowCallback(tracking_uri=uri, metric_name="value")
    study = optuna.create_study(study_name="lr", direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: -abs(np.log10(t.suggest_float("lr", 1e-3, 5e-2, log=True)) + 2), 16, callbacks=[callback])
    return mlflow.MlflowClient(tracking_uri=uri).get_experiment_by_name("lr").experiment_id


def test_bounds_are_not_offered_when_the_forest_predicts_worse_than_the_mean():
    rng = np.random.default_rng(0)
    axes = [Axis("a", "float"), Axis("b", "float")]
    data = AnalysisData(axes, rng.random((60, 2)), rng.random(60), [str(i) for i in range(60)], "loss", "min")
    bounds = suggest_bounds(data, seed=0)
    assert bounds.r2 is not None and bounds.r2 < 0
    assert "worse than its mean" in untrusted_reason(bounds)
    assert untrusted_reason(_bounds({}, r2=0.4)) is None
    assert "too few runs" in untrusted_reason(_bounds({}, r2=None))


@pytest.mark.parametrize("r2", [None, -0.2])
def test_the_report_says_why_instead_of_offering(r2):
    assert untrusted_reason(_bounds({}, r2=r2))


def test_a_small_search_is_cross_validated_pooled_but_too_few_to_narrow():
    """Twelve runs of a noise-free function of two parameters (a third without effect): the pooled R² is
    positive (per-fold R² was wildly negative), yet 12 runs for 3 parameters are too few to rank or narrow:
    the bounds stay whole, nothing is flagged to fix, and the reason names the runs and the fit."""
    axes = [Axis("a", "float"), Axis("b", "float"), Axis("unused", "float")]
    for seed in range(5):
        X = np.random.default_rng(seed).random((12, 3))
        y = (X[:, 0] - 0.3) ** 2 + 0.5 * (X[:, 1] - 0.7) ** 2
        bounds = suggest_bounds(AnalysisData(axes, X, y, [str(i) for i in range(12)], "loss", "min"), seed=0)
        assert bounds.r2 is not None and bounds.r2 > 0, (seed, bounds.r2)
        assert untrusted_reason(bounds).startswith(f"too few runs to rank or narrow: 12 runs, fit R² {bounds.r2:.2f}")
        assert not bounds.narrowed and not bounds.unimportant
        assert all(r == (0.0, 1.0) for r in bounds.ranges.values())


def test_the_analysis_does_not_depend_on_the_row_order(make_config, store):
    from trellis.search.analysis.report import analyse
    from trellis.search.engine.runner import run_search
    from trellis.tracking.reader import read_runs

    result = run_search(make_config(termination={"max_trials": 40}))  # enough to rank (see above)
    table = read_runs(store, [result.experiment_id])
    first = analyse(table, table.trials, "loss", "min")
    shuffled = analyse(table, table.trials.sample(frac=1.0, random_state=3), "loss", "min")
    # Equal up to the last bits (the forest's trees are built and averaged in parallel threads).
    assert first.bounds.r2 == pytest.approx(shuffled.bounds.r2, rel=1e-9)
    for name, (low, high) in first.bounds.ranges.items():
        assert (low, high) == pytest.approx(shuffled.bounds.ranges[name], rel=1e-9)
    assert first.importance.single_mean == pytest.approx(shuffled.importance.single_mean, rel=1e-9)
