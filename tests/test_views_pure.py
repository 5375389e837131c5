"""The overview and curves computations, checked against brute force and hand-computed truths."""

import numpy as np
import pandas as pd
import pytest

from trellis.layouts.curves import curves_info, curves_plot, smooth
from trellis.layouts.overview import (
    best_so_far_info,
    counts_info,
    distribution_info,
    pareto_mask,
    run_ids_from_selection,
    top_k,
    tradeoff_info,
    tradeoff_plot,
)
from trellis.layouts.style import decode
from trellis.search.analysis.objective import metric_direction


def brute_front(x, y, xd, yd):
    sx, sy = x * (1 if xd == "max" else -1), y * (1 if yd == "max" else -1)
    out = []
    for i in range(len(x)):
        dominated = any(sx[j] >= sx[i] and sy[j] >= sy[i] and (sx[j] > sx[i] or sy[j] > sy[i]) for j in range(len(x)))
        out.append(not dominated)
    return np.array(out)


@pytest.mark.parametrize("xd, yd", [("max", "max"), ("max", "min"), ("min", "min"), ("min", "max")])
@pytest.mark.parametrize("seed", range(6))
def test_pareto_mask_matches_brute_force_with_ties(xd, yd, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.integers(0, 8, 60).astype(float), rng.integers(0, 8, 60).astype(float)  # many ties
    assert np.array_equal(pareto_mask(x, y, xd, yd), brute_front(x, y, xd, yd))


def frame():
    rows = []
    for i, (s, acc, lat, status) in enumerate(
        [
            ("a", 0.5, 10, "FINISHED"),
            ("a", 0.7, 30, "FINISHED"),
            ("a", np.nan, 5, "FAILED"),
            ("b", 0.9, 50, "FINISHED"),
            ("b", 0.6, 5, "FINISHED"),
            ("b", np.inf, 1, "RUNNING"),
            ("a", 0.8, 20, "FINISHED"),
        ]
    ):
        rows.append(
            {
                "run_id": f"r{i}",
                "search_id": s,
                "status": status,
                "run_name": f"t{i}",
                "experiment": "e",
                "start_time": pd.Timestamp(1_700_000_000 + i, unit="s", tz="UTC"),
                "metrics.acc": acc,
                "metrics.latency": float(lat),
            }
        )
    return pd.DataFrame(rows)


def test_counts_and_best():
    info = counts_info(frame(), "acc", "max", {"deleted runs": 2})
    assert info.total == 7 and info.by_status == {"FINISHED": 5, "RUNNING": 1, "FAILED": 1}
    assert info.best_value == 0.9 and info.best_run == "r3" and info.searches == 2
    assert info.skipped == {"deleted runs": 2}


def test_best_so_far_is_the_running_best_per_search():
    info = best_so_far_info(frame(), "acc", "max", {})
    order, values, best = info.series["a"]
    assert values == [0.5, 0.7, 0.8] and best == [0.5, 0.7, 0.8] and order == [1, 2, 4]  # NaN trial 3 skipped
    assert info.series["b"][2] == [0.9, 0.9]  # inf dropped, 0.6 does not beat 0.9
    assert best_so_far_info(frame(), "latency", "min", {}).series["a"][2] == [10, 10, 5, 5]


def test_distribution_drops_and_counts_non_finite():
    info = distribution_info(frame(), "acc", {})
    assert sorted(info.values["a"]) == [0.5, 0.7, 0.8] and info.dropped == 2


def test_tradeoff_front_and_top_k():
    info = tradeoff_info(frame(), "latency", "acc", "min", "max", {})
    front_ids = {info.run_ids[i] for i in info.front}
    assert front_ids == {"r4", "r6", "r1", "r3"} - {"r1"} | {
        "r4"
    }  # (5,.6) (20,.8) (50,.9); (30,.7) dominated by (20,.8)
    assert front_ids == {"r4", "r6", "r3"} and info.dropped == 2
    assert [info.x[i] for i in info.front] == sorted(info.x[i] for i in info.front)
    fig = tradeoff_plot(info)
    front = next(t for t in fig["data"] if t["name"] == "Pareto front")
    assert list(decode(front["x"])) == [5.0, 20.0, 50.0] and list(decode(front["y"])) == [0.6, 0.8, 0.9]
    assert sorted(c for t in fig["data"][:-1] for c in t["customdata"]) == sorted(info.run_ids)
    assert top_k(frame(), "acc", "max", 2) == ["r3", "r6"] and top_k(frame(), "latency", "min", 1) == ["r5"]


def test_selection_parsing_and_directions():
    sel = {"points": [{"customdata": "r1"}, {"customdata": ["r2"]}, {"customdata": "r1"}, {"x": 1}]}
    assert run_ids_from_selection(sel) == ["r1", "r2"] and run_ids_from_selection(None) == []
    assert metric_direction(pd.DataFrame(), "val_loss") == "min" and metric_direction(pd.DataFrame(), "acc") == "max"
    runs = pd.DataFrame({"objective": ["score"], "direction": ["min"]})
    assert metric_direction(runs, "score") == "min"


def test_curves_smoothing_time_axis_and_log():
    assert np.allclose(smooth(np.array([1.0, 3.0, 5.0, 7.0]), 2), [1, 2, 4, 6])
    runs = pd.DataFrame(
        {"run_id": ["r"], "run_name": ["t"], "search_id": ["s"], "start_time": [pd.Timestamp(1000, unit="s", tz="UTC")]}
    )
    stamps = [1_001_000, 1_002_000, 1_004_000, 1_008_000]
    hist = pd.DataFrame(
        {"run_id": "r", "key": "loss", "step": [1, 2, 3, 4], "timestamp": stamps, "value": [4.0, 2.0, 0.0, 1.0]}
    )
    info = curves_info(hist, runs, ["loss"], x_axis="time", log_y=True)
    (curve,) = info.curves["loss"]
    assert curve.x == [1.0, 2.0, 8.0] and curve.y == [4.0, 2.0, 1.0] and info.dropped == 1  # 0 has no log
    by_step = curves_info(hist, runs, ["loss"], window=2).curves["loss"][0]
    assert by_step.x == [1, 2, 3, 4] and by_step.y == [4.0, 3.0, 1.0, 0.5]
    fig = curves_plot(info)
    assert len(fig["data"]) == 1 and list(decode(fig["data"][0]["y"])) == [4.0, 2.0, 1.0]
    assert fig["layout"]["yaxis"]["type"] == "log"
