import math

import numpy as np
import pytest

from trellis.search.space import Categorical, Fixed, Float, Int, SearchSpace, SpaceError


def space() -> SearchSpace:
    return SearchSpace(
        [
            Float("momentum", when={"optimizer": ("sgd",)}, low=0.0, high=0.99),
            Categorical("optimizer", choices=("adam", "sgd")),
            Float("lr", low=1e-4, high=1e-1, log=True),
            Int("hidden", low=8, high=256, log=True),
            Fixed("batch_size", value=64),
        ]
    )


def test_parents_are_ordered_before_children():
    names = space().names
    assert names.index("optimizer") < names.index("momentum")


def test_samples_respect_types_bounds_and_conditions():
    s, rng = space(), np.random.default_rng(0)
    seen_momentum = {True: 0, False: 0}
    for _ in range(500):
        c = s.sample(rng)
        s.validate(c)
        assert isinstance(c["hidden"], int) and 8 <= c["hidden"] <= 256
        assert 1e-4 <= c["lr"] <= 1e-1
        assert ("momentum" in c) == (c["optimizer"] == "sgd")
        seen_momentum["momentum" in c] += 1
        assert c["batch_size"] == 64
    assert seen_momentum[True] > 100 and seen_momentum[False] > 100


def test_log_float_is_uniform_in_log_space():
    p, rng = Float("lr", low=1e-4, high=1e-0, log=True), np.random.default_rng(1)
    logs = np.log10([p.sample(rng) for _ in range(4000)])
    # Four decades, each should get about a quarter of the samples.
    counts = np.histogram(logs, bins=[-4, -3, -2, -1, 0])[0] / len(logs)
    assert np.all(np.abs(counts - 0.25) < 0.03)


def test_log_int_reaches_both_ends():
    p, rng = Int("h", low=1, high=64, log=True), np.random.default_rng(2)
    values = {p.sample(rng) for _ in range(3000)}
    assert 1 in values and 64 in values and min(values) >= 1 and max(values) <= 64


def test_grid_expands_conditionals_only_when_active():
    s = SearchSpace([Categorical("opt", choices=("adam", "sgd")), Float("m", when={"opt": ("sgd",)}, low=0, high=1)])
    grid = s.grid(points=3)
    assert len(grid) == 1 + 3
    assert {"opt": "adam"} in grid and {"opt": "sgd", "m": 0.5} in grid
    for c in grid:
        s.validate(c)


def test_log_grid_is_geometric():
    values = Float("lr", low=1e-4, high=1e-2, log=True).grid(3)
    assert values[1] == pytest.approx(1e-3)
    assert math.isclose(values[0], 1e-4) and math.isclose(values[2], 1e-2)


@pytest.mark.parametrize(
    "config, message",
    [
        ({"optimizer": "adam", "lr": 0.01, "hidden": 8, "batch_size": 64, "momentum": 0.5}, "condition"),
        ({"optimizer": "sgd", "lr": 0.01, "hidden": 8, "batch_size": 64}, "missing"),
        ({"optimizer": "adam", "lr": 5.0, "hidden": 8, "batch_size": 64}, "outside"),
        ({"optimizer": "adam", "lr": 0.01, "hidden": 8.5, "batch_size": 64}, "outside"),
        ({"optimizer": "adam", "lr": 0.01, "hidden": 8, "batch_size": 64, "extra": 1}, "not a parameter"),
    ],
)
def test_validate_refuses_bad_configs(config, message):
    with pytest.raises(SpaceError, match=message):
        space().validate(config)


def test_condition_cycles_and_unknown_parents_are_refused():
    with pytest.raises(SpaceError, match="cycle"):
        SearchSpace([Int("a", when={"b": (1,)}, low=0, high=1), Int("b", when={"a": (1,)}, low=0, high=1)])
    with pytest.raises(SpaceError, match="not in the space"):
        SearchSpace([Float("a", when={"zzz": ("x",)}, low=0, high=1)])
    with pytest.raises(SpaceError, match="not a possible value"):
        SearchSpace([Categorical("o", choices=("a",)), Float("m", when={"o": ("b",)}, low=0, high=1)])
