"""One verdict per parameter against known truths, generated fresh here: a multimodal function (Ishigami, two
optima in x2), an optimum beyond an edge, a null parameter, a parameter most runs never set, a few-valued one,
a conditional parent narrowed; and a property over random experiments: "fix" never lands on a parameter that
matters, every narrowed range keeps the best run, and the page, the CLI and the findings tell one story."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.synthetic_runs import table_of
from trellis.search.analysis.design import AnalysisData, Axis
from trellis.search.analysis.refine import refined_space
from trellis.search.analysis.report import analyse
from trellis.search.analysis.verdicts import FIX_SHARE, Verdict, total_shares


def _ishigami(n: int, seed: int):
    rng = np.random.default_rng(seed)
    x1, x2, x3 = (rng.uniform(-math.pi, math.pi, n) for _ in range(3))
    y = np.sin(x1) + 7 * np.sin(x2) ** 2 + 0.1 * x3**4 * np.sin(x1)
    return table_of({"x1": x1, "x2": x2, "x3": x3, "null": rng.uniform(0, 1, n)}, {"f": y}), (x1, x2, x3)


@pytest.mark.parametrize("seed", [0, 1])
def test_a_parameter_with_two_optima_is_never_fixed_between_them(seed):
    """Ishigami maximised: x2's optima at ±π/2 (its share 0.44 analytic); the null parameter is fixed."""
    table, _ = _ishigami(400, seed)
    report = analyse(table, table.trials, "f", "max")
    x2 = report.verdicts["x2"]
    assert x2.action != "fix" and x2.share > 0.3
    if x2.action == "narrow":  # the span of both optima, and the note names both regions
        assert x2.low < -math.pi / 2 and x2.high > math.pi / 2 and len(x2.regions) == 2
        (a_low, a_high), (b_low, b_high) = x2.regions
        assert a_low < -math.pi / 2 < a_high < 0 < b_low < math.pi / 2 < b_high
        assert "2 separate regions" in x2.why
    assert (
        report.verdicts["x1"].action == "narrow"
        and report.verdicts["x1"].low < math.pi / 2 < report.verdicts["x1"].high
    )
    null = report.verdicts["null"]
    assert null.action == "fix" and null.share < FIX_SHARE
    assert null.value == pytest.approx(
        float(table.trials.loc[table.trials["metrics.f"].idxmax(), "params.null"]), rel=1e-5
    )


def test_an_optimum_beyond_the_top_edge_widens_that_side_on_its_log_scale():
    """Accuracy rises with lr up to the top of [1e-4, 1e-2]: widen the top to 1e-1, in the bounds too."""
    rng = np.random.default_rng(3)
    n = 80
    lr = 10 ** rng.uniform(-4, -2, n)
    lr[:2] = [1e-4, 1e-2]  # the searched range's ends
    table = table_of({"lr": lr, "u": rng.uniform(0, 1, n)}, {"acc": np.log10(lr) + rng.normal(0, 0.05, n)})
    report = analyse(table, table.trials, "acc", "max")
    verdict = report.verdicts["lr"]
    assert verdict.action == "widen" and verdict.side == "high"
    assert verdict.high == pytest.approx(0.1, rel=0.01) and verdict.low == pytest.approx(1e-4)
    space = yaml.safe_load(report.refined_yaml)["space"]
    assert space["lr"]["high"] == verdict.high and space["lr"]["log"] is True
    assert report.verdicts["u"].action == "fix"


def test_a_non_negative_range_is_never_widened_below_zero():
    rng = np.random.default_rng(4)
    n = 80
    dropout = rng.uniform(0, 0.5, n)
    dropout[0] = 0.0
    table = table_of(
        {"dropout": dropout, "x": rng.uniform(0, 1, n)}, {"loss": dropout + (rng.uniform(0, 1, n) - 0.5) ** 2}
    )
    verdict = analyse(table, table.trials, "loss", "min").verdicts["dropout"]
    assert verdict.action != "widen" or verdict.low >= 0.0


def test_a_parameter_most_runs_never_set_is_never_fixed_at_its_stand_in():
    """weight_decay is logged by a third of the runs only, and changes nothing: the fix (if any) is the best
    run's own value, never the low end the analysis places unset runs at."""
    rng = np.random.default_rng(5)
    n = 120
    x = rng.uniform(-1, 1, n)
    wd = [float(v) if keep else None for v, keep in zip(10 ** rng.uniform(-6, -2, n), rng.random(n) < 0.35)]
    table = table_of({"x": x, "weight_decay": wd}, {"loss": x**2})
    report = analyse(table, table.trials, "loss", "min")
    verdict = report.verdicts["weight_decay"]
    best = table.trials.loc[table.trials["metrics.loss"].idxmin()]
    if best["params.weight_decay"] is None or best["params.weight_decay"] != best["params.weight_decay"]:
        assert verdict.action != "fix" and "did not set it" in verdict.why
    else:
        assert verdict.action == "fix" and verdict.value == pytest.approx(float(best["params.weight_decay"]), rel=1e-5)
    # The same check from the other side: a best run that did not set it.
    wd[int(np.argmin(x**2))] = None
    table = table_of({"x": x, "weight_decay": wd}, {"loss": x**2})
    verdict = analyse(table, table.trials, "loss", "min").verdicts["weight_decay"]
    assert verdict.action != "fix" and "did not set it" in verdict.why


def test_a_number_searched_at_three_values_stays_a_set():
    """hidden seen only at 32, 64, 128 (128 worst): the next space is a set of those, never [32, 128]."""
    rng = np.random.default_rng(6)
    n = 90
    hidden = rng.choice([32, 64, 128], n)
    lr = rng.uniform(0, 1, n)
    table = table_of({"hidden": hidden, "lr": lr}, {"loss": (hidden == 128) * 1.0 + (lr - 0.5) ** 2})
    report = analyse(table, table.trials, "loss", "min")
    assert report.data.axis("hidden").values == [32, 64, 128]
    verdict = report.verdicts["hidden"]
    assert verdict.action == "narrow" and set(verdict.choices) == {32, 64}
    space = yaml.safe_load(report.refined_yaml)["space"]
    assert space["hidden"] == {"type": "categorical", "choices": [32, 64]}


def test_a_condition_on_a_narrowed_parent_is_dropped_or_kept_with_it():
    axes = [Axis("optimizer", "categorical", categories=["adam", "sgd"]), Axis("momentum", "float", 0.0, 0.99)]
    data = AnalysisData(axes, np.zeros((0, 2)), np.zeros(0), [], "loss", "min")
    original = {
        "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
        "momentum": {"type": "float", "low": 0.0, "high": 0.99, "when": {"optimizer": "sgd"}},
        "nesterov": {"type": "categorical", "choices": [True, False], "when": {"optimizer": ["adam", "sgd"]}},
    }
    narrowed = {
        "optimizer": Verdict("optimizer", "narrow", "t", choices=("adam",)),
        "momentum": Verdict("momentum", "keep", "t"),
    }
    space, dropped = refined_space(narrowed, data, original)
    assert "momentum" not in space and "optimizer" in dropped["momentum"]
    assert "when" not in space["nesterov"]  # adam is the one optimizer left, and it meets the condition
    kept = {"optimizer": Verdict("optimizer", "keep", "t"), "momentum": Verdict("momentum", "keep", "t")}
    space, dropped = refined_space(kept, data, original)
    assert space["momentum"]["when"] == {"optimizer": "sgd"} and not dropped
    fixed = {"optimizer": Verdict("optimizer", "fix", "t", value="sgd"), "momentum": Verdict("momentum", "keep", "t")}
    space, _ = refined_space(fixed, data, original)
    assert space["momentum"] == {"type": "float", "low": 0.0, "high": 0.99, "log": False}  # always active now


def test_a_condition_parent_that_matters_little_is_not_fixed():
    """Fixing a parent changes which parameters exist: the verdict keeps it (the user decides)."""
    rng = np.random.default_rng(7)
    n = 120
    optimizer = rng.choice(["adam", "sgd"], n)
    momentum = [float(m) if o == "sgd" else None for o, m in zip(optimizer, rng.uniform(0, 0.99, n))]
    x = rng.uniform(-1, 1, n)
    tags = {"optimizer_distribution": ["CategoricalDistribution(choices=('adam', 'sgd'))"] * n}
    table = table_of({"optimizer": optimizer, "momentum": momentum, "x": x}, {"loss": x**2}, tags)
    report = analyse(table, table.trials, "loss", "min")
    assert report.verdicts["x"].action == "narrow"
    assert report.verdicts["momentum"].action in ("fix", "keep")


# -- the property: over random experiments, one consistent story -------------------------------------------


@st.composite
def experiments(draw):
    n_params = draw(st.integers(2, 4))
    n = draw(st.integers(40, 120))
    seed = draw(st.integers(0, 10_000))
    kinds = draw(
        st.lists(st.sampled_from(["bowl", "slope", "null", "two_modes"]), min_size=n_params, max_size=n_params)
    )
    rng = np.random.default_rng(seed)
    params, y = {}, np.zeros(n)
    for i, kind in enumerate(kinds):
        v = rng.uniform(0, 1, n)
        params[f"p{i}"] = v
        y += {"bowl": (v - rng.uniform(0.2, 0.8)) ** 2, "slope": v, "null": 0 * v,
              "two_modes": np.minimum((v - 0.2) ** 2, (v - 0.8) ** 2)}[kind] * rng.uniform(0.5, 2)  # fmt: skip
    y += rng.normal(0, draw(st.sampled_from([0.0, 0.01, 0.1])), n)
    return table_of(params, {"loss": y})


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(experiments())
def test_no_fix_for_what_matters_and_every_narrowed_range_keeps_the_best_run(table):
    report = analyse(table, table.trials, "loss", "min", marginals=False)
    if report.verdicts is None:
        return
    assert set(report.verdicts) == set(report.data.names)  # exactly one verdict per analysed parameter
    shares = total_shares(report.importance)
    best = table.trials.loc[table.trials["metrics.loss"].idxmin()]
    for name, verdict in report.verdicts.items():
        if verdict.action == "fix":
            assert shares[name][0] < 0.1, (name, shares[name])
            assert verdict.value == pytest.approx(float(best[f"params.{name}"]), rel=1e-5)
        if verdict.action in ("narrow", "widen") and verdict.low is not None:
            assert verdict.low <= float(best[f"params.{name}"]) <= verdict.high, (name, verdict)
    space, _ = refined_space(report.verdicts, report.data, {})
    for name, verdict in report.verdicts.items():  # the YAML says what the verdict says
        spec = space[name]
        assert (spec["type"] == "fixed") == (verdict.action == "fix")
