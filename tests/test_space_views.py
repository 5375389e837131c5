"""Search-space view computations: axis scales, bands, top-K mask, brushing."""

import numpy as np
import pandas as pd

from trellis.layouts.space import (
    importance_plot,
    nice_ticks,
    parcoords_info,
    parcoords_plot,
    parse_restyle,
    runs_within,
    short_labels,
    to_display,
)
from trellis.layouts.style import decode
from trellis.search.analysis.design import Axis
from trellis.search.analysis.fanova import Importance


def trials():
    return pd.DataFrame(
        {
            "run_id": ["a", "b", "c", "d"],
            "params.lr": [1e-4, 1e-3, 1e-2, 1e-1],
            "params.opt": ["adam", "sgd", "adam", None],
            "metrics.acc": [0.5, 0.9, 0.7, np.nan],
        }
    )


AXES = [Axis("lr", "float", 1e-4, 1e-1, log=True), Axis("opt", "categorical", categories=["adam", "sgd"])]


def test_log_axes_show_log10_with_decade_ticks_and_categoricals_their_labels():
    info = parcoords_info(trials(), AXES, ["acc"], "max")
    lr, opt, acc = info.dims
    assert np.allclose(lr.values, [-4, -3, -2, -1]) and lr.ticktext == ["0.0001", "0.001", "0.01", "0.1"]
    assert opt.ticktext == ["missing (1)", "adam", "sgd"] and list(opt.values[:3]) == [0, 1, 0]
    assert info.filled == {"opt": 1} and opt.values[3] == opt.range[0] < -0.5  # apart, below the categories
    assert acc.range == (0.5, 0.9) and info.reverse_scale  # max: the high end dark
    fig = parcoords_plot(info)
    assert list(decode(fig["data"][0]["dimensions"][0]["values"])) == [-4, -3, -2, -1]


def test_bands_top_k_and_brushing():
    bands = {"lr": (1 / 3, 2 / 3)}  # the middle decade in [0, 1] log units
    info = parcoords_info(trials(), AXES, ["acc"], "max", bands=bands, top_k=2)
    assert np.allclose(info.dims[0].constraint, (-3, -2))
    assert info.dims[2].constraint == (0.7, 0.9)  # the two best accuracies
    assert to_display(AXES[1], 0.5, 1.0) == (0.5, 1.5)
    constraints = parse_restyle([{"dimensions[0].constraintrange": [[-3.5, -1.5]]}, [0]], {})
    assert constraints == {0: [[-3.5, -1.5]]}
    assert runs_within(info, constraints) == ["b", "c"]
    constraints = parse_restyle([{"dimensions[1].constraintrange": [[-0.5, 0.5]]}, [0]], constraints)
    assert runs_within(info, constraints) == ["c"]
    assert parse_restyle([{"dimensions[1].constraintrange": None}, [0]], constraints) == {0: [[-3.5, -1.5]]}
    multi = parse_restyle([{"dimensions[0].constraintrange": [[[-4.5, -3.5], [-1.5, -0.5]]]}, [0]], {})
    assert runs_within(info, multi) == ["a", "d"]


def test_importance_matrix_rows_are_ranked_with_pairs_marked():
    imp = Importance(["a", "b"], {"a": 0.2, "b": 0.5}, {"a": 0.01, "b": 0.02}, {("a", "b"): 0.3}, {("a", "b"): 0.05}, 8)
    fig = importance_plot(imp)
    bar = fig["data"][0]
    assert bar["y"] == ["a", "a × b", "b"]  # bottom to top: the most important is drawn last, on top
    assert list(decode(bar["x"])) == [0.2, 0.3, 0.5]


def test_missing_values_are_drawn_apart_below_the_axis_and_counted():
    frame = pd.DataFrame(
        {
            "run_id": ["a", "b", "c", "d", "e"],
            "params.momentum": [0.0, 0.5, np.nan, 0.9, np.nan],  # inactive when the optimizer is adam
            "params.lr": [1e-4, np.nan, 1e-2, 1e-1, 1e-3],
            "metrics.acc": [0.5, 0.9, 0.7, 0.6, 0.8],
        }
    )
    axes = [Axis("momentum", "float", 0.0, 0.9), Axis("lr", "float", 1e-4, 1e-1, log=True)]
    momentum, lr, _ = parcoords_info(frame, axes, ["acc"], "max").dims
    genuine_low = momentum.values[0]
    assert genuine_low == 0.0 and momentum.values[2] == momentum.values[4] < genuine_low  # apart from 0.0
    assert momentum.range[0] == momentum.values[2] and momentum.range[1] == 0.9
    assert momentum.ticktext[0] == "missing (2)" and momentum.tickvals[0] == momentum.values[2]
    assert momentum.ticktext[1:] == [f"{v:g}" for v in momentum.tickvals[1:]] and 0.0 in momentum.tickvals
    assert (
        lr.values[1] < -4 and lr.ticktext[0] == "missing (1)" and lr.ticktext[1:] == ["0.0001", "0.001", "0.01", "0.1"]
    )
    # Brushing the 'missing' position selects exactly the runs without a value.
    assert runs_within(
        parcoords_info(frame, axes, ["acc"], "max"), {0: [[momentum.range[0] - 0.01, momentum.range[0] + 0.01]]}
    ) == ["c", "e"]
    dim = parcoords_plot(parcoords_info(frame, axes, ["acc"], "max"))["data"][0]["dimensions"][0]
    assert dim["ticktext"][0] == "missing (2)" and dim["range"][0] < 0


def test_long_categorical_values_are_cut_on_the_axis_and_kept_distinct():
    long_a, long_b = "a" * 300, "a" * 299 + "b"
    frame = pd.DataFrame({"run_id": ["x", "y", "z"], "params.arch": [long_a, long_b, "mlp"], "metrics.acc": [1, 2, 3]})
    axes = [Axis("arch", "categorical", categories=[long_a, long_b, "mlp"])]
    arch = parcoords_info(frame, axes, ["acc"], "max").dims[0]
    assert all(len(t) <= 24 for t in arch.ticktext) and arch.ticktext[2] == "mlp"
    assert len(set(arch.ticktext)) == 3 and arch.ticktext[0].endswith("…")
    assert short_labels(["short", "x" * 30], limit=10) == ["short", "x" * 9 + "…"]


def test_nice_ticks_are_round_and_inside_the_range():
    assert nice_ticks(0.0, 0.9) == [0.0, 0.2, 0.4, 0.6, 0.8]
    assert nice_ticks(3.0, 3.0) == [3.0]


def test_darker_is_better_on_every_page():
    """One meaning of the colour scale everywhere (issue 25): the best value is the darkest Viridis end, for
    max and min alike, in the parallel coordinates, the pair marginal, the exploration and model maps."""
    from trellis.layouts.selection import VIRIDIS
    from trellis.layouts.space import pair_plot

    dark = VIRIDIS[0]
    for direction, best in (("max", 0.9), ("min", 0.5)):
        info = parcoords_info(trials(), AXES, ["acc"], direction)
        line = parcoords_plot(info)["data"][0]["line"]
        scale = dict((round(s, 6), c) for s, c in line["colorscale"])
        at_best = scale[0.0] if best == line["cmin"] else scale[1.0]
        assert at_best == dark, (direction, line["cmin"], line["cmax"])
        heat = pair_plot(AXES[0], AXES[0], np.linspace(0, 1, 3), np.zeros((3, 3)), "acc", direction)["data"][0]
        assert heat["reversescale"] == (direction == "max")  # plotly's Viridis is dark at its low end
