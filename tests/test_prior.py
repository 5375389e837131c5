"""The relaunch prior's pure functions (``trellis.search.prior``, ``prior_from_verdicts``, the form's
``prior_for_rows`` and its view) against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trellis.search.analysis.design import AnalysisData, Axis
from trellis.search.analysis.refine import prior_from_verdicts
from trellis.search.analysis.verdicts import Verdict
from trellis.search.config import ConfigError, parse_config
from trellis.search.control.prior_view import prior_view_info
from trellis.search.control.relaunch import config_from_form, form_from_config, prior_for_rows
from trellis.search.prior import (
    ParameterPrior,
    Prior,
    centre_spread,
    choice_probabilities,
    default_strength,
    density_curve,
    draw,
    draw_config,
    exponent,
    level_probabilities,
    log_density,
    pull,
    unit_density,
)
from trellis.search.space import Categorical, Float, Int, SearchSpace

X = Float("x", low=0.0, high=1.0)
LR = Float("lr", low=1e-4, high=1.0, log=True)
KIND = Categorical("kind", choices=("a", "b", "c", "d"))
SQRT_2PI = math.sqrt(2 * math.pi)


def test_numeric_density_by_hand():
    prior = ParameterPrior("x", 0.5, low=0.4, high=0.6)  # centre 0.5, spread 0.1: truncation is negligible
    assert centre_spread(prior, X) == pytest.approx((0.5, 0.1))
    at_centre = 0.5 * 1 / (0.1 * SQRT_2PI) + 0.5
    two_sd = 0.5 * math.exp(-2) / (0.1 * SQRT_2PI) + 0.5
    assert unit_density(prior, X, [0.5, 0.7]) == pytest.approx([at_centre, two_sd], rel=1e-5)
    assert log_density(prior, X, [0.5]) == pytest.approx([math.log(at_centre)], rel=1e-5)


def test_log_scale_and_truncation():
    prior = ParameterPrior("lr", 1.0, low=1e-3, high=1e-2)  # decades 1..2 of 4: 0.25..0.5 on [0, 1]
    assert centre_spread(prior, LR) == pytest.approx((0.375, 0.125))
    edge = ParameterPrior("x", 1.0, low=0.0, high=0.0)  # one value at the edge: spread floor, half truncated
    assert centre_spread(edge, X) == pytest.approx((0.0, 0.05))
    u = np.linspace(0, 1, 20001)
    for p, param in ((prior, LR), (edge, X), (ParameterPrior("x", 0.3, low=0.8, high=0.9), X)):
        assert np.trapezoid(unit_density(p, param, u), u) == pytest.approx(1.0, abs=1e-3)  # a density on [0, 1]
    # On the original log scale, the density's value at 10^-2.5 (unit 0.375, the centre) is its peak.
    assert np.argmax(unit_density(prior, LR, u)) == pytest.approx(0.375 * 20000, abs=1)


def test_categorical_probabilities_by_hand():
    probs = choice_probabilities(ParameterPrior("kind", 0.6, choices=("b",)), KIND)
    assert probs == pytest.approx([0.1, 0.7, 0.1, 0.1])
    two = choice_probabilities(ParameterPrior("kind", 0.8, choices=("a", "d")), KIND)
    assert two == pytest.approx([0.45, 0.05, 0.05, 0.45])
    # A weight of 1 is taken as MAX_WEIGHT: no choice is ever walled off.
    sure = choice_probabilities(ParameterPrior("kind", 1.0, choices=("b",)), KIND)
    assert sure == pytest.approx([0.0125, 0.9625, 0.0125, 0.0125])
    assert choice_probabilities(ParameterPrior("kind", 0.0, choices=("a",)), KIND) == pytest.approx([0.25] * 4)


def test_decay_and_strength():
    assert exponent(3.6, 0) == pytest.approx(3.6)
    assert exponent(3.6, 8) == pytest.approx(0.4)
    assert exponent(3.6, -5) == pytest.approx(3.6)  # a warm start's past is not counted
    assert default_strength(36) == pytest.approx(3.6)  # piBO: a tenth of the trials
    assert default_strength(5) == 1.0
    assert default_strength(None) == 3.0


def test_pull_by_hand():
    inside = math.erf(1 / math.sqrt(2))  # a normal's mass within one spread: 0.6827
    assert pull(ParameterPrior("x", 1.0, low=0.4, high=0.6), X) == pytest.approx(0.95 * (inside - 0.2), rel=1e-4)
    assert pull(ParameterPrior("x", 0.5, low=0.4, high=0.6), X) == pytest.approx(0.5 * (inside - 0.2), rel=1e-4)
    assert pull(ParameterPrior("x", 0.0, low=0.4, high=0.6), X) == 0.0
    assert pull(None, X) == 0.0
    assert pull(ParameterPrior("kind", 0.6, choices=("b",)), KIND) == pytest.approx(0.7 - 0.25)


def test_draws_follow_the_density_and_its_decay():
    rng = np.random.default_rng(0)
    prior = ParameterPrior("x", 0.8, low=0.4, high=0.6)
    inside = math.erf(1 / math.sqrt(2))
    for scale, expected in ((1.0, 0.8 * inside + 0.2 * 0.2), (0.5, 0.4 * inside + 0.6 * 0.2)):
        values = np.array([draw(prior, X, rng, scale) for _ in range(20000)])
        assert ((values >= 0.4) & (values <= 0.6)).mean() == pytest.approx(expected, abs=0.015)
        assert values.min() >= 0.0 and values.max() <= 1.0
    counts = Int("n", low=1, high=100, log=True)
    ints = [draw(ParameterPrior("n", 1.0, low=10, high=20), counts, rng) for _ in range(2000)]
    assert all(isinstance(v, int) and 1 <= v <= 100 for v in ints)
    assert np.mean([10 <= v <= 20 for v in ints]) > 0.5
    kinds = [draw(ParameterPrior("kind", 0.6, choices=("b",)), KIND, rng) for _ in range(20000)]
    assert np.mean([k == "b" for k in kinds]) == pytest.approx(0.7, abs=0.015)


def test_draw_config_leaves_unnamed_parameters_uniform_and_respects_conditions():
    space = SearchSpace([KIND, Float("y", when={"kind": ("a",)}, low=0.0, high=1.0), X])
    prior = Prior({"kind": ParameterPrior("kind", 0.8, choices=("b",))}, strength=5.0)
    rng = np.random.default_rng(1)
    configs = [draw_config(prior, space, rng, ended=0) for _ in range(4000)]
    assert np.mean([c["kind"] == "b" for c in configs]) == pytest.approx(0.8 + 0.2 * 0.25, abs=0.02)
    assert all(("y" in c) == (c["kind"] == "a") for c in configs)  # y is active only for a
    late = [draw_config(prior, space, rng, ended=49) for _ in range(4000)]  # exponent 0.1: mostly uniform
    assert np.mean([c["kind"] == "b" for c in late]) == pytest.approx(0.08 + 0.92 * 0.25, abs=0.025)
    assert np.mean([c["x"] < 0.5 for c in configs]) == pytest.approx(0.5, abs=0.07)


BASE = {
    "name": "p",
    "objective": {"metric": "loss", "direction": "min"},
    "space": {
        "x": {"type": "float", "low": 0.0, "high": 1.0},
        "lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
        "kind": {"type": "categorical", "choices": ["a", "b", "c", "d"]},
    },
    "algorithm": {"name": "tpe", "seed": 1},
    "termination": {"max_trials": 30},
    "trial": {"function": "trellis.examples.synthetic:sparse_bowl"},
}


def test_config_section_round_trips_and_names_each_problem():
    raw = {
        **BASE,
        "prior": {
            "parameters": {"x": {"low": 0.2, "high": 0.4, "weight": 0.7}, "kind": {"choices": ["d"], "weight": 1}}
        },
    }
    config = parse_config(raw, check_target=False)
    assert config.prior.strength == pytest.approx(3.0)  # a tenth of 30 trials
    assert parse_config(config.to_dict(), check_target=False).prior == config.prior
    bad = {
        **BASE,
        "algorithm": {"name": "grid"},
        "prior": {
            "strength": "strong",
            "parameters": {
                "x": {"low": 0.5, "high": 1.5, "weight": 0.5},
                "lr": {"value": 0.1, "weight": -1},
                "kind": {"choices": ["z"], "weight": 0.5},
                "nope": {"value": 1, "weight": 0.5},
            },
        },
    }
    with pytest.raises(ConfigError) as err:
        parse_config(bad, check_target=False)
    paths = {path for path, _ in err.value.problems}
    assert {
        "prior",
        "prior.strength",
        "prior.parameters.x.high",
        "prior.parameters.lr.weight",
        "prior.parameters.kind.choices",
        "prior.parameters.nope",
    } <= paths


def _data() -> AnalysisData:
    axes = [
        Axis("x", "float", 0.0, 1.0),
        Axis("u", "float", 0.0, 1.0),
        Axis("lr", "float", 1e-4, 1.0, log=True),
        Axis("kind", "categorical", categories=["a", "b", "c", "d"]),
        Axis("q", "float", 0.0, 1.0),
    ]
    return AnalysisData(axes, np.full((4, 5), 0.5), np.arange(4.0), ["r0", "r1", "r2", "r3"], "loss", "min")


SPACE = {
    "x": {"type": "float", "low": 0.0, "high": 1.0, "log": False},
    "u": {"type": "float", "low": 0.0, "high": 1.0, "log": False},
    "lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
    "kind": {"type": "categorical", "choices": ["a", "b", "c", "d"]},
    "q": {"type": "float", "low": 0.0, "high": 1.0, "log": False},
}


def test_prior_from_verdicts_keeps_the_space_and_weighs_each_verdict():
    verdicts = {
        "x": Verdict("x", "narrow", "x: …", low=0.2, high=0.4, weight=0.7),
        "u": Verdict("u", "fix", "u: …", value=0.3, weight=0.7),
        "lr": Verdict("lr", "widen", "lr: …", low=1e-4, high=10.0, side="high", weight=0.6),
        "kind": Verdict("kind", "narrow", "kind: …", choices=("b",), weight=0.7),
        "q": Verdict("q", "narrow", "q: untrusted", low=0.1, high=0.2, weight=0.0),
    }
    space, dropped, prior = prior_from_verdicts(verdicts, _data(), SPACE, strength=2.0)
    assert dropped == {}
    assert space["lr"] == {
        "type": "float",
        "low": 1e-4,
        "high": 10.0,
        "log": True,
    }  # widened: a prior cannot reach past
    assert {k: space[k] for k in ("x", "u", "kind", "q")} == {k: SPACE[k] for k in ("x", "u", "kind", "q")}
    assert prior == {
        "strength": 2.0,
        "parameters": {
            "x": {"low": 0.2, "high": 0.4, "weight": 0.7},
            "u": {"value": 0.3, "weight": 0.7},
            "kind": {"choices": ["b"], "weight": 0.7},
        },  # lr: widened, no pull (TPE reaches past the edge itself); q: weight 0 (not sure): no pull at all
    }
    raw = {**BASE, "space": space, "prior": prior}
    config = parse_config(raw, check_target=False)
    assert config.space["lr"].high == 10.0 and set(config.prior.parameters) == {"x", "u", "kind"}


def test_the_form_clips_the_prior_to_the_rows_and_writes_it_where_it_is_used():
    prior = {"parameters": {"x": {"low": 0.2, "high": 0.4, "weight": 0.7}, "kind": {"choices": ["b"], "weight": 0.7},
                            "lr": {"value": 0.01, "weight": 0.5}}}  # fmt: skip
    form = form_from_config(BASE)
    assert form["guidance"] == "prior" and form["prior"] is None
    rows = {r["name"]: r for r in form["rows"]}
    rows["x"]["low"] = 0.3  # edited: the region is clipped to [0.3, 0.4]
    rows["kind"]["choices"] = "a, c"  # b is gone: no pull left
    rows["lr"].update(action="fix", value=0.01)  # fixed: no prior
    clipped = prior_for_rows(prior, list(rows.values()))
    assert clipped == {"parameters": {"x": {"low": 0.3, "high": 0.4, "weight": 0.7}}}
    form["prior"] = prior
    raw, problems = config_from_form(BASE, form, "parent-id", 7)
    assert problems == [] and raw["prior"] == clipped
    assert parse_config(raw, check_target=False).prior.parameters["x"].low == 0.3
    assert "prior" not in config_from_form(BASE, {**form, "guidance": "bounds"}, "parent-id", 7)[0]
    grid = {**form, "algorithm": {"name": "grid", "settings": {}}}
    assert "prior" not in config_from_form(BASE, grid, "parent-id", 7)[0]  # grid draws from no prior
    assert prior_for_rows({"parameters": {"kind": {"choices": 3, "weight": 1}}}, list(rows.values())) == {
        "parameters": {}
    }


def test_prior_view_info_curves():
    form = form_from_config(BASE)
    prior = {"parameters": {"x": {"low": 0.4, "high": 0.6, "weight": 1.0}, "kind": {"choices": ["d"], "weight": 0.6}}}
    curves = {c.name: c for c in prior_view_info(form["rows"], prior, {"x": [0.1, 0.5, float("nan")], "kind": ["d"]})}
    assert list(curves) == ["x", "lr", "kind"]
    assert curves["x"].pull == pytest.approx(0.95 * (math.erf(1 / math.sqrt(2)) - 0.2), rel=1e-4)
    assert curves["x"].runs == [0.1, 0.5] and curves["x"].region == (0.4, 0.6)
    assert max(curves["x"].density) == pytest.approx(0.95 / (0.1 * SQRT_2PI) + 0.05, rel=1e-3)
    assert curves["lr"].region is None and curves["lr"].pull == 0 and set(curves["lr"].density) == {1.0}
    assert curves["lr"].log and curves["lr"].x[0] == pytest.approx(1e-4) and curves["lr"].x[-1] == pytest.approx(1.0)
    assert curves["kind"].density == pytest.approx([0.4, 0.4, 0.4, 2.8])  # p × 4: 0.1 and 0.7


def test_an_int_with_few_values_is_drawn_and_shown_value_by_value():
    layers = Int("layers", low=1, high=3)
    prior = ParameterPrior("layers", 0.5, low=1, high=1)  # the edge value: half a normal, all of it on 1
    assert level_probabilities(prior, layers) == pytest.approx([0.5 + 0.5 / 3, 0.5 / 3, 0.5 / 3], abs=1e-6)
    assert density_curve(prior, layers) == ([1, 2, 3], pytest.approx([2.0, 0.5, 0.5], abs=1e-5))
    rng = np.random.default_rng(2)
    drawn = [draw(prior, layers, rng) for _ in range(6000)]
    assert np.mean([v == 1 for v in drawn]) == pytest.approx(2 / 3, abs=0.02)  # what the view shows is what is drawn
    form = form_from_config({**BASE, "space": {**BASE["space"], "layers": {"type": "int", "low": 1, "high": 3}}})
    curves = {c.name: c for c in prior_view_info(form["rows"], {"parameters": {"layers": {"value": 1, "weight": 0.5}}})}
    assert curves["layers"].kind == "levels" and curves["x"].kind == "float"


def test_int_regions_stay_whole_and_conflicting_keys_are_refused():
    rows = [{"name": "n", "action": "search", "type": "int", "low": 1, "high": 100}]
    assert prior_for_rows({"parameters": {"n": {"low": 4.2, "high": 9.7, "weight": 0.5}}}, rows) == {
        "parameters": {"n": {"low": 5, "high": 9, "weight": 0.5}}
    }
    assert prior_for_rows({"parameters": {"n": {"low": 4.2, "high": 4.4, "weight": 0.5}}}, rows) == {
        "parameters": {"n": {"value": 4, "weight": 0.5}}
    }
    space = {**BASE["space"], "n": {"type": "int", "low": 1, "high": 100}}
    bad = {
        "n": {"value": 2.5, "weight": 0.5},
        "x": {"value": 0.2, "low": 0.1, "high": 0.3, "weight": 0.5},
        "lr": {"value": 0.1},
    }
    with pytest.raises(ConfigError) as err:
        parse_config({**BASE, "space": space, "prior": {"parameters": bad}}, check_target=False)
    problems = dict(err.value.problems)
    assert "whole number" in problems["prior.parameters.n.value"]
    assert "not both" in problems["prior.parameters.x"]
    assert problems["prior.parameters.lr.weight"].startswith("is required")
    verdicts = {"n": Verdict("n", "narrow", "n: …", low=3.4, high=17.2, weight=0.5)}
    data = AnalysisData([Axis("n", "int", 1, 100)], np.full((4, 1), 0.5), np.arange(4.0), list("abcd"), "loss", "min")
    _, _, prior = prior_from_verdicts(verdicts, data, {"n": {"type": "int", "low": 1, "high": 100, "log": False}})
    assert prior["parameters"]["n"] == {"low": 3, "high": 18, "weight": 0.5}  # outwards, whole numbers
