"""Surrogate predictions: calibrated on held-out runs, plain data, and a refined space against the original."""

import json

import numpy as np
import pytest
from sklearn.model_selection import KFold

from trellis.search.analysis.design import AnalysisData, Axis
from trellis.search.analysis.surrogate import Surrogate, compare_spaces, fit_surrogate, predict, predict_unit


def _data(X, y, axes, direction="min") -> AnalysisData:
    return AnalysisData(axes, X, y, [f"r{i}" for i in range(len(y))], "loss", direction)


def branin_noisy(n: int, seed: int):
    rng = np.random.default_rng(seed)
    u = rng.uniform(size=(n, 3))
    x1, x2 = -5 + 15 * u[:, 0], 15 * u[:, 1]
    y = (x2 - 5.1 / (4 * np.pi**2) * x1**2 + 5 / np.pi * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * np.pi)) * np.cos(x1) + 10
    return u, y + rng.normal(0, 5.0, n), [Axis("x1", "float"), Axis("x2", "float"), Axis("u", "float")]


def bowl_noisy(n: int, seed: int):
    """Heteroscedastic: the noise grows with x3; one categorical."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(size=(n, 4))
    code = rng.integers(0, 3, n)
    u[:, 3] = (code + 0.5) / 3
    y = (u[:, 0] - 0.3) ** 2 + 2 * (u[:, 1] - 0.6) ** 2 + 0.3 * code + rng.normal(0, 0.05 + 0.2 * u[:, 2], n)
    axes = [
        Axis("a", "float"),
        Axis("b", "float"),
        Axis("c", "float"),
        Axis("k", "categorical", categories=["p", "q", "r"]),
    ]
    return u, y, axes


@pytest.mark.parametrize("function", [branin_noisy, bowl_noisy], ids=["branin", "bowl"])
def test_one_std_holds_two_thirds_of_held_out_runs(function):
    """k-fold over runs the surrogate never saw: 60-75% of true values within +-1 predicted std."""
    X, y, axes = function(400, 1)
    inside = []
    for train, test in KFold(5, shuffle=True, random_state=0).split(X):
        s = fit_surrogate(_data(X[train], y[train], axes))
        mean, std = predict_unit(s, X[test])
        inside.append(np.abs(y[test] - mean) <= std)
    share = float(np.concatenate(inside).mean())
    assert 0.60 <= share <= 0.75, share
    assert 0.60 <= s.coverage <= 0.75  # its own k-fold estimate, on its training runs


def test_predictions_follow_the_function_and_survive_plain_data():
    X, y, axes = bowl_noisy(300, 2)
    s = fit_surrogate(_data(X, y, axes))
    near = predict(s, {"a": 0.3, "b": 0.6, "c": 0.0, "k": "p"})
    far = predict(s, {"a": 1.0, "b": 0.0, "c": 0.0, "k": "r"})
    assert near.mean < far.mean - 0.5 and near.std > 0 and far.std > 0
    back = Surrogate.from_plain(json.loads(json.dumps(s.to_plain())))
    assert predict(back, {"a": 0.3, "b": 0.6, "c": 0.0, "k": "p"}) == pytest.approx(near)
    assert set(s.best) == {"a", "b", "c", "k"} and s.best["k"] in ("p", "q", "r")
    with pytest.raises(ValueError, match="^k: 'z' is not one of"):
        predict(s, {"a": 0.3, "k": "z"})
    with pytest.raises(ValueError, match="^a: 'wide' is not a number"):
        predict(s, {"a": "wide"})


def test_a_refined_space_around_the_optimum_predicts_better_than_the_original():
    X, y, axes = bowl_noisy(400, 3)
    s = fit_surrogate(_data(X, y, axes))
    refined = {"a": {"type": "float", "low": 0.2, "high": 0.4}, "b": {"low": 0.5, "high": 0.7}, "k": "p"}
    cmp = compare_spaces(s, refined)
    assert cmp.refined[1] < cmp.original[0]  # the refined median beats the original's best quarter
    assert cmp.refined[0] <= cmp.refined[1] <= cmp.refined[2]


def test_the_app_fits_it_once_per_report_and_shares_it_as_plain_data(make_config, store, tmp_path):
    """Two workers (two contexts on one cache folder): the second reads the first's surrogate back."""
    from trellis.app.context import SURROGATE, AppContext
    from trellis.search.engine.runner import run_search
    from trellis.tracking.cache import DiskBackend, RunCache

    result = run_search(make_config(termination={"max_trials": 30}))
    selection = {"experiments": [result.experiment_id]}
    first = AppContext(store, RunCache(store, DiskBackend(str(tmp_path / "cache"))))
    s = first.space_surrogate(selection, "loss", "min", None, None)
    assert s is not None and s.metric == "loss" and s.n_runs == 30
    assert first.space_surrogate(selection, "loss", "min", None, None) is s  # kept in this process
    other = AppContext(store, RunCache(store, DiskBackend(str(tmp_path / "cache"))))
    back = other.space_surrogate(selection, "loss", "min", None, None)
    assert back is not s and predict(back, s.best) == pytest.approx(predict(s, s.best))
    _, key = first._report_view(selection, "loss", "min", None, None)
    assert first.cache.store.get(first.results.store_key(("surrogate", *key))).startswith(SURROGATE.magic)


def test_the_page_form_is_prefilled_with_the_best_run_and_reads_back():
    from trellis.layouts.space_predict import (
        INPUT_TYPE,
        comparison_text,
        config_of,
        form_rows,
        prediction_text,
        refined_comparison,
    )

    X, y, axes = bowl_noisy(200, 4)
    s = fit_surrogate(_data(X, y, axes))
    rows = form_rows(s)
    fields = [row.children[1] for row in rows]
    assert [f.id for f in fields] == [{"type": INPUT_TYPE, "name": n} for n in ("a", "b", "c", "k")]
    assert [f.value for f in fields] == [str(s.best[n]) for n in ("a", "b", "c", "k")]
    config = config_of([f.id for f in fields], [f.value for f in fields])
    assert "±" in prediction_text(predict(s, config), s)
    refined = "# Suggested by Trellis\nspace:\n  a: {type: float, low: 0.2, high: 0.4}\n  k: {type: fixed, value: p}\n"
    c = refined_comparison(s, refined)
    assert c is not None and c.refined[1] < c.original[1]
    assert comparison_text(c, s).startswith("refined space: predicted loss median ")
    assert refined_comparison(s, "# No refined space is offered: too few runs.\n") is None
