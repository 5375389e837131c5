"""Architecture values (pure, no training): validity, the text round trip, the Markov chain sampler as a kind of
the search space, ablations, variations and the structural distance."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from trellis.search.architectures.chain import TRANSITIONS, sample_architecture
from trellis.search.architectures.distance import distance_matrix, structural_distance
from trellis.search.architectures.generators import CHANGES, ablations, variations
from trellis.search.architectures.layers import (
    MAX_CHANNELS,
    MAX_LAYERS,
    Activation,
    Architecture,
    ArchitectureError,
    BatchNorm,
    Conv,
    Dense,
    Dropout,
    Pool,
    count_parameters,
    parse_architecture,
    problem,
)
from trellis.search.architectures.param import ArchitectureParam
from trellis.search.architectures.projection import classical_mds, prediction_distance
from trellis.search.architectures.torch_model import build_model, torch_parameter_count
from trellis.search.config import ConfigError
from trellis.search.engine.resume import typed_params
from trellis.search.schedulers.pbt import explore
from trellis.tracking.limits import param_problem

DIGITS = ArchitectureParam("architecture", input="digits", max_layers=8, max_params=200_000)
TABLE = ArchitectureParam("architecture", input="breast_cancer", max_layers=6)
BASELINE = Architecture(
    (Conv(8, 3), Activation("relu"), Pool(2), Conv(16, 3), BatchNorm(), Activation("relu"), Dense(64), Dropout(0.2))
)


def _samples(param: ArchitectureParam, n: int, seed: int = 0) -> list[Architecture]:
    rng = np.random.default_rng(seed)
    return [parse_architecture(param.sample(rng)) for _ in range(n)]


@pytest.mark.parametrize("param", [DIGITS, TABLE], ids=["digits", "breast_cancer"])
def test_text_round_trip_builds_the_same_model(param):
    for arch in _samples(param, 40):
        text = arch.to_text()
        again = parse_architecture(text)
        assert again == arch and again.to_text() == text
        model = build_model(again, param.input_shape, param.n_classes)
        assert torch_parameter_count(model) == count_parameters(arch, param.input_shape, param.n_classes)
        model.eval()
        assert model(torch.zeros(3, *param.input_shape)).shape == (3, param.n_classes)
        assert param_problem("architecture", text) is None


def test_the_longest_architecture_fits_an_mlflow_param():
    widest = Architecture(tuple(Conv(MAX_CHANNELS, 7) for _ in range(MAX_LAYERS)))
    assert param_problem("architecture", widest.to_text()) is None
    assert param_problem("architecture", Architecture((Dropout(0.123456789012345),) * MAX_LAYERS).to_text()) is None


def test_parameter_count_matches_a_hand_count():
    arch = Architecture((Conv(4, 3), Pool(2), BatchNorm(), Dense(10)))
    # conv 1*4*9+4, bn 2*4, dense (4*4*4)*10+10, head 10*10+10
    assert count_parameters(arch, (1, 8, 8), 10) == 40 + 8 + 650 + 110


@pytest.mark.parametrize(
    ("layers", "shape", "reason"),
    [
        ((Dense(16), Conv(4, 3)), (1, 8, 8), "needs an image"),
        ((Dense(16), Pool(2)), (1, 8, 8), "needs an image"),
        ((Conv(4, 3),), (30,), "needs an image"),
        ((Pool(2), Pool(2), Pool(2), Pool(2)), (1, 8, 8), "smaller than the pool"),
        ((Dense(16),) * 9, (1, 8, 8), "at most 8"),
        ((Dense(8192),), (1, 8, 8), "parameters (at most 200000)"),
    ],
)
def test_invalid_architectures_say_why(layers, shape, reason):
    found = problem(Architecture(layers), shape, 10, max_layers=8, max_params=200_000)
    assert found is not None and reason in found


@pytest.mark.parametrize(
    "text",
    ['[["conv",8,4]]', '[["lstm",8]]', '[["dense",0]]', '[["dropout",1.0]]', '{"a":1}', "dense", '[["pool",true]]'],
)
def test_bad_texts_are_refused(text):
    with pytest.raises(ArchitectureError):
        parse_architecture(text)


def test_the_chain_samples_valid_varied_seeded_architectures():
    first, again = _samples(DIGITS, 60, seed=3), _samples(DIGITS, 60, seed=3)
    assert first == again  # the search's generator decides every draw
    assert len(set(first)) > 40
    assert all(DIGITS.contains(a.to_text()) for a in first)
    assert any(any(isinstance(layer, Conv) for layer in a.layers) for a in first)
    assert all(not isinstance(layer, Conv | Pool) for a in _samples(TABLE, 60) for layer in a.layers)
    assert all(0 < len(a) <= 8 for a in first)
    assert set(TRANSITIONS) == {"start", "conv", "pool", "bn", "act", "dropout", "dense"}


def test_the_chain_keeps_the_parameter_bound():
    rng = np.random.default_rng(0)
    for _ in range(30):
        arch = sample_architecture((1, 8, 8), 10, rng, max_layers=8, max_params=5_000)
        assert count_parameters(arch, (1, 8, 8), 10) <= 5_000


def test_architecture_is_a_kind_of_the_search_space(make_config):
    config = make_config(
        space={"architecture": {"type": "architecture", "input": "digits", "max_layers": 5}, "lr": 0.01}
    )
    param = config.space["architecture"]
    assert isinstance(param, ArchitectureParam) and param.max_layers == 5
    assert param.to_dict() == {"type": "architecture", "input": "digits", "max_layers": 5, "max_params": 1_000_000}
    sample = config.space.sample(np.random.default_rng(0))
    config.space.validate(sample)
    assert len(parse_architecture(sample["architecture"])) <= 5
    with pytest.raises(Exception, match="outside the space"):
        config.space.validate({**sample, "architecture": '[["dense",16],["conv",4,3]]'})
    assert len(param.grid(4)) == 4 and param.grid(4) == param.grid(4)


@pytest.mark.parametrize(
    ("spec", "where"),
    [
        ({"input": "mnist"}, "space.architecture.input"),
        ({"input": [1, 8]}, "space.architecture.input"),
        ({"input": [30]}, "space.architecture.input"),  # a shape needs classes
        ({"max_layers": 0}, "space.architecture.max_layers"),
        ({"max_layers": 99}, "space.architecture.max_layers"),
        ({"depth": 3}, "space.architecture.depth"),
        ({"max_params": 10}, "space.architecture.max_params"),
    ],
)
def test_bad_architecture_specs_name_their_key(make_config, spec, where):
    with pytest.raises(ConfigError) as caught:
        make_config(space={"architecture": {"type": "architecture", **spec}})
    assert where in str(caught.value)


def test_a_shape_with_classes_is_an_input(make_config):
    config = make_config(space={"a": {"type": "architecture", "input": [13], "classes": 3}})
    assert config.space["a"].input_shape == (13,) and config.space["a"].n_classes == 3


def test_samplers_without_a_model_for_it_draw_it_from_its_prior(make_config):
    from trellis.search.samplers.tpe import TPESampler

    config = make_config(space={"architecture": {"type": "architecture"}, "lr": {"low": 0.001, "high": 0.1}})
    proposals = [TPESampler(config.space, config.objective, seed=1).propose(0) for _ in range(2)]
    assert proposals[0] == proposals[1]  # seeded
    config.space.validate(proposals[0])


def test_pbt_keeps_a_members_architecture_and_resume_reads_it_back(make_config):
    config = make_config(space={"architecture": {"type": "architecture"}, "lr": {"low": 0.001, "high": 0.1}})
    params = config.space.sample(np.random.default_rng(0))
    for seed in range(10):
        moved = explore(config.space, params, np.random.default_rng(seed), resample_probability=1.0)
        assert moved["architecture"] == params["architecture"]
    assert typed_params(config.space, {k: str(v) for k, v in params.items()}) == params


def test_ablations_remove_each_layer_once():
    children = ablations(BASELINE, DIGITS)
    assert len(children) == len(BASELINE)
    assert [change.index for _, change in children] == list(range(len(BASELINE)))
    assert children[6][1].description == "removed dense(64) at 6"
    assert len({child for child, _ in children}) == len(children)
    for child, change in children:
        assert DIGITS.contains(child.to_text()) and len(child) == len(BASELINE) - 1
        assert child.layers == BASELINE.layers[: change.index] + BASELINE.layers[change.index + 1 :]


def test_ablations_skip_duplicate_and_invalid_children():
    arch = Architecture((Dense(16), Dense(16), Activation("relu")))
    assert [c.description for _, c in ablations(arch, DIGITS)] == ["removed dense(16) at 0", "removed relu at 2"]
    # without the pool the dense layer sees 8*8*64 features: over this bound, so that child is left out
    tight = ArchitectureParam("a", input="digits", max_params=70_000)
    arch = Architecture((Conv(64, 1), Pool(2), Dense(64)))
    assert [c.index for _, c in ablations(arch, tight)] == [0, 2]


def test_variations_are_valid_distinct_single_changes():
    rng = np.random.default_rng(5)
    roomy = ArchitectureParam("architecture", input="digits", max_layers=12, max_params=200_000)
    children = variations(BASELINE, 12, roomy, rng)
    assert len(children) == 12
    assert len({child for child, _ in children} | {BASELINE}) == 13
    kinds = {change.kind for _, change in children}
    assert kinds <= set(CHANGES) and len(kinds) >= 3
    assert all(c.kind != "add" for _, c in variations(BASELINE, 12, DIGITS, rng))  # already at its 8 layers
    for child, change in children:
        assert roomy.contains(child.to_text())
        assert abs(len(child) - len(BASELINE)) == {"add": 1, "remove": 1}.get(change.kind, 0)
        assert 0 < structural_distance(BASELINE, child) <= 1.0  # one edit
        if change.kind == "reparameterize":
            assert child.layers[change.index].kind == BASELINE.layers[change.index].kind
        assert change.description.startswith({"add": "added", "remove": "removed"}.get(change.kind, change.kind[:5]))


def test_variations_follow_the_allowed_changes_per_layer():
    rng = np.random.default_rng(0)
    children = variations(BASELINE, 6, DIGITS, rng, allowed={0: {"reparameterize"}})
    assert len(children) == 6
    for child, change in children:
        assert (change.kind, change.index) == ("reparameterize", 0)
        assert isinstance(child.layers[0], Conv) and child.layers[1:] == BASELINE.layers[1:]
    only_removals = variations(BASELINE, 50, DIGITS, rng, allowed={"remove"})
    assert sorted(c.index for _, c in only_removals) == list(range(len(BASELINE)))  # the neighbourhood is 8


def test_structural_distance_is_zero_symmetric_and_grows_with_the_edit():
    archs = _samples(DIGITS, 15, seed=9)
    for a in archs:
        assert structural_distance(a, a) == 0.0
        assert structural_distance(a, parse_architecture(a.to_text())) == 0.0
        for b in archs:
            assert structural_distance(a, b) == pytest.approx(structural_distance(b, a))
    one = BASELINE.replace(6, None)
    two = one.replace(0, None)
    assert 0 < structural_distance(BASELINE, one) < structural_distance(BASELINE, two)
    wider = BASELINE.replace(6, Dense(128))
    much_wider = BASELINE.replace(6, Dense(1024))
    assert 0 < structural_distance(BASELINE, wider) < structural_distance(BASELINE, much_wider)
    assert structural_distance(BASELINE, much_wider) < structural_distance(BASELINE, one)


def test_listed_children_are_the_only_values_and_grid_runs_each_once(make_config):
    from trellis.search.samplers.grid import GridSampler

    children = [child for child, _ in ablations(BASELINE, DIGITS)]
    listed = [json.loads(children[0].to_text()), *(c.to_text() for c in children[1:])]  # lists or texts
    config = make_config(
        space={"architecture": {"type": "architecture", "input": "digits", "choices": listed}},
        algorithm={"name": "grid"},
    )
    sampler = GridSampler(config.space, config.objective)
    proposed = [sampler.propose(i) for i in range(len(children) + 1)]
    assert proposed[-1] is None
    assert [parse_architecture(p["architecture"]) for p in proposed[:-1]] == children
    assert not config.space["architecture"].contains(BASELINE.to_text())  # valid, but not listed
    assert config.space["architecture"].to_dict()["choices"] == [c.to_text() for c in children]


@pytest.mark.parametrize(
    ("choices", "where", "reason"),
    [
        ([], "choices", "non-empty"),
        (['[["dense",16],["conv",4,3]]'], "choices[0]", "needs an image"),
        (['[["dense",16]]', [["dense", 16]]], "choices[1]", "repeats choice 0"),
        (["not json"], "choices[0]", "not JSON"),
    ],
)
def test_bad_choices_name_their_index(make_config, choices, where, reason):
    with pytest.raises(ConfigError) as caught:
        make_config(space={"architecture": {"type": "architecture", "choices": choices}})
    assert f"space.architecture.{where}" in str(caught.value) and reason in str(caught.value)


def test_projection_places_a_child_near_its_parent_without_moving_the_others():
    archs = list(dict.fromkeys(_samples(DIGITS, 30, seed=11)))
    projection = classical_mds(distance_matrix(archs))
    assert projection.coords.shape == (len(archs), 2)
    again = projection.place(distance_matrix(archs))  # an embedded model placed anew lands on itself
    assert np.allclose(again, projection.coords, atol=1e-6)
    parent = archs[0]
    child = variations(parent, 1, DIGITS, np.random.default_rng(2), allowed={"reparameterize"})[0][0]
    (spot,) = projection.place(np.array([structural_distance(child, a) for a in archs]))
    gaps = np.linalg.norm(projection.coords - spot, axis=1)
    assert gaps[0] < np.median(gaps[1:])  # nearer its parent than to most models


def test_prediction_distance_counts_disagreements():
    assert prediction_distance(np.array([1, 2, 3, 4]), np.array([1, 2, 0, 0])) == 0.5
    assert prediction_distance(np.array([1, 2]), np.array([1, 2])) == 0.0
    with pytest.raises(ValueError):
        prediction_distance(np.array([1, 2]), np.array([1, 2, 3]))
