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
