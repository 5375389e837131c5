"""The selection on every plot: scoped to the runs in view, highlighted, and changed only by a user's pick."""

import numpy as np
import pandas as pd

from trellis.layouts.overview import best_so_far_info, best_so_far_plot, tradeoff_info, tradeoff_plot
from trellis.layouts.selection import hidden_note, highlight_line, in_view
from trellis.layouts.space import apply_brush, parcoords_info, parcoords_plot, runs_within, screen_constraints
from trellis.layouts.style import decode
from trellis.search.analysis.design import Axis


def runs():
    return pd.DataFrame(
        {
            "run_id": [f"r{i}" for i in range(6)],
            "search_id": ["a", "a", "a", "b", "b", "b"],
            "start_time": pd.to_datetime(np.arange(6), unit="s", utc=True),
            "metrics.acc": [0.5, 0.7, 0.6, 0.9, 0.8, 0.4],
            "metrics.lat": [10.0, 30, 20, 50, 40, 5],
            "params.lr": [1e-4, 1e-3, 1e-2, 1e-1, 1e-3, 1e-2],
        }
    )


def test_selection_is_scoped_to_the_runs_shown_and_the_rest_counted():
    assert in_view(["r5", "r1", "x9", "r1"], ["r1", "r2", "r5"]) == (["r5", "r1"], 1)
    assert in_view(None, ["r1"]) == ([], 0)
    assert hidden_note(3) == "3 selected runs are in searches not shown"
    assert hidden_note(1) == "1 selected run is in searches not shown" and hidden_note(0) == ""


def _overlay(fig):
    return [t for t in fig["data"] if t["name"].startswith("selected")]


def test_trade_off_and_best_so_far_outline_the_selected_runs_and_dim_the_others():
    trials = runs()
    info = tradeoff_info(trials, "lat", "acc", "min", "max", {})
    plain = tradeoff_plot(info)
    assert _overlay(plain) == [] and plain["data"][0]["marker"]["opacity"] == 0.75
    fig = tradeoff_plot(info, ["r3", "r0"])
    (overlay,) = _overlay(fig)
    assert sorted(overlay["customdata"]) == ["r0", "r3"] and overlay["marker"]["size"] > 7
    assert sorted(decode(overlay["x"])) == [10.0, 50.0]
    assert fig["data"][0]["marker"]["opacity"] < 0.75  # the others dimmed
    legend = plain["layout"]["legend"]  # above the plot, clear of the x axis' title (issue 25)
    assert legend["y"] >= 1 and legend["yanchor"] == "bottom"

    best = best_so_far_plot(best_so_far_info(trials, "acc", "max", {}), ["r1", "r4"])
    (overlay,) = _overlay(best)
    assert overlay["customdata"] == ["r1", "r4"]
    assert list(decode(overlay["x"])) == [2, 2] and list(decode(overlay["y"])) == [0.7, 0.8]  # 2nd of each search
    assert _overlay(best_so_far_plot(best_so_far_info(trials, "acc", "max", {}))) == []


AXES = [Axis("lr", "float", 1e-4, 1e-1, log=True)]


def _rounded(constraints):
    return {i: [[round(a, 6), round(b, 6)] for a, b in ranges] for i, ranges in constraints.items()}


def test_parcoords_greys_the_runs_not_selected_and_keeps_metric_colours_for_the_selected():
    info = parcoords_info(runs(), AXES, ["acc"], "max")
    line = parcoords_plot(info, ["r1", "r3"])["data"][0]["line"]
    colors = decode(line["color"])
    assert line["cmin"] < 0.7 and colors[1] == 0.7 and colors[3] == 0.9
    assert all(colors[i] == line["cmin"] for i in (0, 2, 4, 5))  # the grey step of the scale
    assert line["colorscale"][0][1] == line["colorscale"][1][1]  # grey below the metric's range
    plain = parcoords_plot(info)["data"][0]["line"]
    assert list(decode(plain["color"])) == list(info.color)
    assert highlight_line(np.array([1.0, 2.0]), np.array([True, True]), False)["cmin"] == 1.0


def test_bands_show_as_brushes_but_only_a_user_brush_selects_and_brushes_survive_a_redraw():
    bands = {"lr": (1 / 3, 2 / 3)}
    info = parcoords_info(runs(), AXES, ["acc"], "max", bands=bands)
    assert _rounded(screen_constraints(info, {})) == {0: [[-3.0, -2.0]]}  # the band is on screen, no selection made
    # The user brushes the metric axis: the runs inside every brush on screen are selected.
    brushes, on_screen = apply_brush(info, [{"dimensions[1].constraintrange": [[0.55, 0.85]]}, [0]], {})
    assert brushes == {"acc": [[0.55, 0.85]]}
    assert runs_within(info, on_screen) == ["r1", "r2", "r4"]  # lr in [1e-3, 1e-2], acc in the brush
    # Another quantile of runs (a redraw with other runs): the user's brush is still on screen, by label.
    fewer = parcoords_info(runs().iloc[2:], AXES, ["acc"], "max", bands=bands)
    assert _rounded(screen_constraints(fewer, brushes)) == {0: [[-3.0, -2.0]], 1: [[0.55, 0.85]]}
    # Removing the band's brush by hand keeps it off after a redraw.
    brushes, on_screen = apply_brush(info, [{"dimensions[0].constraintrange": None}, [0]], brushes)
    assert brushes == {"acc": [[0.55, 0.85]], "lr": None} and on_screen == {1: [[0.55, 0.85]]}
    assert screen_constraints(info, brushes) == {1: [[0.55, 0.85]]}
    fig = parcoords_plot(info, None, screen_constraints(info, brushes))
    assert "constraintrange" not in fig["data"][0]["dimensions"][0]
    assert fig["data"][0]["dimensions"][1]["constraintrange"] == [0.55, 0.85]


def test_a_kept_control_applies_only_to_the_runs_it_was_chosen_for():
    from trellis.layouts.choices import kept, kept_params

    key = [["1"], ["s1"]]
    assert kept({"key": key, "value": "min"}, key, "max") == "min"
    assert kept({"key": [["2"], []], "value": "min"}, key, "max") == "max" and kept(None, key, "max") == "max"
    stored = {"key": key, "value": ["lr", "gone"]}
    assert kept_params(stored, key, ["lr", "units"]) == ["lr"]  # a parameter no longer recorded is dropped
    assert kept_params({"key": key, "value": []}, key, ["lr", "units"]) == ["lr", "units"]


def test_table_cells_too_long_to_show_carry_their_full_text_as_a_tooltip():
    from trellis.layouts.labels import long_value_tooltips

    rows = [{"run": "[x](http://a)" + "y" * 40, "arch": "a" * 300, "lr": 0.1}, {"arch": "mlp"}]
    assert long_value_tooltips(rows) == [{"arch": {"value": "a" * 300, "type": "text"}}, {}]
