"""The dask executor: the same config gives the same results as the local executor, into SQLite and PostgreSQL."""

import contextlib
import os
import threading
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import child_runs, duplicate_steps
from trellis.search.engine.runner import run_search
from trellis.tracking import schema

distributed = pytest.importorskip("distributed")


def outcomes(client: MlflowClient, search_id: str) -> list[tuple]:
    return [
        (
            r.data.tags[schema.TRIAL_NUMBER],
            r.data.params,
            r.info.status,
            r.data.tags[schema.END_REASON],
            r.data.tags[schema.BUDGET_REACHED],
            round(r.data.metrics["loss"], 12),
            [
                (m.step, round(m.value, 12))
                for m in sorted(client.get_metric_history(r.info.run_id, "loss"), key=lambda m: m.step)
            ],
        )
        for r in child_runs(client, search_id)
    ]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_dask_local_cluster_matches_local_executor(make_config, client, tmp_path, request, backend):
    """Early stopping needs a decision after every report, so this also exercises the per-job decision queue."""
    uri = request.getfixturevalue("pg_uri") if backend == "postgresql" else f"sqlite:///{tmp_path / 'dask.db'}"
    common = dict(
        algorithm={"name": "grid", "points": 3},
        budget={"max": 4},
        termination={},
        space={"x": {"low": -1.0, "high": 1.0}, "y": {"low": -1.0, "high": 1.0}, "shape": "bowl"},
        early_stopping={"rule": "median", "step": 1, "min_trials": 2},
    )
    local = run_search(make_config(**common, executor={"kind": "local", "workers": 1}))
    art = (tmp_path / "art").as_uri()
    tracking = {"uri": uri, "experiment": "dask", "artifact_location": art}
    on_dask = run_search(make_config(**common, executor={"kind": "dask", "workers": 1}, tracking=tracking))
    assert on_dask.state == "completed" and on_dask.stop_reason == "exhausted"
    pg = MlflowClient(tracking_uri=uri)
    expected, got = outcomes(client, local.search_id), outcomes(pg, on_dask.search_id)
    assert len(got) == 9 and got == expected
    assert {r[3] for r in got} == {"completed", "early_stopped"}
    workers = {r.data.tags[schema.WORKER] for r in child_runs(pg, on_dask.search_id)}
    assert workers == {"dask:local-cluster"}


def test_dask_cluster_by_address_records_failures_with_their_stderr(make_config, client):
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        config = make_config(
            executor={"kind": "dask", "workers": 2, "address": cluster.scheduler_address},
            trial={"function": "trellis.examples.synthetic:crashy"},
            space={"x": {"low": 0.0, "high": 1.0}},
            termination={"max_trials": 8},
        )
        result = run_search(config)
    runs = child_runs(client, result.search_id)
    failed = [r for r in runs if r.info.status == "FAILED"]
    ok = [r for r in runs if r.info.status == "FINISHED"]
    assert len(runs) == 8 and failed and ok
    assert all(float(r.data.params["x"]) > 0.5 for r in failed) and all(float(r.data.params["x"]) <= 0.5 for r in ok)
    for run in failed:
        assert "synthetic failure" in run.data.tags[schema.ERROR]
        tail = Path(client.download_artifacts(run.info.run_id, schema.STDERR_ARTIFACT))
        assert "about to fail" in tail.read_text()
    assert {r.data.tags[schema.WORKER] for r in runs} == {f"dask:{cluster.scheduler_address}"}


def test_a_lost_worker_reruns_its_trial_in_a_new_run_never_logging_a_step_twice(make_config, client, store):
    """Dask re-executes the task of a worker that died mid-trial, from step 1: the runner ends the first run
    as killed (saying why) and logs the rerun in a new run tagged as a retry of the same trial (issue 25)."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        config = make_config(
            executor={"kind": "dask", "workers": 1, "address": cluster.scheduler_address},
            trial={"function": "trellis.examples.synthetic:slow"},
            space={"x": {"low": 0.0, "high": 1.0}, "seconds": {"type": "fixed", "value": 0.4}},
            budget={"min": 1, "max": 8},
            termination={"max_trials": 1},
        )
        killed = []

        def kill_its_worker() -> None:
            with distributed.Client(cluster.scheduler_address) as killer:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    busy = [w for w, keys in killer.processing().items() if keys]
                    runs = client.search_runs([client.get_experiment_by_name("t").experiment_id]) if busy else []
                    if busy and any(r.data.metrics.get("loss") is not None for r in runs):
                        with contextlib.suppress(Exception):  # the worker dies while answering
                            killer.run(os._exit, 1, workers=busy[:1])
                        killed.append(busy[0])
                        return
                    time.sleep(0.1)

        killer = threading.Thread(target=kill_its_worker)
        killer.start()
        result = run_search(config)
        killer.join(timeout=90)
    assert killed, "the test did not get to kill the worker"
    runs = child_runs(client, result.search_id)
    assert duplicate_steps(store) == []
    first, retry = sorted(runs, key=lambda r: r.info.start_time)
    assert first.info.status == "KILLED" and "worker was lost" in first.data.tags[schema.ERROR]
    assert first.data.tags[schema.RETRIED_BY] == first.data.tags[schema.TRIAL_NUMBER]
    assert retry.info.status == "FINISHED" and retry.data.tags[schema.RETRY_OF] == first.data.tags[schema.TRIAL_NUMBER]
    steps = sorted(m.step for m in client.get_metric_history(retry.info.run_id, "loss"))
    assert steps == list(range(1, 9))
    assert result.progress.completed == 1 and result.progress.killed == 0
