"""The choices the app's callbacks delegate: picker options, default metrics and axes, trust, clicks, cache keys."""

import json

import numpy as np
import pandas as pd
import pytest

from trellis.app.context import report_key
from trellis.layouts.choices import (
    best_quantile,
    clicked_params,
    default_metrics,
    direction_of,
    overview_defaults,
    r2_trust,
    search_choices,
)
from trellis.layouts.space import importance_plot, importance_rows
from trellis.search.analysis.fanova import Importance
from trellis.search.analysis.objective import default_objective
from trellis.tracking.run_state import runs_state

# -- the search picker ------------------------------------------------------------------------------


def test_search_options_are_labelled_counted_sorted_by_label_and_unknown_searches_dropped():
    trials = pd.DataFrame({"search_id": ["s2", "s1", "s1", "s1", "experiment:7", "s3"]})
    labels = {"s1": "zeta · s1", "s2": "alpha · s2", "experiment:7": "exp (runs)"}  # s3: no label, its id
    options, kept = search_choices(trials, labels, ["s3", "gone", "s1"])
    assert options == [
        {"label": "alpha · s2 (1)", "value": "s2"},
        {"label": "exp (runs) (1)", "value": "experiment:7"},
        {"label": "s3 (1)", "value": "s3"},
        {"label": "zeta · s1 (3)", "value": "s1"},
    ]
    assert kept == ["s3", "s1"]  # in the order asked for, without the search these experiments lack
    assert search_choices(trials.iloc[:0], labels, ["s1"]) == ([], [])


# -- default metrics and directions -----------------------------------------------------------------


def trials_with(objective=None, direction=None, metrics=("loss", "latency_ms", "val_acc", "train_acc")):
    frame = pd.DataFrame({"run_id": ["a", "b"], **{f"metrics.{m}": [0.1, 0.2] for m in metrics}})
    if objective:
        frame["objective"], frame["direction"] = objective, direction
    return frame


def test_overview_defaults_take_the_recorded_objective_and_a_cost_against_it():
    metrics = ["loss", "latency_ms", "val_acc", "train_acc"]
    d = overview_defaults(trials_with("val_acc", "max"), metrics)
    assert (d.objective, d.objective_dir) == ("val_acc", "max")
    assert (d.x, d.x_dir) == ("latency_ms", "min")  # a cost is preferred over the first other metric
    assert (d.y, d.y_dir) == ("val_acc", "max")
    assert d.distribution == "loss"  # the first other metric that is not on x


def test_overview_defaults_without_a_recorded_objective_or_a_cost():
    d = overview_defaults(trials_with(metrics=("acc", "loss")), ["acc", "loss"])
    assert (d.objective, d.objective_dir, d.x, d.x_dir, d.y, d.distribution) == (
        "acc",
        "max",
        "loss",
        "min",
        "acc",
        "acc",
    )
    # The recorded direction wins over the guess from the name; one metric is not traded off against itself.
    d = overview_defaults(trials_with("score", "min", metrics=("score",)), ["score"])
    assert (d.objective, d.objective_dir, d.x, d.x_dir, d.distribution) == ("score", "min", None, "max", "score")
    empty = overview_defaults(pd.DataFrame({"run_id": []}), [])
    assert empty == (None, "max", None, "max", None, "max", None)
    assert direction_of(trials_with(), None) == "max"


def test_default_curves_are_the_objective_and_up_to_two_losses():
    metrics = ["acc", "loss", "val_loss", "test_loss", "lr"]
    assert default_metrics(metrics, "acc") == ["acc", "loss", "val_loss"]
    assert default_metrics(metrics, "val_loss") == ["val_loss", "loss", "test_loss"]
    assert default_metrics(metrics, "gone") == ["loss", "val_loss"]
    assert default_metrics(["acc", "lr"], None) == ["acc"]
    assert default_metrics([], None) == []


def test_curves_default_to_the_same_objective_as_the_other_pages():
    metrics = ["acc", "loss", "val_acc"]
    recorded = trials_with("val_acc", "max", metrics=metrics)
    assert default_metrics(metrics, default_objective(recorded, metrics)) == ["val_acc", "loss"]
    # A recorded objective these runs never logged is not shown; the first metric stands in, as on the overview.
    unlogged = trials_with("f1", "max", metrics=metrics)
    objective = default_objective(unlogged, metrics)
    assert objective == overview_defaults(unlogged, metrics).objective == "acc"
    assert default_metrics(metrics, objective) == ["acc", "loss"]


@pytest.mark.parametrize(
    "value, expected", [(None, None), (0, None), (1.0, None), (1, None), (0.25, 0.25), ("0.5", 0.5)]
)
def test_the_quantile_picker_maps_all_runs_to_none(value, expected):
    assert best_quantile(value) == expected


# -- the search-space page --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "r2, std, level, text",
    [
        (0.9234, 0.0456, "success", "R² 0.92 ± 0.05"),
        (0.7, 0.1, "success", "R² 0.70 ± 0.10"),
        (0.6999, 0.1, "warning", "R² 0.70 ± 0.10"),  # rounds to 0.70 in print, still below the threshold
        (0.3, 0.2, "warning", "R² 0.30 ± 0.20"),
        (0.2999, 0.2, "danger", "R² 0.30 ± 0.20"),
        (-1.5, 0.8, "danger", "R² -1.50 ± 0.80"),
        (None, None, "danger", "R² n/a"),
    ],
)
def test_r2_trust_levels_and_text(r2, std, level, text):
    assert r2_trust(r2, std) == (level, text)


def importance():
    """Parameter names holding " × " and spaces, as a user's search space may have."""
    names = ["lr × wd", "batch size", "wd"]
    return Importance(
        names,
        {"lr × wd": 0.30, "batch size": 0.05, "wd": 0.10},
        {"lr × wd": 0.01, "batch size": 0.02, "wd": 0.03},
        {("lr × wd", "batch size"): 0.40, ("batch size", "wd"): 0.02},
        {("lr × wd", "batch size"): 0.04, ("batch size", "wd"): 0.01},
        8,
    )


def click_on(fig, label):
    """What Dash hands a callback when a bar is clicked (through JSON, as in the browser)."""
    bar = fig["data"][0]
    i = bar["y"].index(label)
    return json.loads(json.dumps({"points": [{"y": label, "x": 0.0, "customdata": bar["customdata"][i]}]}))


def test_importance_rows_rank_as_the_engine_and_carry_their_parameters():
    imp = importance()
    rows = importance_rows(imp)
    assert [(r.label, r.mean, r.std) for r in rows] == imp.ranked()
    assert rows[0].params == ("lr × wd", "batch size") and rows[1].params == ("lr × wd",)
    assert [r.label for r in importance_rows(imp, max_rows=2)] == ["lr × wd × batch size", "lr × wd"]


def test_a_clicked_importance_row_gives_its_parameters_even_when_names_hold_the_separator():
    fig = importance_plot(importance())
    bar = fig["data"][0]
    # The single "lr × wd" is drawn as a single, the pair as a pair: by the names, not the label.
    colors = dict(zip(bar["y"], bar["marker"]["color"]))
    assert colors["lr × wd"] == colors["batch size"] != colors["lr × wd × batch size"]
    assert clicked_params(click_on(fig, "lr × wd × batch size"), ()) == ("lr × wd", "batch size")
    assert clicked_params(click_on(fig, "lr × wd"), ()) == ("lr × wd", None)
    assert clicked_params(click_on(fig, "batch size × wd"), ()) == ("batch size", "wd")
    assert clicked_params(click_on(fig, "batch size"), ()) == ("batch size", None)


def test_without_a_click_the_most_important_row_is_shown():
    top = importance_rows(importance(), max_rows=1)[0].params
    assert clicked_params(None, top) == ("lr × wd", "batch size")
    assert clicked_params({"points": [{"y": "wd"}]}, ("wd",)) == ("wd", None)  # a click without names
    assert clicked_params(None, ("batch size",)) == ("batch size", None)
    assert clicked_params(None, ()) is None


# -- the space analysis' cache key ------------------------------------------------------------------


def runs():
    return pd.DataFrame(
        {
            "run_id": ["a", "b", "c"],
            "end_time": pd.to_datetime(["2024-01-01 10:00", "2024-01-01 11:00", pd.NaT]),
            "metrics.acc": [0.5, 0.7, np.nan],
            "metrics.loss": [1.0, 0.8, np.nan],
        }
    )


SELECTION = {"experiments": ["1"], "searches": ["s1"]}


def key(trials, selection=SELECTION, metric="acc", direction="max", params=("lr",), quantile=None):
    return report_key(selection, trials, metric, direction, list(params), quantile)


def test_the_report_key_is_stable_while_the_runs_do_not_change():
    assert key(runs()) == key(runs().copy())
    assert hash(key(runs())) == hash(key(runs()))
    changed = runs()
    changed.loc[0, "metrics.loss"] = 0.1  # another metric than the analysed one
    assert key(changed) == key(runs())
    assert runs_state(runs().iloc[:0], metric="acc") == (0, 0, "", 0.0)
    assert runs_state(runs(), metric="gone")[-1] == 0.0 and runs_state(runs())[0] == 3


def test_the_report_key_changes_with_the_run_state_and_the_question():
    base = key(runs())
    finished = runs()
    finished.loc[2, ["end_time", "metrics.acc"]] = [pd.Timestamp("2024-01-01 12:00"), 0.9]  # a running trial ends
    added = pd.concat([runs(), runs().iloc[[0]].assign(run_id="d")], ignore_index=True)
    logged = runs()
    logged.loc[1, "metrics.acc"] = 0.75
    ended = runs()
    ended.loc[2, "end_time"] = pd.Timestamp("2024-01-01 12:00")  # killed: it ends without a value
    assert len({base, key(finished), key(added), key(logged), key(ended)}) == 5
    others = [
        key(runs(), selection={"experiments": ["1"], "searches": []}),
        key(runs(), metric="loss"),
        key(runs(), direction="min"),
        key(runs(), params=("lr", "wd")),
        key(runs(), quantile=0.25),
    ]
    assert base not in others and len(set(others)) == len(others)
