"""Bad input gets `key.path: reason` (configs) or one clear line (CLI), never a traceback."""

import copy
import subprocess
import sys

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import BASE
from trellis.search.config import ConfigError, SearchConfig, parse_config

VALID = {**copy.deepcopy(BASE), "tracking": {"uri": "sqlite:///never-opened.db"}}


def with_change(path: str, value):
    raw = copy.deepcopy(VALID)
    node = raw
    *parents, last = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return raw


@pytest.mark.parametrize(
    "path, value, where",
    [
        ("algorithm.name", ["tpe"], "algorithm.name"),
        ("objective.direction", ["max"], "objective.direction"),
        ("trial", {"entry_point": ["digits-mlp"]}, "trial.entry_point"),
        ("trial", {"script": 123}, "trial.script"),
        ("trial.workdir", 12345, "trial.workdir"),
        ("trial.workdir", "/no/such/folder", "trial.workdir"),
        ("tracking.artifact_location", 5, "tracking.artifact_location"),
        ("tracking.experiment", ["a", "b"], "tracking.experiment"),
        ("tracking.experiment", "e" * 600, "tracking.experiment"),
        ("space.x", {"low": -1e308, "high": 1e308}, "space.x"),
        ("space.x", {"low": 0.0, "high": float("inf")}, "space.x.high"),
        ("trial", {"function": "trellis.examples.synthetic:no_such_function"}, "trial.function"),
        ("trial", {"script": __file__, "python": "/no/such/python"}, "trial.python"),
        ("space", {"../x": {"low": 0.0, "high": 1.0}}, "space.../x"),
        ("objective.metric", "m" * 300, "objective.metric"),
        ("objective.metric", "../../etc/passwd", "objective.metric"),
        ("record", ["ok", "a" * 300], "record[1]"),
        ("executor.workers", 100_000, "executor.workers"),
    ],
)
def test_a_bad_value_names_its_key(path, value, where):
    with pytest.raises(ConfigError) as err:
        parse_config(with_change(path, value))
    assert where in dict(err.value.problems), err.value.problems


def test_the_valid_base_parses():
    assert isinstance(parse_config(VALID), SearchConfig)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=8,
)
KEYS = ["name", "objective", "space", "algorithm", "budget", "termination", "executor", "trial", "tracking",
        "record", "early_stopping", "relaunched_from", "objective.metric", "objective.direction", "space.x",
        "space.x.low", "space.x.type", "algorithm.name", "algorithm.eta", "budget.max", "termination.max_trials",
        "executor.workers", "executor.kind", "trial.function", "trial.script", "tracking.uri", "early_stopping.step",
        "space.shape.choices", "algorithm.population_size"]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.lists(st.tuples(st.sampled_from(KEYS), json_values), max_size=4))
def test_any_input_gives_a_config_or_key_path_errors(changes):
    raw = copy.deepcopy(VALID)
    for path, value in changes:
        node = raw
        *parents, last = path.split(".")
        for key in parents:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[last] = value
    try:
        config = parse_config(raw)
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, str) and isinstance(r, str) and r for p, r in exc.problems)
    else:
        assert isinstance(config, SearchConfig)


def _trellis(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "trellis.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "args, says",
    [
        (["search", "stop", "abc", "--tracking-uri", "sqlite:///typo.db"], "no MLflow store at typo.db"),
        (["search", "resume", "abc", "--tracking-uri", "sqlite:///typo.db"], "no MLflow store at typo.db"),
        (["serve", "--tracking-uri", "sqlite:///typo.db"], "no MLflow store at typo.db"),
        (["importance", "--experiment", "e", "--metric", "m", "--tracking-uri", "sqlite:///typo.db"], "no MLflow"),
        (["search", "stop", "abc", "--tracking-uri", "foo://x"], "unknown tracking URI scheme 'foo'"),
        (["search", "stop", "abc", "--tracking-uri", "sqlite:///search.yaml"], "is not a SQLite database"),
        (["search", "stop", "abc", "--tracking-uri", "postgresql://u@127.0.0.1:1/db"], "cannot reach the database"),
        (["search", "run", "search.yaml", "--workers", "0"], "must be at least 1"),
        (["search", "run", "search.yaml", "--max-trials", "0"], "must be at least 1"),
        (["bounds", "--experiment", "e", "--metric", "m", "--best-quantile", "1.5"], "must be in (0, 1]"),
        (["importance", "--experiment", "e", "--metric", "m", "--trees", "0"], "must be at least 1"),
        (["bounds", "--experiment", "e", "--metric", "m", "--budget", "-3"], "must be a budget of 0 or more"),
        (["bounds", "--experiment", "e", "--metric", "m", "--budget", "abc"], "must be auto, all or a number"),
        (["pareto", "--experiment", "e", "--objectives", "acc:max,acc:max"], "each metric once"),
    ],
)
def test_a_bad_command_line_is_one_clear_line(tmp_path, args, says):
    (tmp_path / "search.yaml").write_text(yaml.safe_dump(VALID))
    done = _trellis(*args, cwd=tmp_path)
    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "typo.db").exists()  # reading commands create nothing


def test_unknown_search_id_is_one_line(tmp_path, store, make_config):
    from trellis.search.engine.runner import run_search

    run_search(make_config(termination={"max_trials": 1}))
    for action in ("stop", "resume"):
        done = _trellis("search", action, "nope", "--tracking-uri", store, cwd=tmp_path)
        assert done.returncode == 2 and "'nope' is not a search id" in done.stderr and "Traceback" not in done.stderr


def test_a_search_whose_trials_all_failed_exits_non_zero(tmp_path, store):
    raw = with_change("trial", {"function": "trellis.examples.synthetic:crashy"})
    raw["space"] = {"x": {"low": 0.6, "high": 1.0}}
    raw["tracking"] = {"uri": store}
    raw["termination"] = {"max_trials": 2}
    (tmp_path / "all_fail.yaml").write_text(yaml.safe_dump(raw))
    done = _trellis("search", "run", "all_fail.yaml", "--quiet", cwd=tmp_path)
    assert done.returncode == 1 and "every trial failed" in done.stdout


def test_more_local_workers_than_cpus_is_a_warning(tmp_path, store):
    import os

    raw = copy.deepcopy(VALID)
    raw["tracking"] = {"uri": store}
    raw["termination"] = {"max_trials": 1}
    raw["executor"] = {"kind": "local", "workers": (os.cpu_count() or 1) + 1}
    (tmp_path / "many.yaml").write_text(yaml.safe_dump(raw))
    done = _trellis("search", "run", "many.yaml", "--quiet", cwd=tmp_path)
    assert done.returncode == 0 and "warning:" in done.stdout and "local workers on" in done.stdout
