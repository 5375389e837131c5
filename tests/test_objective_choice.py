"""Which objective a page starts from, and in which direction: recorded, then known tools, then the name."""

import pandas as pd
import pytest

from trellis.app.shell import build_query, parse_query, query_objective, with_objective
from trellis.layouts.choices import objective_choice, overview_defaults
from trellis.search.analysis.objective import default_objective, is_timing, metric_direction, user_metrics

SKLEARN = [
    "mean_fit_time",
    "mean_score_time",
    "mean_test_score",
    "rank_test_score",
    "std_fit_time",
    "std_score_time",
    "std_test_score",
]


@pytest.mark.parametrize(
    "metric, direction",
    [
        ("mean_test_score", "max"),
        ("mean_fit_time", "min"),
        ("mean_score_time", "min"),  # a time, though it names a score
        ("rank_test_score", "min"),  # rank 1 is best
        ("neg_mean_squared_error", "max"),  # scikit-learn's negated errors are scores
        ("val_loss", "min"),
        ("val_accuracy", "max"),
        ("valAcc", "max"),
        ("f1_macro", "max"),
        ("test_r2", "max"),
        ("latency_ms", "min"),
        ("n_params", "min"),
        ("perplexity", "min"),
        ("timestep_reward", "max"),  # "time" inside a word is not a time
        ("val_rmse", "min"),
        ("precision", "max"),
        ("recall", "max"),
    ],
)
def test_direction_guessed_from_the_metric_name(metric, direction):
    assert metric_direction(pd.DataFrame(), metric) == direction


def test_the_recorded_direction_wins_over_the_name():
    runs = pd.DataFrame({"objective": ["val_loss", "val_loss"], "direction": ["max", "max"]})
    assert metric_direction(runs, "val_loss") == "max"
    assert metric_direction(runs, "accuracy") == "max" and metric_direction(runs, "train_loss") == "min"


def test_foreign_defaults_prefer_what_the_tool_optimises_and_never_a_timing():
    assert default_objective(pd.DataFrame(), SKLEARN) == "mean_test_score"
    assert default_objective(pd.DataFrame(), ["duration", "value"]) == "value"  # Optuna's MLflow callback
    assert default_objective(pd.DataFrame(), ["fit_time", "latency", "train_acc", "val_loss"]) == "train_acc"
    assert default_objective(pd.DataFrame(), ["fit_time", "score_time", "val_loss"]) == "val_loss"
    assert default_objective(pd.DataFrame(), ["mean_fit_time", "std_test_score", "zeta"]) == "zeta"
    assert not any(is_timing(m) for m in ["mean_test_score", "timestep_reward", "val_loss"])
    assert all(is_timing(m) for m in ["mean_fit_time", "score_time", "latency_ms", "duration", "epoch_seconds"])
    d = overview_defaults(pd.DataFrame({"run_id": ["a"]}), SKLEARN)
    assert (d.objective, d.objective_dir) == ("mean_test_score", "max")


def test_internal_metrics_are_never_offered_or_chosen():
    metrics = ["trellis.best.loss", "trellis.rung", "loss"]
    assert user_metrics(metrics) == ["loss"]
    assert default_objective(pd.DataFrame(), ["trellis.rung", "loss"]) == "loss"
    assert overview_defaults(pd.DataFrame({"run_id": ["a"]}), metrics).x is None


def test_a_single_metric_is_not_traded_off_against_itself():
    d = overview_defaults(pd.DataFrame({"run_id": ["a"], "metrics.loss": [1.0]}), ["loss"])
    assert d.objective == d.y == "loss" and d.x is None


def test_the_objective_in_the_url_is_shared_by_the_pages():
    trials = pd.DataFrame({"run_id": ["a"], "objective": ["loss"], "direction": ["min"], "metrics.loss": [1.0]})
    metrics = ["accuracy", "loss"]
    assert objective_choice(trials, metrics, None) == "loss"
    assert objective_choice(trials, metrics, "accuracy") == "accuracy"
    assert objective_choice(trials, metrics, "gone") == "loss"  # not logged by these runs: the default
    assert overview_defaults(trials, metrics, "accuracy").objective == "accuracy"
    query = build_query(["1", "2"], ["abc"], "val_loss")
    assert parse_query(query) == (["1", "2"], ["abc"]) and query_objective(query) == "val_loss"
    assert with_objective("?exp=1&search=ab12", "acc") == "?exp=1&search=ab12&objective=acc"
    assert with_objective("?exp=1&objective=acc", None) == "?exp=1"
    assert query_objective("?exp=1") is None


def test_the_trade_off_plot_says_so_instead_of_plotting_a_metric_against_itself():
    from trellis.layouts.overview import tradeoff_info, tradeoff_plot

    trials = pd.DataFrame({"run_id": ["a", "b"], "search_id": ["s", "s"], "metrics.loss": [1.0, 2.0]})
    fig = tradeoff_plot(tradeoff_info(trials, "loss", "loss", "min", "min", {}))
    assert fig["data"] == [] and "second metric" in fig["layout"]["annotations"][0]["text"]
