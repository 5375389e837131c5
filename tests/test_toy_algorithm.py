"""Adding an algorithm is one module and one registry row: config validation, the runner and resume
pick it up with no other edit."""

import pytest
import yaml

from tests.conftest import child_runs
from tests.test_resume import SLOW, interrupt_after
from tests.toy_algorithm import van_der_corput
from trellis.search.config import ConfigError, load_config
from trellis.search.engine.resume import recorded_config
from trellis.search.engine.runner import SearchRunner
from trellis.search.registry import AlgorithmSpec, register_algorithm, unregister_algorithm
from trellis.tracking import schema


@pytest.fixture
def toy_row():
    register_algorithm(
        AlgorithmSpec("toy", sampler="tests.toy_algorithm:ToySampler", settings={"base": 2}, ranges={"base": (2, 9)})
    )
    yield
    unregister_algorithm("toy")


def write_config(tmp_path, store, algorithm, name="toy"):
    raw = {
        "name": name,
        "objective": {"metric": "loss", "direction": "min"},
        **SLOW,
        "algorithm": algorithm,
        "termination": {"max_trials": 6},
        "executor": {"kind": "local", "workers": 2},
        "tracking": {"uri": store, "experiment": name},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_an_unregistered_name_is_refused_with_the_known_ones(tmp_path, store):
    with pytest.raises(ConfigError) as err:
        load_config(write_config(tmp_path, store, {"name": "toy"}))
    assert (
        "algorithm.name",
        "must be one of random, grid, tpe, nsga2, hyperband, bohb, pbt, got 'toy'",
    ) in err.value.problems


def test_the_row_validates_its_settings(tmp_path, store, toy_row):
    with pytest.raises(ConfigError) as err:
        load_config(write_config(tmp_path, store, {"name": "toy", "base": 12, "colour": "red"}))
    paths = dict(err.value.problems)
    assert paths["algorithm.base"] == "must be between 2 and 9, got 12"
    assert "is not a setting of 'toy'" in paths["algorithm.colour"]
    assert load_config(write_config(tmp_path, store, {"name": "toy", "base": 3})).algorithm.settings == {"base": 3}


def test_a_toy_search_runs_and_resumes_where_it_stopped(tmp_path, store, client, toy_row):
    config = load_config(write_config(tmp_path, store, {"name": "toy", "base": 3}))
    interrupted = SearchRunner(config, on_progress=interrupt_after(2)).run()
    assert interrupted.state == "killed"
    resumed = SearchRunner(recorded_config(client, interrupted.search_id), resume=interrupted.search_id).run()
    assert resumed.state == "completed" and resumed.stop_reason == "max_trials"
    runs = child_runs(client, interrupted.search_id)
    assert {r.data.tags[schema.ALGORITHM] for r in runs} == {"toy"}
    sampled = [r for r in runs if schema.RETRY_OF not in r.data.tags]
    # The sequence went on after the interruption: exactly the first six points of the base-3 sequence.
    expected = sorted(van_der_corput(i, 3) for i in range(1, 7))
    assert sorted(float(r.data.params["x"]) for r in sampled) == pytest.approx(expected)
    assert all(r.data.tags[schema.END_REASON] in ("completed", "killed") for r in runs)


def test_a_plugins_shape_decides_how_analysis_reads_its_searches():
    """A bracket-style algorithm from a plugin is drawn and diagnosed as bracketed: analysis reads the row's
    shape, never algorithm names."""
    import pandas as pd

    from trellis.search.analysis.diagnosis.base import SearchFacts
    from trellis.search.analysis.diagnosis.budget import early_step
    from trellis.search.registry import BRACKETED, POPULATION, SEQUENTIAL, shape_of

    register_algorithm(
        AlgorithmSpec(
            "toy-bands",
            sampler="tests.toy_algorithm:ToySampler",
            scheduler="trellis.search.schedulers.hyperband:HyperbandScheduler",
            settings={"base": 2, "eta": 3},
            budgeted=True,
            self_ending=True,
            shape=BRACKETED,
        )
    )
    try:
        assert shape_of("toy-bands") == BRACKETED and shape_of("pbt") == POPULATION and shape_of("tpe") == SEQUENTIAL
        assert shape_of("another-tools-name") is None
        config = {"algorithm": {"name": "toy-bands", "eta": 3}, "budget": {"min": 1, "max": 9}}
        facts = SearchFacts("s", "s", config, pd.DataFrame(), "loss", "min")
        assert early_step(facts) == (1, "budget.min")  # its first rung: a decision the budget rules read
        with pytest.raises(ValueError, match="shape must be one of"):
            register_algorithm(AlgorithmSpec("toy-odd", sampler="tests.toy_algorithm:ToySampler", shape="tree"))
    finally:
        unregister_algorithm("toy-bands")
