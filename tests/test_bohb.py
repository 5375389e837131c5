"""BOHB: the space survives the trip through ConfigSpace; a search runs Hyperband's schedule with the model."""

import pytest

from tests.conftest import child_runs
from trellis.search.engine.runner import run_search
from trellis.search.samplers.bohb import from_configspace, to_configspace
from trellis.search.space import Categorical, Fixed, Float, Int, SearchSpace
from trellis.tracking import schema


def space() -> SearchSpace:
    return SearchSpace(
        [
            Float("lr", low=1e-4, high=1e-1, log=True),
            Int("layers", low=1, high=4),
            Categorical("optimizer", choices=("adam", "sgd")),
            Float("momentum", when={"optimizer": ("sgd",)}, low=0.0, high=0.99),
            Categorical("flag", choices=(True, False, 3)),
            Fixed("batch", value=32),
        ]
    )


def test_configspace_round_trip_keeps_types_conditions_and_fixed_values():
    s = space()
    cs = to_configspace(s, seed=0)
    assert sorted(cs.keys()) == ["flag", "layers", "lr", "momentum", "optimizer"]
    seen_sgd = seen_adam = False
    for sample in cs.sample_configuration(200):
        config = from_configspace(s, dict(sample))
        s.validate(config)  # active parameters exactly, typed, in range
        assert config["batch"] == 32 and config["flag"] in (True, False, 3)
        seen_sgd |= config["optimizer"] == "sgd"
        seen_adam |= config["optimizer"] == "adam"
    assert seen_sgd and seen_adam


def test_bohb_search_runs_hyperbands_brackets_with_model_proposals(make_config, client):
    config = make_config(
        algorithm={"name": "bohb", "eta": 3, "seed": 2},
        budget={"min": 1, "max": 9},
        space={"x": {"low": -1.0, "high": 1.0}},
        termination={},
        trial={"function": "trellis.examples.synthetic:resumable"},
    )
    result = run_search(config)
    assert result.state == "completed" and result.stop_reason == "exhausted"
    runs = child_runs(client, result.search_id)
    assert len(runs) == 9 + 5 + 3 and all(r.info.status == "FINISHED" for r in runs)  # a bad resume fails
    assert {r.data.tags[schema.BRACKET] for r in runs} == {"0", "1", "2"}
    assert all(r.data.tags[schema.ALGORITHM] == "bohb" for r in runs)
    model_based = [r for r in runs if r.data.tags.get(schema.MODEL_BASED) == "true"]
    assert model_based, "after the first bracket BOHB's model proposes configurations"
    first_model = min(int(r.data.tags[schema.TRIAL_NUMBER]) for r in model_based)
    assert first_model >= 2  # the model needs min_points_in_model (parameters + 1) results first
    # The model learned where the optimum (x = 0.3) is: its picks beat the first bracket's prior samples.
    dist = [abs(float(r.data.params["x"]) - 0.3) for r in model_based]
    prior = [abs(float(r.data.params["x"]) - 0.3) for r in runs[:9]]
    assert sum(dist) / len(dist) < sum(prior) / len(prior)
    pruned = [r for r in runs if r.data.tags[schema.END_REASON] == "pruned"]
    assert pruned and all(schema.STOPPED_AT_RUNG in r.data.tags for r in pruned)


def test_bohb_settings_are_validated(make_config):
    from trellis.search.config import ConfigError

    with pytest.raises(ConfigError, match="algorithm.random_fraction"):
        make_config(algorithm={"name": "bohb", "random_fraction": 1.5}, termination={})
    with pytest.raises(ConfigError, match="algorithm.bandwidth"):
        make_config(algorithm={"name": "bohb", "bandwidth": 2}, termination={})
