"""The relaunch form's logic without Dash, warm start and the no-repeat rule through the real engine, edits,
and the statuses the control page shows."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from tests.conftest import child_runs
from trellis.search.config import ConfigError
from trellis.search.control.policy import ServerPolicy, trial_target
from trellis.search.control.relaunch import (
    config_diff,
    config_from_form,
    fill_from_runs,
    fill_from_space,
    form_from_config,
    validate_launch,
)
from trellis.search.engine.runner import run_search
from trellis.search.engine.steering import parse_edit
from trellis.search.engine.warm_start import config_key, inside
from trellis.tracking import schema
from trellis.tracking.claims import HEARTBEAT_STALE_S, search_status

PARENT_ID = "a" * 32
BEST = {"x": 0.25, "y": -0.4, "shape": "bowl"}


@pytest.fixture
def parent(make_config):
    return make_config(algorithm={"name": "tpe", "seed": 1, "n_startup_trials": 4})


def _launch(parent, form, policy=None):
    raw, form_problems = config_from_form(parent.to_dict(), form, PARENT_ID, new_seed=99)
    return validate_launch(raw, form_problems, policy or ServerPolicy(), trial_target(parent.trial))


def test_the_prefilled_form_relaunches_the_parent_with_a_new_seed_and_warm_start(parent):
    form = form_from_config(parent.to_dict(), BEST)
    assert [r["action"] for r in form["rows"]] == ["search", "search", "search"]
    assert form["warm_start"] is True and form["name"] == "t-refined"
    config, problems = _launch(parent, form)
    assert problems == []
    diff = {path: (old, new) for path, old, new in config_diff(parent.to_dict(), config.to_dict())}
    assert diff["algorithm.seed"] == (1, 99)
    assert diff["relaunched_from"] == (None, PARENT_ID) and diff["warm_start"] == (None, True)
    assert not any(path.startswith("space.") for path in diff)  # the space is the parent's


def test_refinements_fill_ranges_fix_and_drop_as_the_verdicts_say_and_keep_what_they_do_not_touch(parent):
    form = form_from_config(parent.to_dict(), BEST)
    verdict_space = {
        "x": {"type": "float", "low": 0.1, "high": 0.5, "log": False},
        "shape": {"type": "fixed", "value": "bowl"},
    }
    form = fill_from_space(form, verdict_space)
    form = fill_from_runs(form, [{"y": -0.6, "shape": "ridge"}, {"y": -0.2, "shape": "bowl"}])
    config, problems = _launch(parent, form)
    assert problems == []
    space = config.to_dict()["space"]
    assert (space["x"]["low"], space["x"]["high"]) == (0.1, 0.5)
    assert (space["y"]["low"], space["y"]["high"]) == (-0.6, -0.2)
    assert space["shape"] == {"type": "fixed", "value": "bowl"}  # the verdict fixed it at the best run's value
    dropped = fill_from_space(form_from_config(parent.to_dict(), BEST), {}, {"y": "its condition no longer holds"})
    assert [r["action"] for r in dropped["rows"]] == ["search", "drop", "search"]


def test_adding_a_constant_and_dropping_a_parameter(make_config):
    parent = make_config(space__units={"type": "fixed", "value": 4})
    form = form_from_config(parent.to_dict())
    units = next(r for r in form["rows"] if r["name"] == "units")
    assert (units["action"], units["type"], units["value"]) == ("fix", "int", 4)
    units.update(action="search", low="2", high="16", log=True)
    next(r for r in form["rows"] if r["name"] == "shape")["action"] = "drop"
    config, problems = _launch(parent, form)
    assert problems == []
    space = config.to_dict()["space"]
    assert space["units"] == {"type": "int", "low": 2, "high": 16, "log": True} and "shape" not in space


BAD_INPUTS = [
    ("x", {"low": 0.9, "high": 0.1}, "space.x.high"),
    ("x", {"low": 0.0, "high": 1.0, "log": True}, "space.x"),
    ("x", {"low": "abc"}, "space.x.low"),
    ("shape", {"choices": ""}, "space.shape.choices"),
    ("x", {"action": "fix", "value": "ten"}, "space.x.value"),
    ("x", {"action": "launch"}, "space.x"),
]


@pytest.mark.parametrize(("row", "change", "path"), BAD_INPUTS)
def test_each_bad_field_is_refused_with_its_key_path(parent, row, change, path):
    form = form_from_config(parent.to_dict(), BEST)
    next(r for r in form["rows"] if r["name"] == row).update(change)
    config, problems = _launch(parent, form)
    assert config is None
    assert any(p.startswith(path) for p, _ in problems), problems


def test_int_bounds_must_be_whole_numbers(make_config):
    parent = make_config(space__units={"type": "int", "low": 1, "high": 8})
    form = form_from_config(parent.to_dict())
    next(r for r in form["rows"] if r["name"] == "units").update(low="1.5")
    config, problems = _launch(parent, form)
    assert config is None and any(p == "space.units.low" for p, _ in problems), problems


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"algorithm": {"name": "simulated-annealing", "settings": {}}}, "algorithm.name"),
        ({"algorithm": {"name": "tpe", "settings": {"n_startup": 3}}}, "algorithm.n_startup"),
        ({"termination": {"max_trials": 0}}, "termination.max_trials"),
        ({"termination": {"max_trials": 10_000}}, "termination.max_trials"),
        ({"termination": {"max_trials": "", "max_time_s": 900}}, "termination.max_trials"),  # no cap-less launch
        ({"workers": 64}, "executor.workers"),
        ({"trial": "os:system"}, "trial"),
    ],
)
def test_algorithm_limits_and_the_trial_are_checked(parent, change, path):
    form = {**form_from_config(parent.to_dict(), BEST), **change}
    config, problems = _launch(parent, form, ServerPolicy(max_workers=4, max_trials=500))
    assert config is None
    assert any(p == path for p, _ in problems), problems


def test_the_allow_list_admits_registered_trials_and_the_operators():
    from trellis.search.config import TrialSpec

    policy = ServerPolicy()
    assert policy.allowed(TrialSpec(function="trellis.examples.synthetic:quadratic"), ran_in_store=False)  # entry point
    assert not policy.allowed(TrialSpec(function="trellis.examples.synthetic:slow"), ran_in_store=True)
    assert ServerPolicy(store_trials=True).allowed(
        TrialSpec(function="trellis.examples.synthetic:slow"), ran_in_store=True
    )
    operator = ServerPolicy(extra_trials=frozenset({"trellis.examples.synthetic:slow"}))
    assert operator.allowed(TrialSpec(function="trellis.examples.synthetic:slow"), ran_in_store=False)
    assert policy.edit_problems({"workers": 9, "max_trials": 2.5, "max_time_s": -1, "seed": 3}) == [
        ("workers", "at most 4 on this server"),
        ("max_trials", "must be a whole number, got 2.5"),
        ("max_time_s", "must be a positive number, got -1"),
        ("seed", "not editable (max_trials, max_time_s, workers are)"),
    ]


def test_warm_start_needs_a_parent_and_an_algorithm_that_learns(make_config):
    with pytest.raises(ConfigError) as err:
        make_config(warm_start=True)
    reasons = [reason for path, reason in err.value.problems if path == "warm_start"]
    assert any("relaunched_from" in r for r in reasons) and any("random does not learn" in r for r in reasons)


def test_inside_ignores_fixed_and_inactive_parameters(make_config):
    space = make_config(
        space__x={"type": "float", "low": 0.0, "high": 0.5},
        space__y={"type": "fixed", "value": 0.0},
        space__z={"type": "float", "low": 0, "high": 1, "when": {"shape": "ridge"}},
    ).space
    assert inside(space, {"x": 0.2, "y": 0.9, "shape": "flat"})  # y is fixed now: its old value does not matter
    assert not inside(space, {"x": 0.2, "y": 0.0, "shape": "ridge"})  # z is active there, and unknown
    assert not inside(space, {"x": 0.7, "y": 0.0, "shape": "bowl"})
    assert not inside(space, {"y": 0.0, "shape": "bowl"})
    assert config_key(space, {"x": 0.2, "y": 0.0, "shape": "ridge"}) == (("x", 0.2), ("shape", "ridge"), ("z", None))


def test_fixing_a_condition_parent_settles_its_children(make_config):
    parent = make_config(
        space__shape={"type": "categorical", "choices": ["bowl", "ridge"]},
        space__z={"type": "float", "low": 0, "high": 1, "when": {"shape": "ridge"}},
        space__w={"type": "float", "low": 0, "high": 1, "when": {"shape": "bowl"}},
    )
    form = form_from_config(parent.to_dict())
    next(r for r in form["rows"] if r["name"] == "shape").update(action="fix", value="ridge")
    config, problems = _launch(parent, form)
    assert problems == []
    space = config.to_dict()["space"]
    assert "when" not in space["z"] and "w" not in space  # z always active now, w never


def test_a_relaunch_learns_from_the_parent_and_never_runs_its_configurations_again(parent, store):
    parent_result = run_search(parent.replace(termination=parent.termination.__class__(max_trials=8)))
    client = MlflowClient(store)
    same_seed = parent.to_dict()
    form = form_from_config(same_seed, BEST)
    form["seed"] = 1  # the parent's seed: TPE would replay the parent's first proposals
    form["termination"] = {"max_trials": 8}
    form = fill_from_space(form, {"x": {"type": "float", "low": 0.0, "high": 1.0}})
    raw, form_problems = config_from_form(same_seed, form, parent_result.search_id, new_seed=0)
    config, problems = validate_launch(raw, form_problems, ServerPolicy(), trial_target(parent.trial))
    assert problems == []
    child = run_search(config)
    parent_configs = {config_key(config.space, t.params) for t in parent_result.trials}
    child_configs = [config_key(config.space, t.params) for t in child.trials]
    assert len(child_configs) == 8 and not parent_configs & set(child_configs)
    tags = client.get_run(child.search_id).data.tags
    expected = sum(1 for t in parent_result.trials if inside(config.space, t.params))
    assert int(tags[schema.WARM_START_TRIALS]) == expected > 0
    assert tags[schema.RELAUNCHED_FROM] == parent_result.search_id
    assert len(child_runs(client, child.search_id)) == 8


def test_parse_edit_keeps_only_positive_limits():
    assert parse_edit('{"max_trials": 5, "workers": 2.0, "max_time_s": 30.5}') == {
        "max_trials": 5,
        "workers": 2,
        "max_time_s": 30.5,
    }
    assert parse_edit('{"max_trials": -1, "workers": true, "seed": 3}') == {}
    assert parse_edit("not json") == {} and parse_edit("[1]") == {}


@pytest.mark.parametrize(
    ("status", "tags", "label"),
    [
        ("SCHEDULED", {schema.SEARCH_STATE: "scheduled"}, "scheduled"),
        ("RUNNING", {schema.HEARTBEAT: "995"}, "running"),
        ("RUNNING", {schema.HEARTBEAT: str(1000 - HEARTBEAT_STALE_S - 5)}, "orphaned"),
        ("FINISHED", {schema.SEARCH_STATE: "completed"}, "finished"),
        ("KILLED", {schema.SEARCH_STATE: "killed"}, "stopped"),
        ("FAILED", {schema.SEARCH_STATE: "failed"}, "failed"),
        ("FINISHED", {}, "finished"),
    ],
)
def test_search_status(status, tags, label):
    assert search_status(status, tags, now=1000.0).label == label


def test_the_form_shows_a_best_trials_float_in_six_digits_not_seventeen(parent):
    form = form_from_config(parent.to_dict(), {**BEST, "x": 0.12345678901234567})
    row = next(r for r in form["rows"] if r["name"] == "x")
    assert row["value"] == 0.123457 and len(str(row["value"])) <= 8
