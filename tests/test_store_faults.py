"""A write the store refuses is isolated to its run; a store that is briefly unavailable is waited out."""

import contextlib
import shutil
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import child_runs
from trellis.search.engine.runner import run_search
from trellis.tracking import schema
from trellis.tracking.retry import StoreUnavailable, is_transient
from trellis.tracking.writer import SearchRecorder, ensure_experiment

CONFIG = {
    "name": "s",
    "algorithm": {"name": "random"},
    "objective": {"metric": "loss", "direction": "min"},
    "executor": {"kind": "local", "workers": 1},
    "budget": {"max": 1},
}


def _recorder(uri: str, **kwargs) -> SearchRecorder:
    client = MlflowClient(tracking_uri=uri)
    recorder = SearchRecorder(client, ensure_experiment(client, "faults"), **kwargs)
    recorder.start_search(CONFIG, {schema.TYPE: "search"})
    return recorder


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_refused_write_fails_only_its_run(tmp_path, request, kind):
    """Data that bypassed the report checks (here written straight to the recorder) and that the store refuses:
    a step beyond SQLite's integers, a key beyond PostgreSQL's varchar(250)."""
    uri = f"sqlite:///{tmp_path / 'f.db'}" if kind == "sqlite" else request.getfixturevalue("pg_uri")
    recorder = _recorder(uri)
    good = recorder.start_trial(0, {"x": 0.1}, {schema.TYPE: "trial"}, time.time())
    bad = recorder.start_trial(1, {"x": 0.2}, {schema.TYPE: "trial"}, time.time())
    recorder.log_metrics(good, 1, {"loss": 0.5}, time.time())
    recorder.log_metrics(bad, 10**30 if kind == "sqlite" else 1, {"k" * 1000 if kind != "sqlite" else "loss": 1.0},
                         time.time())  # fmt: skip
    recorder.end_trial(good, "FINISHED", {schema.END_REASON: "completed"})
    recorder.flush()
    refused = recorder.take_refused()
    assert list(refused) == [bad] and "refused" in refused[bad]
    client = MlflowClient(tracking_uri=uri)
    assert client.get_run(good).info.status == "FINISHED"
    assert [m.value for m in client.get_metric_history(good, "loss")] == [0.5]
    bad_run = client.get_run(bad)
    assert bad_run.info.status == "FAILED" and bad_run.data.tags[schema.ERROR].startswith("the tracking store")
    recorder.end_search("FINISHED", {})  # the search goes on writing
    assert client.get_run(recorder.search_run_id).info.status == "FINISHED"


def _hold_lock(db: str, seconds: float, started: threading.Event, release: threading.Event | None = None) -> None:
    conn = sqlite3.connect(db, timeout=60, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    started.set()
    (release or threading.Event()).wait(seconds)
    conn.execute("COMMIT")
    conn.close()


def test_a_search_waits_out_a_30_s_lock(make_config, store, monkeypatch):
    monkeypatch.setenv("TRELLIS_STORE_RETRY_S", "120")
    config = make_config(
        trial={"function": "trellis.examples.synthetic:slow"},
        space={"x": {"type": "float", "low": 0.0, "high": 1.0}, "seconds": 0.3},
        termination={"max_trials": 12},
        budget={"max": 3},
    )
    db = store[len("sqlite:///") :]
    started = threading.Event()
    locker = threading.Thread(target=_hold_lock, args=(db, 30.0, started))

    def lock_once_going(p) -> None:  # mid-search: two trials done, others running
        if p.completed >= 2 and not locker.is_alive() and not started.is_set():
            locker.start()
            started.wait()

    result = run_search(config, on_progress=lock_once_going)
    locker.join()
    assert started.is_set()
    client = MlflowClient(tracking_uri=store)
    runs = child_runs(client, result.search_id)
    assert result.state == "completed" and len(runs) == 12
    assert all(r.info.status == "FINISHED" for r in runs)
    assert all(len(client.get_metric_history(r.info.run_id, "loss")) == 3 for r in runs)  # no report lost
    assert client.get_run(result.search_id).info.status == "FINISHED"


def test_a_store_down_past_the_window_raises_store_unavailable(tmp_path, monkeypatch):
    """MLflow's SQLite sessions wait 20 s for a lock themselves: two failed tries, then the 1 s window is over."""
    monkeypatch.setenv("TRELLIS_STORE_RETRY_S", "1")
    db = tmp_path / "down.db"
    recorder = _recorder(f"sqlite:///{db}", flush_interval=0.0)
    run = recorder.start_trial(0, {"x": 0.1}, {schema.TYPE: "trial"}, time.time())
    recorder.log_metrics(run, 1, {"loss": 0.5}, time.time())
    started, release = threading.Event(), threading.Event()
    locker = threading.Thread(target=_hold_lock, args=(str(db), 120.0, started, release))
    locker.start()
    started.wait()
    try:
        with pytest.raises(StoreUnavailable):
            recorder.flush()
    finally:
        release.set()
        locker.join()
    recorder.flush()  # once given up, one more try without waiting: the store is back, nothing was lost
    assert [m.value for m in MlflowClient(tracking_uri=f"sqlite:///{db}").get_metric_history(run, "loss")] == [0.5]


def test_transient_errors_are_told_apart():
    assert is_transient(RuntimeError("(sqlite3.OperationalError) database is locked"))
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as inner:
            raise ValueError("write failed") from inner
    except ValueError as outer:
        assert is_transient(outer)
    assert not is_transient(OverflowError("Python int too large to convert to SQLite INTEGER"))
    assert not is_transient(ValueError("value too long for type character varying(250)"))


def test_a_search_rides_out_a_postgresql_restart(make_config, monkeypatch):
    from tests.own_postgres import OwnPostgres, available

    if (why := available()) is not None:
        pytest.skip(why)
    monkeypatch.setenv("TRELLIS_STORE_RETRY_S", "120")
    folder = Path(tempfile.mkdtemp(prefix="trellis-pg-"))  # under /tmp: the postgres user must reach it
    server = OwnPostgres(folder)
    server.init()
    try:
        config = make_config(
            trial={"function": "trellis.examples.synthetic:slow"},
            space={"x": {"type": "float", "low": 0.0, "high": 1.0}, "seconds": 0.3},
            termination={"max_trials": 10},
            budget={"max": 3},
            tracking={"uri": server.uri, "experiment": "restart"},
        )
        restarted = threading.Event()

        def restart() -> None:
            server.stop()
            time.sleep(8)
            server.start()
            restarted.set()

        restarter = threading.Thread(target=restart)

        def restart_once_going(p) -> None:
            if p.completed >= 2 and not restarter.is_alive() and not restarted.is_set():
                restarter.start()

        result = run_search(config, on_progress=restart_once_going)
        restarter.join()
        assert restarted.is_set()
        client = MlflowClient(tracking_uri=server.uri)
        runs = child_runs(client, result.search_id)
        assert result.state == "completed" and len(runs) == 10
        assert all(r.info.status == "FINISHED" for r in runs), [r.data.tags.get(schema.ERROR) for r in runs]
        assert all(len(client.get_metric_history(r.info.run_id, "loss")) == 3 for r in runs)
    finally:
        with contextlib.suppress(Exception):
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)
