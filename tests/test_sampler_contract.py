"""The sampler contract (``trellis.testing.SamplerContract``) for every distinct sampler in the registry, and
what only some samplers promise (a grid's size, a model's focus, resume's sequence)."""

import pytest

from trellis.search.registry import ALGORITHMS as ROWS
from trellis.testing import SamplerContract
from trellis.testing.samplers import contract_loss, drive_sampler

# One algorithm per distinct sampler in the registry: every sampler gets the whole suite.
ALGORITHMS = sorted({spec.sampler: name for name, spec in reversed(ROWS.items())}.values())
SETTINGS = {"grid": {"points": 3}, "tpe": {"n_startup_trials": 5}}


def _suite(name: str) -> type:
    attrs = {"algorithm": name, "settings": SETTINGS.get(name, {}), "seeded": name != "grid"}
    return type(f"TestSampler_{name}", (SamplerContract,), attrs)


for _name in ALGORITHMS:
    globals()[f"TestSampler_{_name}"] = _suite(_name)


def make(name: str, seed: int = 7):
    return _suite(name)().make(seed)


def test_grid_is_exhaustive_then_stops():
    sampler = make("grid")
    proposals = drive_sampler(sampler, 10_000)
    # lr 3 x units 3 x x 3 x (adam + sgd x momentum 3) = 27 * 4
    assert len(proposals) == sampler.size() == 27 * 4
    assert sampler.propose(len(proposals)) is None


@pytest.mark.parametrize("name", ["tpe", "bohb"])
def test_model_based_samplers_concentrate_near_the_optimum(name):
    """A known optimum (x = 0.3, lr = 1e-2): the model's later proposals sit closer than random ones."""
    model, rnd = drive_sampler(make(name, seed=3), 80), drive_sampler(make("random", seed=3), 80)
    late_model = sorted(contract_loss(c) for c in model[40:])
    late_rnd = sorted(contract_loss(c) for c in rnd[40:])
    assert late_model[len(late_model) // 2] < 0.5 * late_rnd[len(late_rnd) // 2]


@pytest.mark.parametrize("name", ["random", "grid"])
def test_skip_continues_the_sequence_a_resumed_search_would_have_seen(name):
    whole = drive_sampler(make(name, seed=5), 12)
    resumed = make(name, seed=5)
    resumed.skip(7)
    assert [resumed.propose(i) for i in range(7, 12)] == whole[7:]


def test_every_registered_sampler_has_the_suite():
    suites = {v.algorithm for v in globals().values() if isinstance(v, type) and issubclass(v, SamplerContract)}
    assert {ROWS[name].sampler for name in suites - {""}} == {spec.sampler for spec in ROWS.values()}
