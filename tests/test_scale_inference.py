"""The scale and type of a parameter no tool recorded a space for, read from its samples (not from its span),
and kept by every refinement: a relaunch never changes a parameter's ``log`` or its type."""

import dataclasses

import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from trellis.search.analysis.design import prepare
from trellis.search.analysis.refine import refined_space
from trellis.search.analysis.report import analyse
from trellis.search.config import parse_config
from trellis.search.control.relaunch import config_from_form, fill_from_space, form_from_config
from trellis.tracking.foreign_spaces import looks_log_uniform, uniform_distance
from trellis.tracking.reader import read_runs

RNG = np.random.default_rng(0)


def _log_uniform(low, high, n, rng):
    return np.exp(rng.uniform(np.log(low), np.log(high), n))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n", [30, 400])
def test_uniform_samples_stay_linear_even_when_they_span_decades(seed, n):
    rng = np.random.default_rng(seed)
    dropout = rng.uniform(0.0, 0.7, n)
    assert not looks_log_uniform(dropout)  # 0 itself may be drawn: never log
    assert not looks_log_uniform(dropout[dropout > 0])
    near_zero = rng.uniform(1e-6, 1e-3, n)  # three decades between its smallest and largest values
    assert near_zero.max() / near_zero.min() > 10
    assert not looks_log_uniform(near_zero)
    assert not looks_log_uniform(rng.integers(1, 11, n).astype(float))  # an int drawn uniformly from 1..10


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n", [30, 400])
def test_log_uniform_samples_are_log(seed, n):
    rng = np.random.default_rng(seed)
    assert looks_log_uniform(_log_uniform(1e-5, 1e-1, n, rng))
    assert looks_log_uniform(np.floor(_log_uniform(16, 513, n, rng)))  # a log int (batch size, width)
    assert looks_log_uniform(_log_uniform(1e-3, 5e-2, n, rng))  # under two decades: the span rule said linear


def test_a_dozen_values_that_fill_decades_are_log():
    """At 12 values a uniform sample can look log by chance (about 1 in 12 for a dropout on [0, 0.7], with the
    e-fold evidence asked): not asserted here; values that fill four decades are clearly log."""
    for seed in range(5):
        assert looks_log_uniform(_log_uniform(1e-5, 1e-1, 12, np.random.default_rng(seed)))


def test_grids_and_edge_cases():
    assert looks_log_uniform(np.array([1e-4, 1e-3, 1e-2, 1e-1] * 3))  # a decade grid
    assert not looks_log_uniform(np.array([0.1, 0.2, 0.3, 0.4, 0.5]))  # an even grid
    assert not looks_log_uniform(np.array([1e-3, 1.0]))  # two values: both scales put them at the ends
    assert not looks_log_uniform(np.array([-1.0, 0.5, 2.0, 8.0]))  # not all positive
    assert uniform_distance(np.linspace(0, 1, 101)) < 0.02 < 0.5 < uniform_distance(np.logspace(-5, 0, 101))


def _foreign_runs(uri: str, n: int = 60) -> str:
    """Runs of a hand-written script, logged as such scripts log them (strings of Python values)."""
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("handwritten")
    rng = np.random.default_rng(4)
    for i in range(n):
        lr = float(_log_uniform(1e-5, 1e-1, 1, rng)[0])
        dropout = float(rng.uniform(0.0, 0.7))
        params = {
            "lr": lr,
            "dropout": dropout,
            "units": int(np.floor(_log_uniform(16, 513, 1, rng)[0])),  # logged "37"
            "batch": int(rng.integers(8, 65)),
            "scale": float(rng.integers(1, 4)),  # a float that happens to be whole: logged "2.0"
            "act": str(rng.choice(["relu", "tanh", "gelu"])),
        }
        loss = (np.log10(lr) + 3) ** 2 / 16 + (dropout - 0.2) ** 2
        run = client.create_run(exp, run_name=f"run-{i}")
        client.log_batch(
            run.info.run_id,
            params=[Param(k, str(v)) for k, v in params.items()],
            metrics=[Metric("loss", float(loss), 0, 0)],
        )
        client.set_terminated(run.info.run_id)
    return exp


def test_foreign_runs_get_the_scale_and_type_they_were_sampled_on_and_the_refined_space_keeps_them(store):
    table = read_runs(store, [_foreign_runs(store)])
    data = prepare(table, table.trials, "loss", "min")
    kinds = {a.name: (a.kind, a.log) for a in data.axes}
    assert kinds == {
        "act": ("categorical", False),
        "batch": ("int", False),
        "dropout": ("float", False),
        "lr": ("float", True),
        "scale": ("float", False),
        "units": ("int", True),
    }
    assert data.axis("dropout").low == 0.0  # uniform on [0, 0.7]: 0 stays possible
    assert data.axis("lr").low == table.trials["params.lr"].min()
    assert data.axis("scale").values == [1.0, 2.0, 3.0]  # a float seen at three values: searched as a set
    verdicts = analyse(table, table.trials, "loss", "min").verdicts
    kept = {n: dataclasses.replace(v, action="keep") if v.action == "fix" else v for n, v in verdicts.items()}
    space, _ = refined_space(kept, data)
    for axis in data.axes:
        spec = space[axis.name]
        if axis.values:
            assert spec["type"] == "categorical" and set(spec["choices"]) <= set(axis.values), axis.name
            continue
        assert spec["type"] == axis.kind, axis.name
        assert axis.kind == "categorical" or spec["log"] is axis.log, axis.name
    assert space["dropout"]["log"] is False and space["lr"]["log"] is True
    assert isinstance(space["units"]["low"], int) and isinstance(space["batch"]["high"], int)


PARENT = {
    "name": "p",
    "objective": {"metric": "loss", "direction": "min"},
    "space": {
        "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
        "dropout": {"type": "float", "low": 0.0, "high": 0.7},
        "units": {"type": "int", "low": 16, "high": 512, "log": True},
        "layers": {"type": "int", "low": 1, "high": 8},
    },
    "algorithm": {"name": "random", "seed": 0},
    "termination": {"max_trials": 4},
    "trial": {"function": "trellis.examples.synthetic:quadratic"},
}


@pytest.mark.parametrize("seed", range(20))
def test_no_relaunch_changes_a_parameters_scale_or_type(seed):
    """Any refined space (even one that says otherwise) fills the relaunch form with ranges only: each row
    keeps its type and scale, and the config it gives parses with them."""
    rng = np.random.default_rng(seed)
    parent = parse_config(PARENT).to_dict()
    form = form_from_config(parent)
    offered = {}
    for name, spec in PARENT["space"].items():
        low, high = sorted(rng.uniform(spec["low"], spec["high"], 2))
        kind = str(rng.choice(["float", "int"]))
        offered[name] = {"type": kind, "low": low, "high": max(high, low + 1), "log": bool(rng.integers(2))}
    filled = fill_from_space(form, offered)
    for row in filled["rows"]:
        spec = PARENT["space"][row["name"]]
        assert (row["type"], bool(row["log"])) == (spec["type"], bool(spec.get("log")))
    raw, problems = config_from_form(parent, filled, "parent", new_seed=1)
    config = parse_config(raw)
    for name, spec in PARENT["space"].items():
        param = config.space[name]
        assert param.kind == spec["type"] and param.log is bool(spec.get("log")), name
