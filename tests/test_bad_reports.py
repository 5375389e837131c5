"""A value MLflow would refuse fails the trial that reported it, the same on every store: SQLite, PostgreSQL
and a real tracking server over HTTP. Every other trial is stored, and no run is left RUNNING."""

import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from mlflow import MlflowClient

from tests.conftest import child_runs
from trellis.examples.synthetic import BAD_REPORTS
from trellis.search.engine.runner import run_search
from trellis.search.trial import parse_report_line
from trellis.tracking import schema


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real ``mlflow server`` on loopback, over its own SQLite store (stopped after the module)."""
    folder = tmp_path_factory.mktemp("server")
    port = _free_port()
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
           "--backend-store-uri", f"sqlite:///{folder / 'server.db'}", "--artifacts-destination",
           str(folder / "artifacts"), "--workers", "1"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=folder)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("mlflow server did not come up in 90 s")
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def _store(kind, request, tmp_path):
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'bad.db'}"
    return request.getfixturevalue("pg_uri" if kind == "postgresql" else "mlflow_server")


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "server"])
@pytest.mark.parametrize("bad", sorted(BAD_REPORTS))
def test_a_refused_report_fails_only_its_trial(make_config, tmp_path, request, kind, bad):
    uri = _store(kind, request, tmp_path)
    config = make_config(
        space={"x": {"type": "float", "low": 0.0, "high": 1.0}, "bad": bad},
        trial={"function": "trellis.examples.synthetic:bad_reporter"},
        termination={"max_trials": 6},
        algorithm={"name": "random", "seed": 3},
        tracking={"uri": uri, "experiment": f"bad-{bad}"},
    )
    result = run_search(config)
    client = MlflowClient(tracking_uri=uri)
    runs = child_runs(client, result.search_id)
    assert result.state == "completed" and len(runs) == 6
    assert client.get_run(result.search_id).info.status == "FINISHED"
    for run in runs:
        x = float(run.data.params["x"])
        if x > 0.5:
            assert run.info.status == "FAILED" and "ReportRefused" in run.data.tags[schema.ERROR]
        else:
            assert run.info.status == "FINISHED" and run.data.tags[schema.END_REASON] == "completed"
            assert len(client.get_metric_history(run.info.run_id, "loss")) == 3
    assert any(float(r.data.params["x"]) > 0.5 for r in runs) and any(float(r.data.params["x"]) <= 0.5 for r in runs)


@pytest.mark.parametrize(
    "line, reason",
    [
        ('TRELLIS {"step": "three", "loss": 1}', "a step must be an integer"),
        ('TRELLIS {"step": 1e40, "loss": 1}', "outside MLflow's 64-bit integer range"),
        ('TRELLIS {"step": 1, "../x": 1}', "must not resolve to other names"),
        ("TRELLIS {step: 1}", "not JSON"),
        ('TRELLIS ["step", 1]', "not a JSON object"),
    ],
)
def test_a_malformed_script_line_is_refused_quoting_it(line, reason):
    with pytest.raises(ValueError) as err:
        parse_report_line(line)
    assert reason in str(err.value) and line in str(err.value)


def test_a_script_trial_with_a_malformed_line_fails_with_it(make_config, tmp_path):
    script = tmp_path / "bad_script.py"
    script.write_text(
        "import json, sys\ncfg = json.load(open(sys.argv[1]))\n"
        'print(\'TRELLIS {"step": 1, "loss": 0.5}\', flush=True)\n'
        'print(\'TRELLIS {"step": "three"}\', flush=True)\n'
    )
    result = run_search(make_config(trial={"script": str(script)}, termination={"max_trials": 2}))
    client = MlflowClient(tracking_uri=result.tracking_uri)
    runs = child_runs(client, result.search_id)
    assert len(runs) == 2 and all(r.info.status == "FAILED" for r in runs)
    assert all('"step": "three"' in r.data.tags[schema.ERROR] for r in runs)
