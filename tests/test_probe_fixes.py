"""What an outside probe found: a resume beside a live runner, signals as a search opens or closes, stray
bytes from a script, file stores and binary config files."""

import json
import signal
import subprocess
import sys
import time

import pytest
import yaml
from mlflow import MlflowClient

from tests.conftest import BASE, child_runs
from tests.test_resume import _cli
from trellis.search.config import ConfigError, load_config
from trellis.search.engine.resume import ResumeError, check_resumable
from trellis.search.engine.runner import run_search
from trellis.search.engine.signals import SearchInterrupted, SignalGuard
from trellis.tracking import schema

SLOW = {
    "space": {"x": {"low": 0.0, "high": 1.0}, "seconds": 0.5},
    "trial": {"function": "trellis.examples.synthetic:slow"},
}


def _write(tmp_path, store, **changes):
    raw = {**BASE, **SLOW, "tracking": {"uri": store, "experiment": "probe"}, **changes}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(json.loads(json.dumps(raw))))


def test_resume_is_refused_while_the_search_runs_and_after_it_completed(tmp_path, store, client):
    _write(tmp_path, store, termination={"max_trials": 30})
    proc = _cli("search", "run", "s.yaml", "--quiet", cwd=tmp_path)
    search_id = proc.stdout.readline().split()[1]
    time.sleep(3)
    resumed = _cli("search", "resume", search_id[:8], "--tracking-uri", store, "--quiet", cwd=tmp_path)
    out, _ = resumed.communicate(timeout=60)
    assert resumed.returncode == 2 and "is running" in out and "stop it first" in out
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert len(child_runs(client, search_id)) < 30  # the refused resume ran nothing
    done = run_search(load_config(tmp_path / "s.yaml", {"termination.max_trials": 1}))
    with pytest.raises(ResumeError, match="already completed"):
        check_resumable(client, done.search_id)


def test_a_signal_right_after_the_start_closes_every_run(tmp_path, store, client):
    _write(tmp_path, store, termination={"max_trials": 8}, executor={"kind": "local", "workers": 4})
    proc = _cli("search", "run", "s.yaml", "--quiet", cwd=tmp_path)
    line = proc.stdout.readline()
    while not line.startswith("search "):  # past the warning about more workers than CPUs
        line = proc.stdout.readline()
    search_id = line.split()[1]
    proc.send_signal(signal.SIGINT)  # while the workers are still being spawned
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in out
    assert client.get_run(search_id).info.status == "KILLED"
    assert all(r.info.status != "RUNNING" for r in child_runs(client, search_id))


def test_signals_while_closing_are_noted_not_raised():
    guard = SignalGuard(defer=False)
    with pytest.raises(SearchInterrupted):
        guard.handle(signal.SIGTERM, None)
    closing = SignalGuard(defer=False)
    closing.closing()
    closing.handle(signal.SIGTERM, None)  # the search is closing its runs: only noted
    assert closing.fired == ["SIGTERM"]


def test_a_signal_while_workers_start_waits_for_them_then_ends_the_search():
    guard = SignalGuard(defer=False)
    started = []
    with pytest.raises(SearchInterrupted), guard.held():
        guard.handle(signal.SIGINT, None)  # noted, not raised: the block runs to its end
        started.append("workers")
    assert started == ["workers"] and not guard.deferred


def test_a_non_utf8_byte_from_a_script_does_not_end_the_trial(make_config, tmp_path):
    script = tmp_path / "binary.py"
    script.write_text(
        "import sys\nsys.stdout.buffer.write(b'\\xff\\xfe garbage\\n'); sys.stdout.flush()\n"
        'print(\'TRELLIS {"step": 1, "loss": 0.2}\', flush=True)\n'
    )
    result = run_search(make_config(trial={"script": str(script)}, termination={"max_trials": 1}))
    runs = child_runs(MlflowClient(tracking_uri=result.tracking_uri), result.search_id)
    assert runs[0].info.status == "FINISHED" and runs[0].data.metrics["loss"] == 0.2


def test_file_stores_and_binary_configs_are_one_line(tmp_path):
    for uri in ("file:///tmp/x", str(tmp_path)):
        done = subprocess.run([sys.executable, "-m", "trellis.cli", "bounds", "--experiment", "e", "--metric", "m",
                               "--tracking-uri", uri], capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 2 and "file store" in done.stderr and "Traceback" not in done.stderr
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"name: \xff\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(binary)
    assert schema.HEARTBEAT.startswith("trellis.")
