"""Issue 25's probe findings, each with the test that failed before its fix: nothing left RUNNING after a failed
submit, and one clear line instead of a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from mlflow import MlflowClient

from tests.conftest import BASE
from trellis.search.config import parse_config
from trellis.search.control.queue import submit_search
from trellis.tracking import schema
from trellis.tracking.writer import ExperimentUnusable


def _config_file(tmp_path, store, experiment):
    raw = {**BASE, "tracking": {"uri": store, "experiment": experiment}}
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("command", ["submit", "run"])
def test_an_experiment_made_by_an_mlflow_server_is_refused_in_one_line_with_no_run_left(tmp_path, store, command):
    client = MlflowClient(store)
    experiment = client.create_experiment("served", artifact_location="mlflow-artifacts:/1")
    path = _config_file(tmp_path, store, "served")
    done = subprocess.run([sys.executable, "-P", "-m", "trellis.cli", "search", command, str(path), "--quiet"]
                          if command == "run" else
                          [sys.executable, "-P", "-m", "trellis.cli", "search", command, str(path)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: tracking.experiment: 'served': its artifacts live at mlflow-artifacts:/1, which only an MLflow "
        "server serves: set tracking.uri to that server's http(s):// URL (or use another experiment)"
    ]
    assert "Traceback" not in done.stderr
    assert client.search_runs([experiment]) == []


def test_a_search_that_cannot_be_recorded_ends_failed_never_scheduled(tmp_path, store):
    """Its artifacts cannot be written (a folder nobody may create): the run it created ends FAILED, saying why."""
    client = MlflowClient(store)
    experiment = client.create_experiment("unwritable", artifact_location="file:///proc/trellis-cannot-write")
    config = parse_config({**BASE, "tracking": {"uri": store, "experiment": "unwritable"}})
    with pytest.raises(OSError):
        submit_search(config, launched_by="t")
    (run,) = client.search_runs([experiment])
    assert run.info.status == "FAILED" and run.data.tags[schema.SEARCH_STATE] == "failed"
    assert "could not be recorded" in run.data.tags[schema.ERROR]


def test_the_check_is_on_the_experiment_not_on_the_scheme_of_other_experiments(store):
    with pytest.raises(ExperimentUnusable, match="tracking.experiment: 'x'"):
        from trellis.tracking.writer import ensure_experiment

        ensure_experiment(MlflowClient(store), "x", artifact_location="mlflow-artifacts:/x")


LEAVES_A_CHILD = """
import json, subprocess, sys
config = json.load(open(sys.argv[1]))
# a background child that keeps the script's stdout and stderr open for a long time, and says who it is
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
open(config["params"]["pidfile"], "w").write(str(child.pid))
print("TRELLIS " + json.dumps({"step": 1, "loss": 0.5}), flush=True)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("kind", ["script", "function"])
def test_a_trial_that_leaves_a_child_running_ends_with_its_script_and_the_child_goes_too(tmp_path, store, kind):
    """A script's background child holding its stdout hung the search (or got it KILLED at timeout_s although
    it had finished); a function trial's child outlived the search. Both end with the trial now."""
    from trellis.search.engine.runner import run_search

    pidfile = tmp_path / "child.pid"
    if kind == "script":
        script = tmp_path / "leaves_a_child.py"
        script.write_text(LEAVES_A_CHILD)
        trial = {"script": str(script)}
    else:
        trial = {"function": "trellis.examples.synthetic:leaves_a_child"}
    raw = {**BASE, "space": {"pidfile": {"type": "fixed", "value": str(pidfile)}}, "budget": {"min": 1, "max": 1},
           "termination": {"max_trials": 1, "max_time_s": 120}, "trial": {**trial, "timeout_s": 60},
           "tracking": {"uri": store, "experiment": "children"}}  # fmt: skip
    result = run_search(parse_config(raw))
    runs = MlflowClient(store).search_runs([result.experiment_id], "tags.`trellis.type` = 'trial'")
    assert [r.info.status for r in runs] == ["FINISHED"], [r.data.tags.get(schema.ERROR) for r in runs]
    assert result.progress.completed == 1
    pid = int(pidfile.read_text())
    assert not _alive(pid), "the trial's child outlived the search"


# -- configs and command lines: each refused with key.path: reason, never a traceback or a hang --------------


def _problems(tmp_path, text: str) -> list[tuple[str, str]]:
    from trellis.search.config import ConfigError, load_config

    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


def _valid_text(**changes) -> str:
    raw = {**BASE, **changes}
    return yaml.safe_dump(raw)


def test_an_alias_bomb_deep_nesting_and_duplicate_keys_are_refused_in_one_line(tmp_path):
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    for i in range(1, 9):  # nine levels of nine aliases: 9**9 values once expanded
        bomb += f"{chr(97 + i)}: &{chr(97 + i)} [" + ",".join([f"*{chr(96 + i)}"] * 9) + "]\n"
    ((path, reason),) = _problems(tmp_path, bomb)
    assert path == "<file>" and "aliases expand to" in reason and len(reason) < 120
    ((path, reason),) = _problems(tmp_path, "space: " + "[" * 20000 + "]" * 20000 + "\n")
    assert "nested more than" in reason
    text = _valid_text().replace("space:\n", "space:\n  x: {type: float, low: 0.0, high: 1.0}\n", 1)
    ((path, reason),) = _problems(tmp_path, text)
    assert "duplicate key 'x'" in reason and "the last would silently win" in reason


@pytest.mark.parametrize(
    "changes, where, says",
    [
        ({"algorithm": {"name": "random", "seed": -5}}, "algorithm.seed", "must be between 0 and"),
        ({"executor": {"kind": "dask", "address": "not a url"}}, "executor.address", "tcp://host:8786"),
        ({"budget": {"min": 1, "max": 10**20}}, "budget.max", "at most 1,000,000,000"),
        ({"objective": {"metric": 5, "direction": "min"}}, "objective.metric", "must be the metric's name"),
        ({"space": {"x": {"type": "int", "low": 1, "high": 10**30}}}, "space.x", "within ±2**53"),
        (
            {
                "space": {
                    "x": {"type": "float", "low": 0.0, "high": 1.0},
                    "y": {"type": "float", "low": 0.0, "high": 1.0, "when": {"x": 0.5}},
                }
            },
            "space.y.when.x",
            "is a float parameter",
        ),  # fmt: skip
        ({"trial": {"function": "trellis.examples.synthetic:math"}}, "trial.function", "is a module, not a function"),
    ],
)
def test_config_values_once_accepted_or_a_traceback_are_refused_with_their_key(tmp_path, changes, where, says):
    problems = _problems(tmp_path, _valid_text(**changes))
    assert any(path == where and says in reason for path, reason in problems), problems


def test_a_long_value_is_quoted_shortened(tmp_path):
    problems = _problems(tmp_path, _valid_text(algorithm={"name": "x" * 5000}))
    assert all(len(reason) <= 300 for _, reason in problems) and any(r.endswith("…") for _, r in problems)


@pytest.mark.parametrize(
    "args, says",
    [
        (["search", "run", "/dev/zero"], "not a regular file"),
        (["search", "validate", "/tmp"], "a folder"),
        (["serve", "--port", "70000"], "from 1 to 65535"),
        (["serve", "--cache", "memcached://x"], "memcached:// is not a cache"),
        (["importance", "--experiment", "e", "--seed", "-1"], "must be between 0 and"),
        (["importance", "--experiment", "e", "--trees", "100000000"], "at most 10000 trees"),
        (["search", "run", "x.yaml", "--experiment", ""], "an experiment name must be a non-empty string"),
        (["diagnose", "--experiment", " "], "an experiment name must be a non-empty string"),
    ],
)
def test_cli_inputs_get_one_clear_line(tmp_path, args, says):
    done = subprocess.run([sys.executable, "-P", "-m", "trellis.cli", *args], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "memcached:").exists()


# -- crafted callback bodies: a 4xx, never a 500 -------------------------------------------------------------

ODD_VALUES = [
    12345,
    "nope",
    {"points": [{"customdata": ["no-such-parameter"], "x": "nope", "y": None}]},
    [{"nested": [1, 2]}],
    {"experiments": "x"},
    None,
    True,
]


def test_every_callback_answers_crafted_inputs_with_a_4xx_never_a_500(tmp_path, store):
    """Each input of every callback, in turn, given values of the wrong shape or naming what does not exist
    (a click on an unknown parameter), with the selection pointing at real runs: never a 500."""
    import json

    from tests.test_control_page import callback_payload
    from trellis.app.factory import create_app
    from trellis.search.engine.runner import run_search

    result = run_search(parse_config({**BASE, "tracking": {"uri": store, "experiment": "fuzz"}}))
    app = create_app(store, cache=str(tmp_path / "cache"))
    client = app.server.test_client()
    deps = json.loads(client.get("/_dash-dependencies").data)
    selection = {"experiments": [result.experiment_id], "searches": [result.search_id]}
    statuses: dict[int, list[str]] = {}
    for dep in deps:
        if not dep.get("inputs") or dep.get("clientside_function"):
            continue
        inputs = [f"{i['id']}.{i['property']}" for i in dep["inputs"] if isinstance(i["id"], str)]
        keys = inputs + [f"{i['id']}.{i['property']}" for i in dep["state"] if isinstance(i["id"], str)]
        if not inputs:
            continue
        trigger = inputs[0]
        for key in keys:
            for odd in ODD_VALUES:
                body = callback_payload([dep], trigger, {"selection.data": selection, key: odd}, dep["output"])
                code = client.post("/_dash-update-component", json=body).status_code
                statuses.setdefault(code, []).append(f"{dep['output']} <- {key}={str(odd)[:30]}")
        # and the outputs of another callback named in its body
        body = callback_payload([dep], trigger, {"selection.data": selection}, dep["output"])
        body["outputs"] = {"id": "selection", "property": "data"} if not dep["output"].startswith("..") else [
            {"id": "selection", "property": "data"}] * len(body["outputs"])  # fmt: skip
        if "selection.data" not in dep["output"]:
            code = client.post("/_dash-update-component", json=body).status_code
            assert code == 400, dep["output"]
    assert 500 not in statuses, statuses[500][:10]
    assert sum(len(v) for v in statuses.values()) > 200  # the probe really ran


def test_a_python_tag_planted_in_a_stored_config_runs_nothing_and_is_one_line(tmp_path, store):
    from trellis.search.engine.resume import ResumeError, recorded_config
    from trellis.search.engine.runner import run_search

    result = run_search(parse_config({**BASE, "tracking": {"uri": store, "experiment": "planted"}}))
    client = MlflowClient(store)
    marker = tmp_path / "ran"
    client.delete_tag(result.search_id, schema.CONFIG_JSON)  # so the YAML artifact is what is read
    client.log_text(result.search_id, f"name: !!python/object/apply:os.system ['touch {marker}']\n",
                    schema.CONFIG_ARTIFACT)  # fmt: skip
    with pytest.raises(ResumeError, match="the recorded config cannot be read: not valid YAML"):
        recorded_config(client, result.search_id)
    client.set_tag(result.search_id, schema.CONFIG_JSON, '{"name": ' * 5000 + "1" + "}" * 5000)
    with pytest.raises(ResumeError, match="cannot be read"):
        recorded_config(client, result.search_id)
    assert not marker.exists()


@pytest.mark.parametrize(
    "changes, says",
    [
        (
            {
                "trial": {"function": "trellis.examples.synthetic:slow", "timeout_s": 0.5},
                "space": {"seconds": {"type": "fixed", "value": 2.0}},
                "termination": {"max_trials": 2},
            },
            "every trial was killed",
        ),  # fmt: skip
        (
            {
                "trial": {"function": "trellis.examples.synthetic:odd_values"},
                "objective": {"metric": "neg", "direction": "min"},
                "termination": {"max_trials": 2},
            },
            "every trial failed",
        ),  # fmt: skip
    ],
)
def test_a_search_that_did_no_work_exits_non_zero_and_an_infinite_objective_is_never_best(tmp_path, store, changes,
                                                                                        says):  # fmt: skip
    raw = {**BASE, **changes, "tracking": {"uri": store, "experiment": "nowork"}}
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(raw))
    done = subprocess.run([sys.executable, "-P", "-m", "trellis.cli", "search", "run", str(path), "--quiet"],
                          capture_output=True, text=True, timeout=180, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert says in done.stdout and "best " not in done.stdout  # -inf is never reported as the best


def test_the_cli_logs_an_error_in_one_line_not_a_traceback():
    """A PostgreSQL outage scrolled ~12 MLflow/SQLAlchemy tracebacks past Trellis' one line: each log record of
    a command is now one line (TRELLIS_DEBUG=1 keeps the tracebacks)."""
    code = """
import logging
from trellis.cli import _quiet_libraries
_quiet_libraries()
logging.basicConfig()
try:
    raise ValueError("connection refused\\nIs the server running?")
except ValueError:
    logging.getLogger("some.library").exception("database error.\\nThe following exception is caught.")
logging.getLogger("mlflow.store.db.utils").error("SQLAlchemy database error")
"""
    import os

    done = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=60)
    lines = done.stderr.strip().splitlines()
    assert lines == ["ERROR:some.library:database error. The following exception is caught.: ValueError: "
                     "connection refused"], done.stderr  # fmt: skip
    debug = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "TRELLIS_DEBUG": "1"})  # fmt: skip
    assert "Traceback" in debug.stderr


def test_a_parameter_not_in_the_runs_is_named_as_such(tmp_path):
    from benchmarks.load_runs import build_store

    uri, _ = build_store(tmp_path / "runs.db", 30)
    args = ["importance", "--tracking-uri", uri, "--experiment", "bench", "--metric", "accuracy", "--params", "lr,nope"]
    done = subprocess.run([sys.executable, "-P", "-m", "trellis.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)  # fmt: skip
    assert done.returncode != 0 and "no parameter 'nope' in these runs (have: lr" in done.stderr
