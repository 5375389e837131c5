"""Samplers under a relaunch's prior (``trellis.search.prior``): TPE weighs it in its acquisition (Optuna's hook
still called), a prior that says nothing changes nothing, a wrong prior does not wall the optimum off, random and
Hyperband draw from it, and a prior-guided relaunch runs end to end through the engine and the store."""

from __future__ import annotations

import numpy as np
import pytest

from trellis.search.config import Objective
from trellis.search.engine.runner import run_search
from trellis.search.prior import ParameterPrior, Prior, default_strength, unit_density
from trellis.search.samplers.random import RandomSampler
from trellis.search.samplers.tpe import TPESampler
from trellis.search.space import Float, SearchSpace

SPACE = SearchSpace([Float("x", low=0.0, high=1.0), Float("y", low=0.0, high=1.0)])
OPTIMUM = {"x": 0.85, "y": 0.8}


def bowl(c):
    return (c["x"] - OPTIMUM["x"]) ** 2 + (c["y"] - OPTIMUM["y"]) ** 2


def search(prior, seed, trials=40, past=0):
    """Trials of TPE on the bowl (``past``: uniform trials told first, as a relaunch's warm start)."""
    sampler = TPESampler(SPACE, Objective("loss", "min"), seed=seed, prior=prior)
    rng = np.random.default_rng(seed + 100)
    for i in range(past):
        c = {"x": float(rng.uniform()), "y": float(rng.uniform())}
        sampler.observe(-1 - i, c, bowl(c), "completed")
    proposals = []
    for i in range(trials):
        c = sampler.propose(i)
        sampler.count_end(i, "completed")
        sampler.observe(i, c, bowl(c), "completed")
        proposals.append(c)
    return proposals


def test_a_prior_that_says_nothing_is_plain_tpe():
    silent = Prior({"x": ParameterPrior("x", 0.0, low=0.1, high=0.2)}, strength=5.0)
    for seed in (0, 1):
        assert search(silent, seed, trials=15, past=12) == search(None, seed, trials=15, past=12)


def test_tpe_weighs_the_prior_in_its_acquisition():
    """Past trials point at x = 0.85; a strong prior at x in [0.05, 0.1] moves TPE's first model-based proposals
    there (through Optuna's ``_compute_acquisition_func``: renamed, this fails)."""
    strong = Prior({"x": ParameterPrior("x", 1.0, low=0.05, high=0.1)}, strength=100.0)
    with_prior = [search(strong, seed, trials=1, past=15)[0]["x"] for seed in range(6)]
    without = [search(None, seed, trials=1, past=15)[0]["x"] for seed in range(6)]
    assert np.median(with_prior) < np.median(without) - 0.2, (with_prior, without)


def test_a_wrong_prior_still_finds_the_optimum_outside_its_mass():
    wrong = Prior(
        {"x": ParameterPrior("x", 0.9, low=0.05, high=0.15), "y": ParameterPrior("y", 0.9, low=0.05, high=0.15)},
        strength=default_strength(40),
    )
    # The optimum lies where the prior has only its uniform share left: density ~0.1 of 1 on each axis.
    for name in ("x", "y"):
        assert unit_density(wrong.parameters[name], SPACE[name], [OPTIMUM[name]])[0] == pytest.approx(0.1, abs=1e-6)
    for seed in range(5):
        best = min(search(wrong, seed), key=bowl)
        assert bowl(best) < 0.06**2, (seed, best)  # within 0.06 of the optimum, after 40 trials


def test_tpe_start_up_draws_come_from_the_prior():
    prior = Prior({"x": ParameterPrior("x", 1.0, low=0.6, high=0.7)}, strength=10.0)
    first = search(prior, seed=3, trials=10)  # no past: TPE's ten start-up trials, drawn from the prior
    assert np.mean([0.55 <= c["x"] <= 0.75 for c in first]) >= 0.7
    plain = search(None, seed=3, trials=10)
    assert np.mean([0.55 <= c["x"] <= 0.75 for c in plain]) < 0.7


def test_random_draws_from_the_prior_and_decays():
    prior = Prior({"x": ParameterPrior("x", 1.0, low=0.6, high=0.7)}, strength=4.0)
    sampler = RandomSampler(SPACE, Objective("loss", "min"), seed=0)
    sampler.prior = prior
    early = [sampler.propose(i)["x"] for i in range(400)]  # nothing ended yet: the full prior
    for i in range(39):
        sampler.count_end(i, "completed")  # exponent 4 / 40 = 0.1: mostly uniform
    late = [sampler.propose(400 + i)["x"] for i in range(2000)]
    inside = lambda xs: np.mean([0.6 <= x <= 0.7 for x in xs])  # noqa: E731
    assert inside(early) == pytest.approx(0.95 * 0.6827 + 0.05 * 0.1, abs=0.07)
    assert inside(late) == pytest.approx(0.095 * 0.6827 + 0.905 * 0.1, abs=0.025)


@pytest.mark.parametrize("algorithm", ["tpe", "hyperband", "bohb"])
def test_a_prior_guided_relaunch_runs_through_the_engine(make_config, algorithm):
    parent = run_search(make_config(algorithm__name="tpe", termination__max_trials=6))
    prior = {"strength": 5.0, "parameters": {"x": {"low": 0.2, "high": 0.4, "weight": 1.0},
                                              "shape": {"choices": ["bowl"], "weight": 1.0}}}  # fmt: skip
    changes = {"algorithm__name": algorithm, "relaunched_from": parent.search_id, "prior": prior}
    if algorithm == "tpe":
        changes.update(warm_start=True, termination__max_trials=8, algorithm__n_startup_trials=4)
    else:
        changes.update(termination__max_trials=None, budget__max=9, budget__min=1)
    config = make_config(**changes)
    assert config.to_dict()["prior"] == prior
    child = run_search(config)
    assert child.trials and all(t.value is not None for t in child.trials)
    assert np.mean([t.params["shape"] == "bowl" for t in child.trials]) > 1 / 3 + 0.15  # pulled, not walled
