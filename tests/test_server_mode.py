"""Server mode, end to end: a real ``mlflow server`` on loopback over a fresh PostgreSQL database, with artifact
proxying. A Trellis search logs to it over HTTP in batches, a failed trial's stderr tail goes through the proxy,
the app reads the same runs from the database and through the server, and its links open the server's UI."""

from __future__ import annotations

import contextlib
import copy
import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from mlflow import MlflowClient

from tests.conftest import BASE, child_runs, fresh_pg_database
from trellis.app.factory import create_app
from trellis.search.config import parse_config
from trellis.search.engine.runner import run_search
from trellis.tracking import schema
from trellis.tracking.batch_writers import ClientWriter
from trellis.tracking.links import MLFLOW_NOTE, PUBLIC_URL_ENV, trellis_urls

APP_URL = "http://trellis.test:8050"
ACCESS = re.compile(r'"(GET|POST|PUT|PATCH|DELETE) (\S+) HTTP/[\d.]+" (\d{3})')
PER_ITEM = ("/runs/log-metric", "/runs/log-parameter", "/runs/set-tag")  # what an unbatched writer would call


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(condition, timeout_s: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.3)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    pytest.fail(f"{what} (waited up to {timeout_s:.0f} s)\n{tail}")


def _get(url: str, timeout: float = 30) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@dataclass
class Server:
    url: str
    db_uri: str
    artifacts: Path
    log: Path

    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request the server answered, from its access log."""
        text = self.log.read_text(errors="replace")
        return [(m, p.split("?", 1)[0], int(s)) for m, p, s in ACCESS.findall(text)]


@pytest.fixture(scope="module")
def database():
    """A fresh database on the machine's PostgreSQL (127.0.0.1:5432), dropped after the module."""
    with fresh_pg_database("trellis_server") as uri:
        yield uri


@pytest.fixture(scope="module")
def server(database, tmp_path_factory):
    """``mlflow server`` on a free loopback port: PostgreSQL backend, artifacts proxied into a temp folder."""
    folder = tmp_path_factory.mktemp("mlflow_server")
    port, log = _free_port(), folder / "server.log"
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
           "--backend-store-uri", database, "--serve-artifacts", "--artifacts-destination",
           str(folder / "artifacts"), "--workers", "1"]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=folder)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: _healthy(url), 180, "mlflow server did not come up", proc, log)
        yield Server(url, database, folder / "artifacts", log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def _healthy(url: str) -> bool:
    try:
        return _get(f"{url}/health", timeout=5)[0] == 200
    except OSError:  # not listening yet, or too busy starting to answer
        return False


@dataclass
class Logged:
    search_id: str
    experiment_id: str
    requests: list[tuple[str, str, int]]  # what the server answered while the search ran
    writes: list[list[tuple[str, int, int, int]]]  # per flush: (run id, params, tags, metrics) of each run
    folder: Path


@pytest.fixture(scope="module")
def logged(server, tmp_path_factory) -> Logged:
    """A grid search of three ``flaky`` trials (x = 0, 0.4, 0.8; the last raises after its four epochs) over
    HTTP, with the writer's flushes counted on the client side."""
    folder = tmp_path_factory.mktemp("search")
    raw = copy.deepcopy(BASE)
    raw.update(
        name="server-mode",
        space={"x": {"type": "float", "low": 0.0, "high": 0.8}},
        algorithm={"name": "grid", "points": 3},
        budget={"resource": "epochs", "min": 1, "max": 4},
        termination={},
        trial={"function": "trellis.examples.synthetic:flaky"},
        tracking={"uri": server.url, "experiment": "server-mode", "app_url": APP_URL},
    )
    writes: list[list[tuple[str, int, int, int]]] = []
    write = ClientWriter.write

    def counted(self, runs):
        writes.append([(r.run_id, len(r.params), len(r.tags), len(r.metrics)) for r in runs])
        return write(self, runs)

    before = len(server.requests())
    with pytest.MonkeyPatch.context() as mp, contextlib.chdir(folder):
        mp.setattr(ClientWriter, "write", counted)
        mp.delenv(PUBLIC_URL_ENV, raising=False)
        result = run_search(parse_config(raw))
    assert result.state == "completed", result
    expected = sum(1 for flush in writes for _, p, t, m in flush if p or t or m)
    batches = lambda: sum(1 for _, path, _ in server.requests()[before:] if path.endswith("/runs/log-batch"))  # noqa: E731
    _wait(lambda: batches() >= expected, 60, f"the server logged fewer than {expected} log-batch calls")
    exp = MlflowClient(tracking_uri=server.url).get_run(result.search_id).info.experiment_id
    return Logged(result.search_id, exp, server.requests()[before:], writes, folder)


def _trials(server: Server, logged: Logged):
    return child_runs(MlflowClient(tracking_uri=server.url), logged.search_id)


def test_a_search_logs_over_http_in_batches(server, logged):
    client = MlflowClient(tracking_uri=server.url)
    trials = _trials(server, logged)
    assert [(float(r.data.params["x"]), r.info.status) for r in trials] == [
        (0.0, "FINISHED"), (0.4, "FINISHED"), (0.8, "FAILED")
    ]  # fmt: skip
    for run in trials:  # every epoch of every trial arrived, the failed one's too
        assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")][:4] == [1, 2, 3, 4]
    assert client.get_run(logged.search_id).info.status == "FINISHED"

    calls = Counter(path.rsplit("/api/2.0/mlflow/", 1)[-1] for _, path, _ in logged.requests)
    refused = [(p, s) for _, p, s in logged.requests if s >= 400 and not p.endswith("/experiments/get-by-name")]
    assert not refused  # (the experiment is looked up before it is created: that 404 is expected)
    assert not [p for _, p, _ in logged.requests if p.endswith(PER_ITEM)], calls  # nothing written item by item
    values = sum(m for flush in logged.writes for *_, m in flush)
    runs_per_flush = [sum(1 for _, p, t, m in flush if p or t or m) for flush in logged.writes]
    # One log-batch request per run per flush (MLflow's REST API batches per run): exactly what the server got.
    assert calls["runs/log-batch"] == sum(runs_per_flush) > 0
    assert values >= 3 * 8 and calls["runs/log-batch"] < values / 2, (calls, values)  # many metrics per request
    assert len(logged.writes) < values  # and flushes are fewer than metric values


def test_a_failed_trials_stderr_tail_lands_through_the_proxy(server, logged, tmp_path):
    client = MlflowClient(tracking_uri=server.url)
    failed = next(r for r in _trials(server, logged) if r.info.status == "FAILED")
    assert client.get_experiment(logged.experiment_id).artifact_location.startswith("mlflow-artifacts:")
    uri = failed.info.artifact_uri
    assert uri.startswith("mlflow-artifacts:/"), uri
    relative = f"{uri[len('mlflow-artifacts:/') :].lstrip('/')}/{schema.STDERR_ARTIFACT}"
    # Downloaded from the server, by the client and by a plain GET of the proxy's route.
    tail = Path(client.download_artifacts(failed.info.run_id, schema.STDERR_ARTIFACT, str(tmp_path))).read_text()
    status, body = _get(f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{quote(relative)}")
    assert status == 200 and body.decode() == tail
    assert "about to fail for x=0.800 after 4 epochs" in tail and "RuntimeError: synthetic failure" in tail
    # Stored where the server keeps artifacts, uploaded through it; nothing written beside the search.
    assert (server.artifacts / relative).read_text() == tail
    assert any(m == "PUT" and "/mlflow-artifacts/artifacts/" in p for m, p, _ in logged.requests)
    assert not list(logged.folder.glob("**/stderr_tail.txt"))


def _table(app, logged: Logged) -> list[tuple]:
    view = app.trellis_context.view([logged.experiment_id], [logged.search_id])
    rows = view.trials.sort_values("run_id")
    return [(r["run_id"], r["status"], round(float(r["metrics.loss"]), 12)) for _, r in rows.iterrows()]


def _page(app, path: str, logged: Logged) -> int:
    query = f"exp={logged.experiment_id}&search={logged.search_id}"
    return app.server.test_client().get(path, query_string=query).status_code


def test_the_app_reads_the_same_runs_from_the_database_and_through_the_server(server, logged):
    direct = create_app(server.db_uri, mlflow_ui_url=server.url)
    served = create_app(server.url, mlflow_ui_url=server.url)
    rows = _table(direct, logged)
    assert rows == _table(served, logged)
    assert sorted(r.info.run_id for r in _trials(server, logged)) == [r[0] for r in rows]
    assert sorted(status for _, status, _ in rows) == ["FAILED", "FINISHED", "FINISHED"]
    for app in (direct, served):
        assert {_page(app, path, logged) for path in ("/", "/space", "/curves")} == {200}
        choices = {o["value"]: o["label"] for o in app.trellis_context.experiments()}
        assert choices[logged.experiment_id] == "server-mode"


def test_links_open_the_servers_ui_on_runs_it_has(server, logged):
    app = create_app(server.url, mlflow_ui_url=server.url)
    context = app.trellis_context
    trials = context.view([logged.experiment_id], [logged.search_id]).trials
    assert len(trials) == 3
    for _, row in trials.iterrows():
        link = context.run_link(row)
        assert link == f"{server.url}/#/experiments/{logged.experiment_id}/runs/{row['run_id']}"
        run_id = urlsplit(link).fragment.rsplit("/", 1)[-1]
        status, body = _get(f"{server.url}/api/2.0/mlflow/runs/get?run_id={run_id}")
        assert status == 200 and json.loads(body)["run"]["info"]["experiment_id"] == logged.experiment_id
    status, body = _get(f"{server.url}/")  # the UI the links open
    assert status == 200 and b"<html" in body.lower()
    layout = app.server.test_client().get("/_dash-layout").get_json()
    assert _component(layout, "nav-mlflow")["href"] == server.url  # the nav's MLflow UI link


def _component(tree, component_id: str) -> dict:
    """The props of the component with this id in a served Dash layout."""
    found = []

    def walk(node):
        if isinstance(node, list):
            for child in node:
                walk(child)
        elif isinstance(node, dict):
            props = node.get("props") if "namespace" in node else None
            if isinstance(props, dict):
                if props.get("id") == component_id:
                    found.append(props)
                for value in props.values():
                    walk(value)

    walk(tree)
    assert len(found) == 1, f"{component_id}: {len(found)} found"
    return found[0]


def test_runs_written_over_http_link_back_to_the_app(server, logged):
    client = MlflowClient(tracking_uri=server.url)
    urls = trellis_urls(APP_URL, logged.experiment_id, logged.search_id)
    for run in [client.get_run(logged.search_id), *_trials(server, logged)]:
        note = run.data.tags[MLFLOW_NOTE]
        assert all(f"]({url})" in note for url in urls.values()), note


def test_trellis_link_describes_an_experiment_through_the_server(server, logged, capsys):
    from trellis.cli import main

    client = MlflowClient(tracking_uri=server.url)
    client.set_experiment_tag(logged.experiment_id, MLFLOW_NOTE, "Team baseline.")
    args = ["link", "--experiment", "server-mode", "--tracking-uri", server.url, "--app-url", APP_URL]
    assert main(args) == 0 and main(args) == 0
    assert "already links" in capsys.readouterr().out
    note = client.get_experiment(logged.experiment_id).tags[MLFLOW_NOTE]
    assert note.startswith("Team baseline.\n\n") and note.count("Open in Trellis") == 1
    assert f"]({trellis_urls(APP_URL, logged.experiment_id)['overview']})" in note
