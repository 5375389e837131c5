"""The app under faults, through real HTTP requests: the store down (the test's own PostgreSQL stopped and
started again, a SQLite lock held and released), Redis down, a gunicorn worker killed mid-request. Every page
answers 200 with the reason on the page, and works again without a restart."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.browser import click, console_errors, find_browser, free_port, gunicorn_app, make_driver, wait
from tests.conftest import ROOT, module_store
from tests.test_control_page import callback_payload
from trellis.app.factory import create_app

EXPERIMENT = "faults"
N_RUNS = 4


def log_runs(uri: str) -> str:
    """A few finished runs with a parameter and a metric; returns the experiment id."""
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment(EXPERIMENT)
    for i in range(N_RUNS):
        run = client.create_run(experiment_id, run_name=f"r{i}")
        client.log_param(run.info.run_id, "x", i / 10)
        client.log_metric(run.info.run_id, "loss", 1.0 - i / 10, step=0)
        client.set_terminated(run.info.run_id)
    return experiment_id


def wait_for(condition, timeout: float = 90.0, every: float = 0.25, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def find(tree, component_id: str):
    """The component with ``component_id`` in a Dash JSON tree, or None."""
    if isinstance(tree, dict):
        if tree.get("props", {}).get("id") == component_id:
            return tree
        return next((f for f in map(lambda v: find(v, component_id), tree.values()) if f is not None), None)
    if isinstance(tree, list):
        return next((f for f in map(lambda v: find(v, component_id), tree) if f is not None), None)
    return None


class Page:
    """A browser's view of the app: its callbacks posted as the renderer posts them, for one experiment."""

    def __init__(self, post_json, deps: list[dict], experiment_id: str) -> None:
        self.post_json = post_json  # (payload) -> (status, body bytes)
        self.deps = deps
        self.selection = {"experiments": [experiment_id], "searches": []}

    def call(self, trigger: str, values: dict, output: str = "") -> tuple[int, dict]:
        status, body = self.post_json(callback_payload(self.deps, trigger, values, output))
        return status, (json.loads(body) if status == 200 else {"raw": body[:2000]})

    def render(self) -> tuple[int, dict]:
        values = {"selection.data": self.selection, "ov-objective.value": "loss", "ov-objective-dir.value": "min",
                  "ov-x-dir.value": "min", "ov-y-dir.value": "min"}  # fmt: skip
        return self.call("selection.data", values, "ov-counts")

    def sync(self) -> tuple[int, dict]:
        exp = self.selection["experiments"][0]
        values = {"url.search": f"?exp={exp}", "selection.data": {"experiments": [], "searches": []}}  # as at load
        return self.call("url.search", values, "exp-picker.value")

    def curves(self) -> tuple[int, dict]:
        return self.call("selection.data", {"selection.data": self.selection}, "cv-metrics.options")

    def space(self) -> tuple[int, dict]:
        return self.call("selection.data", {"selection.data": self.selection}, "sp-metric.options")

    def control(self) -> tuple[int, dict]:
        return self.call("selection.data", {"selection.data": self.selection}, "ctl-table.data")

    def health(self, was_down: bool, clicks: int = 0) -> tuple[int, dict]:
        return self.call("health-tick.n_intervals", {"health-tick.n_intervals": 1, "store-down.data": was_down,
                                                      "reload.n_clicks": clicks})  # fmt: skip


def runs_shown(answer: dict) -> str | None:
    """The overview's run count in a render answer (None when the answer carries no counts)."""
    counts = answer.get("response", {}).get("ov-counts", {}).get("children")
    total = find(counts, "ov-total")
    return total["props"]["children"] if total else None


def store_alert(answer: dict) -> str:
    """The status-line text a callback answer sets (empty when it sets none)."""
    status = answer.get("sideUpdate", {}).get("trellis-status", {}).get("children")
    if status is None:
        status = answer.get("response", {}).get("trellis-status", {}).get("children")
    alert = find(status, "store-down-alert")
    return json.dumps(alert) if alert else ""


def flask_page(app, experiment_id: str) -> tuple[Page, object]:
    client = app.server.test_client()

    def post(payload):
        response = client.post("/_dash-update-component", json=payload)
        return response.status_code, response.data

    return Page(post, client.get("/_dash-dependencies").get_json(), experiment_id), client


# -- the store down: the test's own PostgreSQL, stopped and started again -------------------------------------


@pytest.fixture(scope="module")
def own_pg():
    from tests.own_postgres import own_server

    with own_server() as server:
        yield server, log_runs(server.uri)


def test_postgresql_stopped_then_started_pages_say_so_and_recover(own_pg, tmp_path):
    server, experiment_id = own_pg
    app = create_app(server.uri, cache=str(tmp_path / "cache"))
    page, client = flask_page(app, experiment_id)
    status, answer = page.render()
    assert status == 200 and runs_shown(answer) == str(N_RUNS)

    server.stop()
    try:
        # The page itself opens (no 404 "no experiment", no 500), and its layout says why it is empty.
        assert client.get(f"/?exp={experiment_id}").status_code == 200
        layout = client.get("/_dash-layout")
        assert layout.status_code == 200
        alert = json.dumps(find(layout.get_json(), "store-down-alert"))
        assert f"127.0.0.1:{server.port}" in alert and "not answering" in alert
        assert find(layout.get_json(), "health-tick")["props"]["interval"] == 3000  # asks again soon
        # Every page's callbacks: a 200 carrying the reason in the status line, never "Runs 0".
        for name, call in [("sync", page.sync), ("overview", page.render), ("curves", page.curves),
                           ("space", page.space), ("control", page.control)]:  # fmt: skip
            status, answer = call()
            assert status == 200, (name, answer)
            text = store_alert(answer)
            assert "not answering" in text and f"127.0.0.1:{server.port}" in text, (name, answer)
            assert "refused" in text.lower() or "connect" in text.lower(), text
            assert runs_shown(answer) is None  # the page's own outputs stay as they were: no empty counts
        status, answer = page.health(was_down=True)
        assert status == 200 and store_alert(answer) and answer["response"]["store-down"]["data"] is True
        assert "reload" not in answer["response"]  # nothing to reload yet
    finally:
        server.start()

    # Back: the status check clears the message and presses Reload, and the pages show the runs again.
    def recovered():
        status, answer = page.health(was_down=True, clicks=2)
        return answer if status == 200 and answer["response"]["store-down"]["data"] is False else None

    answer = wait_for(recovered, what="the status check to see the store again")
    assert store_alert(answer) == "" and answer["response"]["reload"]["n_clicks"] == 3
    assert {"label": EXPERIMENT, "value": experiment_id} in answer["response"]["exp-picker"]["options"]
    assert answer["response"]["health-tick"]["interval"] == 30_000
    status, answer = page.render()
    assert status == 200 and runs_shown(answer) == str(N_RUNS) and store_alert(answer) == ""
    status, answer = page.control()
    assert status == 200 and store_alert(answer) == ""
    assert find(client.get("/_dash-layout").get_json(), "store-down-alert") is None


def test_a_tracking_server_that_is_down_is_said_within_seconds(monkeypatch, tmp_path):
    """An http:// store with nothing listening (a server down): with the app process' MLflow retry settings
    (app/wsgi.py), the page answers at once with the reason instead of after MLflow's minutes of retries."""
    from trellis.app.health import fail_fast_over_http

    settings: dict[str, str] = {}
    fail_fast_over_http(settings)
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    uri = f"http://127.0.0.1:{free_port()}"
    app = create_app(uri, cache=str(tmp_path / "cache"))
    page, client = flask_page(app, "1")
    layout = client.get("/_dash-layout")
    assert layout.status_code == 200 and "Connection refused" in json.dumps(find(layout.get_json(), "store-down-alert"))
    for call in (page.render, page.control):
        status, answer = call()
        assert status == 200 and uri in store_alert(answer) and "Connection refused" in store_alert(answer)
    status, answer = page.health(was_down=True)
    assert status == 200 and answer["response"]["store-down"]["data"] is True


def test_a_database_that_hangs_is_said_not_waited_on(tmp_path):
    """A PostgreSQL address that accepts connections and never answers (a hung server): the page answers 200
    with the reason once the connect timeout passes (10 s by default in tracking/sql.py; 2 s here, as a URI may
    set it), not when the OS gives up (minutes, past gunicorn's worker timeout)."""
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        uri = f"postgresql://postgres@127.0.0.1:{silent.getsockname()[1]}/trellis?connect_timeout=2"
        page, _ = flask_page(create_app(uri, cache=str(tmp_path / "cache")), "1")
        status, answer = page.render()
    assert status == 200 and "timeout expired" in store_alert(answer)


@pytest.mark.skipif(find_browser() is None, reason="Debian's chromium and chromium-driver are not installed")
def test_in_a_browser_a_store_outage_is_shown_and_the_page_comes_back_by_itself(own_pg, tmp_path):
    """What a user sees, in headless chromium against gunicorn: an open page notices the outage at its next
    live tick, a page opened during it says why it is empty, and both fill in again once the store is back,
    with the link's experiments kept (no reload, no restart)."""
    from selenium.webdriver.common.by import By

    server, experiment_id = own_pg
    env = {"TRELLIS_TRACKING_URI": server.uri, "TRELLIS_CACHE": str(tmp_path / "cache")}

    def shown(driver, element_id: str) -> str:
        found = driver.find_elements(By.ID, element_id)
        return found[0].text if found else ""

    driver = make_driver()
    try:
        with gunicorn_app(tmp_path, env) as base:
            driver.get(f"{base}/?exp={experiment_id}")
            wait(driver, lambda d: shown(d, "ov-total") == str(N_RUNS), 60)
            server.stop()
            try:
                wait(driver, lambda d: "not answering" in shown(d, "trellis-status"), 60)
                assert shown(driver, "ov-total") == str(N_RUNS)  # what the page showed stays
                driver.get(f"{base}/space?exp={experiment_id}")  # opened during the outage
                wait(driver, lambda d: "not answering" in shown(d, "trellis-status"), 60)
                assert f"127.0.0.1:{server.port}" in shown(driver, "trellis-status")
            finally:
                server.start()
            wait(driver, lambda d: shown(d, "trellis-status") == "", 60)
            wait(driver, lambda d: "loss" in shown(d, "sp-metric"), 60)  # the space page filled in by itself
            assert f"exp={experiment_id}" in driver.current_url
            click(driver, "nav-overview")
            wait(driver, lambda d: shown(d, "ov-total") == str(N_RUNS), 60)
            assert console_errors(driver) == []  # no callback answered with an error
    finally:
        driver.quit()


# -- SQLite locked ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory):
    folder, uri = module_store(tmp_path_factory, "faults-sqlite")
    with contextlib.chdir(folder):
        experiment_id = log_runs(uri)
    return folder, uri, experiment_id


def test_a_locked_sqlite_store_is_said_and_the_page_recovers(sqlite_store, tmp_path):
    folder, uri, experiment_id = sqlite_store
    app = create_app(uri, cache=str(tmp_path / "cache"))
    page, _ = flask_page(app, experiment_id)
    assert runs_shown(page.render()[1]) == str(N_RUNS)
    lock = sqlite3.connect(folder / "mlruns.db", isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")  # another process writing for a long time: readers are refused
    try:
        status, answer = page.render()  # waits SQLite's busy timeout, then says so
        assert status == 200 and "database is locked" in store_alert(answer)
        assert runs_shown(answer) is None
        status, answer = page.health(was_down=True)
        assert status == 200 and answer["response"]["store-down"]["data"] is True
    finally:
        lock.execute("COMMIT")
        lock.close()
    status, answer = page.health(was_down=True)
    assert status == 200 and answer["response"]["store-down"]["data"] is False and answer["response"]["reload"]
    status, answer = page.render()
    assert status == 200 and runs_shown(answer) == str(N_RUNS) and store_alert(answer) == ""


# -- Redis down ------------------------------------------------------------------------------------------------


class OwnRedis:
    """A redis-server of the test's own on a free loopback port (the machine's one at 6379 is never touched)."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        wait_for(lambda: self._answers(client), what="redis-server to answer")

    def _answers(self, client) -> bool:
        try:
            return bool(client.ping())
        except Exception:
            assert self.process.poll() is None, "redis-server exited"
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def keys(self) -> list[bytes]:
        import redis

        return redis.Redis(port=self.port, socket_connect_timeout=1).keys("trellis:runs:*")


def cache_note(tree) -> str:
    note = find(tree, "cache-down-note")
    return json.dumps(note) if note else ""


def test_redis_down_falls_back_to_each_workers_cache_and_comes_back(sqlite_store, tmp_path, monkeypatch, caplog):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    _, uri, experiment_id = sqlite_store
    redis_server = OwnRedis(tmp_path)
    monkeypatch.setenv("TRELLIS_CACHE_RETRY_S", "1")
    try:
        with caplog.at_level(logging.WARNING, logger="trellis.tracking.cache"):
            app = create_app(uri, cache=redis_server.url)  # nothing listens there yet: the app still starts
        assert any("not answering" in r.getMessage() for r in caplog.records)
        page, client = flask_page(app, experiment_id)
        note = cache_note(client.get("/_dash-layout").get_json())
        assert f"127.0.0.1:{redis_server.port}" in note and "own cache" in note
        status, answer = page.render()
        assert status == 200 and runs_shown(answer) == str(N_RUNS) and store_alert(answer) == ""

        redis_server.start()  # Redis comes (back): used again after the retry interval, the note goes

        def shared():
            status, answer = page.health(was_down=False)
            return status == 200 and not cache_note(answer["response"]["trellis-status"]["children"])

        wait_for(shared, what="the cache note to go once Redis answers")
        app.trellis_context.cache._memory.clear()  # as a new worker: the entry comes from Redis or the store
        assert runs_shown(page.render()[1]) == str(N_RUNS)
        assert redis_server.keys(), "the run table was not shared through Redis once it answered"

        redis_server.kill()  # and down again, mid-session
        status, answer = page.render()
        assert status == 200 and runs_shown(answer) == str(N_RUNS)
        app.trellis_context.cache._memory.clear()
        status, answer = page.render()  # no shared entry to read: read from the store, still 200
        assert status == 200 and runs_shown(answer) == str(N_RUNS)
        status, answer = page.health(was_down=False)
        assert "own cache" in cache_note(answer["response"]["trellis-status"]["children"])
    finally:
        redis_server.kill()


# -- a gunicorn worker killed mid-request ---------------------------------------------------------------------


@contextlib.contextmanager
def gunicorn(env: dict[str, str], cwd: Path, log: Path):
    """The app under gunicorn with the repo's settings (app/gunicorn_conf.py), 2 workers, as tests/browser.py
    starts it; its access log names the worker (pid) that served each request."""
    port = free_port()
    with open(log, "w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "app" / "gunicorn_conf.py"), "-w", "2",
             "-b", f"127.0.0.1:{port}", "--access-logfile", "-", "--access-logformat", "served-by %(p)s %(U)s %(s)s",
             "trellis.app.wsgi:server"],
            cwd=cwd,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    def up():
        assert server.poll() is None, "gunicorn exited: " + log.read_text()[-3000:]
        try:
            return urllib.request.urlopen(base + "/_dash-dependencies", timeout=5).status == 200
        except OSError:
            return False

    try:
        wait_for(up, timeout=120, every=0.5, what="gunicorn to serve")
        yield server, port, base
    finally:
        server.terminate()
        server.wait(timeout=60)


def served_by(log: Path) -> set[int]:
    """The worker pids that answered a callback, from the access log."""
    lines = [line.split() for line in log.read_text().splitlines() if line.startswith("served-by ")]
    return {int(parts[1].strip("<>")) for parts in lines if parts[2] == "/_dash-update-component"}


def http_post(base: str, payload: dict, timeout: float = 120) -> tuple[int, bytes]:
    request = urllib.request.Request(
        base + "/_dash-update-component", json.dumps(payload).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_a_worker_killed_mid_request_the_next_request_works(sqlite_store, tmp_path):
    import psutil

    folder, uri, experiment_id = sqlite_store
    env = {"TRELLIS_TRACKING_URI": uri, "TRELLIS_CACHE": str(tmp_path / "cache")}
    log = tmp_path / "gunicorn.log"
    with gunicorn(env, folder, log) as (server, port, base):
        deps = json.loads(urllib.request.urlopen(base + "/_dash-dependencies", timeout=30).read())
        page = Page(lambda payload: http_post(base, payload), deps, experiment_id)
        workers = wait_for(lambda: len(psutil.Process(server.pid).children()) == 2 and psutil.Process(server.pid)
                           .children(), what="two workers")  # fmt: skip

        def warm() -> bool:  # every worker has served the control page once (booted, MLflow's client made)
            with ThreadPoolExecutor(4) as pool:
                assert all(status == 200 for status, _ in pool.map(lambda _: page.control(), range(4)))
            return served_by(log) >= {w.pid for w in workers}

        wait_for(warm, timeout=120, every=0.1, what="both workers to serve a request")
        assert runs_shown(page.render()[1]) == str(N_RUNS)

        def busy() -> list:
            """The workers holding a client connection: serving a request now."""
            return [
                w for w in workers
                if any(c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port for c in w.net_connections("tcp"))
            ]  # fmt: skip

        # Two requests in flight, one per worker: the control page's table reads through MLflow's client, which
        # waits up to 20 s for the lock held here.
        lock = sqlite3.connect(folder / "mlruns.db", isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        results: dict[int, object] = {}

        def request(n: int) -> None:
            try:
                results[n] = page.control()
            except Exception as exc:  # the killed worker's request: the connection drops
                results[n] = exc

        threads = [threading.Thread(target=request, args=(n,)) for n in range(2)]
        try:
            for t in threads:
                t.start()
            both = wait_for(lambda: len(busy()) == 2 and busy(), timeout=15, every=0.05, what="both workers busy")
            victim = both[0]
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=30)
        finally:
            lock.execute("COMMIT")
            lock.close()
        for t in threads:
            t.join(timeout=120)
        failed = [r for r in results.values() if isinstance(r, Exception)]
        served = [r for r in results.values() if not isinstance(r, Exception)]
        assert len(failed) == 1, results  # the killed worker's request really was in flight
        assert len(served) == 1 and served[0][0] == 200
        # The user's next clicks work, whichever worker takes them; the master starts a new worker.
        for _ in range(4):
            status, answer = page.render()
            assert status == 200 and runs_shown(answer) == str(N_RUNS) and store_alert(answer) == ""
        status, answer = page.control()
        assert status == 200 and answer["response"]["ctl-table"]["data"] == []  # no Trellis searches here
        wait_for(lambda: len(psutil.Process(server.pid).children()) == 2, what="the master to replace the worker")
        assert victim.pid not in [c.pid for c in psutil.Process(server.pid).children()]
