"""Views of more runs than a browser draws one by one (issue 28): the density keeps every run counted, the best
runs and the selection stay points, and a box drawn on the density selects from all runs."""

import json

import numpy as np
import pandas as pd
import pytest

from trellis.layouts import dense
from trellis.layouts.overview import (
    MAX_BOX_SELECTION,
    best_so_far_info,
    best_so_far_plot,
    distribution_info,
    distribution_plot,
    pareto_mask,
    runs_in_box,
    tradeoff_info,
    tradeoff_plot,
)

N = dense.DENSE_ABOVE + 5000


@pytest.fixture(scope="module")
def trials() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    loss = rng.gamma(2.0, 1.0, N)
    cost = rng.uniform(1, 100, N) + 5 / (loss + 0.1)
    loss[:7] = np.nan  # no finite loss: left out, counted
    return pd.DataFrame(
        {
            "run_id": [f"r{i:06d}" for i in range(N)],
            "search_id": np.where(np.arange(N) % 3 == 0, "s1", "s2").astype(object),
            "start_time": pd.to_datetime(np.arange(N), unit="s", utc=True),
            "status": "FINISHED",
            "metrics.loss": loss,
            "metrics.cost": cost,
        }
    )


def test_the_trade_off_counts_every_run_and_keeps_the_front_the_best_and_the_selection(trials):
    chosen = ["r000100", "r012345", "r020001"]
    info = tradeoff_info(trials, "cost", "loss", "min", "min", {}, chosen)
    finite = trials.dropna(subset=["metrics.loss"])
    assert info.density is not None and info.density.n == len(finite)
    assert sum(map(sum, info.density.counts)) == len(finite)
    x, y = finite["metrics.cost"].to_numpy(), finite["metrics.loss"].to_numpy()
    front_ids = set(finite["run_id"].to_numpy()[pareto_mask(x, y, "min", "min")])
    assert {info.run_ids[i] for i in info.front} == front_ids  # the front of all runs, not of a sample
    best = set(finite.nsmallest(dense.KEEP_BEST, "metrics.loss")["run_id"])
    assert best <= set(info.run_ids) and set(chosen) <= set(info.run_ids)
    assert len(info.run_ids) <= len(front_ids) + dense.KEEP_BEST + len(chosen)
    figure = tradeoff_plot(info, chosen)
    assert len(json.dumps(figure)) < 500_000  # not 25k points
    assert figure["data"][0]["type"] == "heatmap"
    selected_trace = [t for t in figure["data"] if t.get("name", "").startswith("selected")]
    assert sorted(selected_trace[0]["customdata"]) == sorted(chosen)


def test_a_box_on_the_density_selects_every_run_inside_it_best_first(trials):
    box = ((10.0, 40.0), (0.5, 1.5))
    ids = runs_in_box(trials, "cost", "loss", box, "loss", "min")
    inside = trials[trials["metrics.cost"].between(10, 40) & trials["metrics.loss"].between(0.5, 1.5)]
    assert len(inside) > dense.KEEP_BEST  # more than the drawn points: the box reached undrawn runs
    assert ids == inside.sort_values("metrics.loss", kind="stable")["run_id"].tolist()[:MAX_BOX_SELECTION]
    assert dense.box_of({"range": {"x": [40, 10], "y": [1.5, 0.5]}, "points": []}) == box


def test_best_so_far_keeps_each_improvement_and_bins_the_rest(trials):
    info = best_so_far_info(trials, "loss", "min", {})
    assert info.density is not None and info.density.n == trials["metrics.loss"].notna().sum()
    for search_id, (_order, values, best) in info.series.items():
        group = trials[trials["search_id"] == search_id]["metrics.loss"].to_numpy()
        finite = group[np.isfinite(group)]
        running = np.minimum.accumulate(finite)
        assert values == best and best[-1] == running[-1]
        assert len(best) == len(np.unique(running))  # one point per improvement
    assert best_so_far_plot(info)["data"][0]["type"] == "heatmap"


def test_the_histogram_is_binned_here_with_every_finite_value(trials):
    info = distribution_info(trials, "loss", {})
    assert info.values == {} and info.dropped == 7
    assert sum(sum(c) for c in info.counts.values()) == N - 7
    s1 = trials[(trials["search_id"] == "s1")]["metrics.loss"].dropna().to_numpy()
    assert info.counts["s1"] == np.histogram(s1, bins=np.asarray(info.edges))[0].tolist()
    assert distribution_plot(info)["data"][0]["type"] == "bar"


def test_few_runs_are_still_drawn_one_by_one(trials):
    small = trials.iloc[:500]
    info = tradeoff_info(small, "cost", "loss", "min", "min", {})
    assert info.density is None and len(info.run_ids) == small["metrics.loss"].notna().sum()
    assert distribution_info(small, "loss", {}).counts is None


def _parcoords(n: int):
    from trellis.layouts.space import Dimension, ParcoordsInfo

    rng = np.random.default_rng(5)
    x, acc = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
    dims = [Dimension("x", x, (0.0, 1.0), None, None, None), Dimension("acc", acc, (0.0, 1.0), None, None, None)]
    return ParcoordsInfo(dims, acc, "acc", True, [f"r{i}" for i in range(n)], {})


def test_parallel_coordinates_draw_the_best_the_selection_and_an_even_sample():
    from trellis.layouts.space import KEEP_BEST_LINES, MAX_LINES, drawn_lines, parcoords_plot

    info = _parcoords(60_000)
    chosen = ["r7", "r59999", "r123"]
    lines = drawn_lines(info, chosen)
    assert len(lines) <= MAX_LINES + len(chosen)
    best = np.argsort(info.color)[-KEEP_BEST_LINES:]
    assert set(best) <= set(lines) and {7, 59999, 123} <= set(lines)
    # the sample spreads over the metric's ranks: every decile of the runs is drawn about as often
    deciles = np.searchsorted(np.quantile(info.color, np.linspace(0, 1, 11)[1:-1]), info.color[lines])
    counts = np.bincount(deciles, minlength=10)
    assert counts[:9].min() >= 0.8 * (MAX_LINES - KEEP_BEST_LINES) / 10
    figure = parcoords_plot(info, chosen)
    drawn = figure["data"][0]["dimensions"][0]["values"]
    assert len(np.frombuffer(__import__("base64").b64decode(drawn["bdata"]), "<f8")) == len(lines)
    assert "of 60000 runs drawn" in figure["layout"]["title"]["text"]
    assert drawn_lines(_parcoords(MAX_LINES), None) is None  # few enough: every run


def test_a_brush_selects_from_every_run_best_first():
    from trellis.layouts.space import brushed_selection

    info = _parcoords(60_000)
    ids, inside = brushed_selection(info, {0: [[0.2, 0.3]]}, limit=1000)
    x, acc = info.dims[0].values, info.color
    truth = np.flatnonzero((x >= 0.2) & (x <= 0.3))
    assert inside == len(truth) and len(ids) == 1000
    assert ids == [f"r{i}" for i in truth[np.argsort(-acc[truth], kind="stable")][:1000]]
