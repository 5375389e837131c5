"""The same checks for every sampler: bounds and types, conditions, determinism, failure tolerance."""

import math

import pytest

from trellis.search.config import Objective
from trellis.search.registry import ALGORITHMS as ROWS
from trellis.search.registry import resolve
from trellis.search.samplers.base import Sampler
from trellis.search.space import Categorical, Fixed, Float, Int, SearchSpace

# One algorithm per distinct sampler in the registry: every sampler gets the whole suite.
ALGORITHMS = sorted({spec.sampler: name for name, spec in reversed(ROWS.items())}.values())
SETTINGS = {"grid": {"points": 3}, "tpe": {"n_startup_trials": 5}}


def space() -> SearchSpace:
    return SearchSpace(
        [
            Float("lr", low=1e-4, high=1e-1, log=True),
            Int("units", low=2, high=64, log=True),
            Float("x", low=-1.0, high=1.0),
            Categorical("optimizer", choices=("adam", "sgd")),
            Float("momentum", when={"optimizer": ("sgd",)}, low=0.0, high=0.99),
            Fixed("batch_size", value=32),
        ]
    )


def make(name: str, seed: int = 7) -> Sampler:
    return resolve(ROWS[name].sampler)(space(), Objective("loss", "min"), seed, **SETTINGS.get(name, {}))


def loss(c) -> float:
    return (c["x"] - 0.3) ** 2 + abs(math.log10(c["lr"]) + 2) * 0.1


def drive(sampler: Sampler, n: int, fail_every: int = 0) -> list[dict]:
    proposals = []
    for i in range(n):
        c = sampler.propose(i, budget=1)
        if c is None:
            break
        proposals.append(c)
        failed = fail_every and i % fail_every == 0
        sampler.observe(i, c, None if failed else loss(c), "failed" if failed else "completed", budget=1)
    return proposals


@pytest.mark.parametrize("name", ALGORITHMS)
def test_values_in_bounds_with_right_types_and_conditions(name):
    s = space()
    for c in drive(make(name), 40):
        s.validate(c)  # active parameters exactly, each within its range
        assert type(c["units"]) is int and type(c["lr"]) is float and c["batch_size"] == 32
        assert ("momentum" in c) == (c["optimizer"] == "sgd")


@pytest.mark.parametrize("name", ALGORITHMS)
def test_same_seed_same_proposals(name):
    assert drive(make(name, seed=11), 25) == drive(make(name, seed=11), 25)


@pytest.mark.parametrize("name", [n for n in ALGORITHMS if n != "grid"])
def test_different_seeds_differ(name):
    assert drive(make(name, seed=1), 10) != drive(make(name, seed=2), 10)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_failed_trials_are_tolerated(name):
    proposals = drive(make(name), 30, fail_every=3)
    assert len(proposals) == 30
    assert len({tuple(sorted(c.items())) for c in proposals}) > 20  # keeps exploring


@pytest.mark.parametrize("name", ALGORITHMS)
def test_unobserved_pending_trials_do_not_block(name):
    """Parallel workers ask again before earlier trials report back."""
    sampler = make(name)
    pending = [sampler.propose(i) for i in range(6)]
    assert all(p is not None for p in pending)
    for i, c in enumerate(pending):
        sampler.observe(i, c, loss(c), "completed", budget=1)


def test_grid_is_exhaustive_then_stops():
    sampler = make("grid")
    proposals = drive(sampler, 10_000)
    # lr 3 x units 3 x x 3 x (adam + sgd x momentum 3) = 27 * 4
    assert len(proposals) == sampler.size() == 27 * 4
    assert sampler.propose(len(proposals)) is None


@pytest.mark.parametrize("name", ["tpe", "bohb"])
def test_model_based_samplers_concentrate_near_the_optimum(name):
    """A known optimum (x = 0.3, lr = 1e-2): the model's later proposals sit closer than random ones."""
    model, rnd = drive(make(name, seed=3), 80), drive(make("random", seed=3), 80)
    late_model = sorted(loss(c) for c in model[40:])
    late_rnd = sorted(loss(c) for c in rnd[40:])
    assert late_model[len(late_model) // 2] < 0.5 * late_rnd[len(late_rnd) // 2]


@pytest.mark.parametrize("name", ["random", "grid"])
def test_skip_continues_the_sequence_a_resumed_search_would_have_seen(name):
    whole = drive(make(name, seed=5), 12)
    resumed = make(name, seed=5)
    resumed.skip(7)
    assert [resumed.propose(i) for i in range(7, 12)] == whole[7:]
