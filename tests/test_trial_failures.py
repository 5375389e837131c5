"""Crashes, script trials, timeouts and interruption: nothing finished is lost, every end is explained."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from mlflow import MlflowClient

from tests.conftest import BASE, ROOT, child_runs
from trellis.search.engine.runner import run_search
from trellis.tracking import schema


def _tail(client, run, tmp_path) -> str:
    return Path(client.download_artifacts(run.info.run_id, schema.STDERR_ARTIFACT, str(tmp_path))).read_text()


def test_raising_trials_are_failed_with_stderr_tail_and_search_goes_on(make_config, client, tmp_path):
    config = make_config(
        space={"x": {"low": 0.0, "high": 1.0}},
        trial={"function": "trellis.examples.synthetic:crashy"},
        termination={"max_trials": 12},
        objective={"metric": "loss", "direction": "min"},
    )
    result = run_search(config)
    trials = child_runs(client, result.search_id)
    assert len(trials) == 12
    failed = [r for r in trials if float(r.data.params["x"]) > 0.5]
    ok = [r for r in trials if float(r.data.params["x"]) <= 0.5]
    assert failed and ok and result.progress.failed == len(failed)
    for run in failed:
        assert run.info.status == "FAILED" and run.data.tags[schema.END_REASON] == "failed"
        assert "RuntimeError: synthetic failure" in run.data.tags[schema.ERROR]
        tail = _tail(client, run, tmp_path)
        assert "about to fail" in tail and "Traceback" in tail
        assert client.get_metric_history(run.info.run_id, "loss")  # what it reported before failing is kept
    assert all(r.info.status == "FINISHED" for r in ok)


def test_a_worker_that_dies_fails_its_trial_and_is_replaced(make_config, client):
    config = make_config(
        trial={"function": "trellis.examples.synthetic:hard_exit"},
        termination={"max_trials": 3},
        executor={"workers": 1},
    )
    result = run_search(config)
    trials = child_runs(client, result.search_id)
    assert [r.info.status for r in trials] == ["FAILED"] * 3
    assert "worker process died (exit code 3)" in trials[0].data.tags[schema.ERROR]


def test_script_trials_report_per_epoch_and_fail_on_nonzero_exit(make_config, client, tmp_path):
    config = make_config(
        space={"x": {"low": 0.0, "high": 1.0}},
        trial={"script": str(ROOT / "examples" / "synthetic_script.py")},
        termination={"max_trials": 14},
        budget={"max": 3},
    )
    result = run_search(config)
    trials = child_runs(client, result.search_id)
    assert len(trials) == 14
    for run in trials:
        x = float(run.data.params["x"])
        steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "loss"))
        assert steps == [1, 2, 3]
        if x > 0.9:
            assert run.info.status == "FAILED" and "exited with code 2" in run.data.tags[schema.ERROR]
            assert "out of what this script accepts" in _tail(client, run, tmp_path)
        else:
            assert run.info.status == "FINISHED" and run.data.metrics["n_params"] == 42
            assert abs(run.data.metrics["loss"] - ((x - 0.3) ** 2 + 2.0**-3)) < 1e-9
    assert any(r.info.status == "FAILED" for r in trials)


def test_trial_timeout_kills_and_says_why(make_config, client):
    config = make_config(
        trial={"function": "trellis.examples.synthetic:slow", "timeout_s": 0.5},
        space={"seconds": 0.4, "x": {"low": 0.0, "high": 1.0}},
        budget={"max": 10},
        termination={"max_trials": 2},
    )
    result = run_search(config)
    trials = child_runs(client, result.search_id)
    assert [r.info.status for r in trials] == ["KILLED", "KILLED"]
    assert "timeout_s" in trials[0].data.tags[schema.ERROR]
    assert result.progress.killed == 2


def test_max_time_kills_running_trials_and_keeps_finished_ones(make_config, client):
    config = make_config(
        trial={"function": "trellis.examples.synthetic:slow"},
        space={"seconds": {"type": "categorical", "choices": [0.01, 5.0]}, "x": {"low": 0.0, "high": 1.0}},
        budget={"max": 2},
        termination={"max_trials": 50, "max_time_s": 3.0},
        executor={"workers": 2},
    )
    result = run_search(config)
    assert result.stop_reason == "max_time"
    trials = child_runs(client, result.search_id)
    assert {r.info.status for r in trials} <= {"FINISHED", "KILLED"}
    for run in trials:
        fast = float(run.data.params["seconds"]) < 1
        assert run.info.status == ("FINISHED" if fast else "KILLED")
    assert any(r.info.status == "KILLED" for r in trials)


def test_ctrl_c_marks_running_trials_killed_and_keeps_finished(store, tmp_path):
    raw = {
        **BASE,
        "trial": {"function": "trellis.examples.synthetic:slow"},
        "space": {"seconds": 0.3, "x": {"low": 0.0, "high": 1.0}},
        "budget": {"max": 2},
        "termination": {"max_trials": 100},
        "tracking": {"uri": store, "experiment": "interrupt"},
    }
    path = tmp_path / "slow.yaml"
    path.write_text(yaml.safe_dump(raw))
    proc = subprocess.Popen(
        [sys.executable, "-m", "trellis.cli", "search", "run", str(path), "--quiet"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    client = MlflowClient(tracking_uri=store)
    deadline = time.time() + 240  # a loaded machine (parallel tests) can take a minute to start the process
    finished = 0
    while time.time() < deadline and finished < 3:  # wait until at least 3 trials have finished
        exp = client.get_experiment_by_name("interrupt")
        finished = len(client.search_runs([exp.experiment_id], "attributes.status = 'FINISHED'")) if exp else 0
        time.sleep(0.3)
    assert finished >= 3, "the search did not get 3 trials done in 240 s"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parent = next(r for r in runs if r.data.tags.get(schema.TYPE) == "search")
    trials = [r for r in runs if r.data.tags.get(schema.TYPE) == "trial"]
    assert parent.info.status == "KILLED" and parent.data.tags[schema.SEARCH_STOP_REASON] == "interrupted"
    statuses = [r.info.status for r in trials]
    assert statuses.count("FINISHED") >= 3 and "KILLED" in statuses and "RUNNING" not in statuses
    for run in trials:
        if run.info.status == "FINISHED":
            assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "loss")) == [1, 2]
        else:
            assert "interrupted" in run.data.tags[schema.ERROR]
    assert "killed" in out
