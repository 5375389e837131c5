"""The shared run cache: re-reads only what changed, and is shared between processes."""

import pandas as pd
import pytest
from mlflow import MlflowClient

from trellis.search.engine.runner import run_search
from trellis.tracking.cache import DiskBackend, RedisBackend, RunCache
from trellis.tracking.reader import read_runs


def _same(a, b):
    pd.testing.assert_frame_equal(a.runs, b.runs)
    assert (a.params, a.metrics, a.skipped) == (b.params, b.metrics, b.skipped)
    assert (a.numeric_params, a.log_params, a.int_params) == (b.numeric_params, b.log_params, b.int_params)
    assert a.declared_spaces == b.declared_spaces


def test_unchanged_is_a_hit_new_runs_are_folded_in(make_config, store, client, tmp_path):
    first = run_search(make_config(termination={"max_trials": 4}))
    exp = [first.experiment_id]
    cache = RunCache(store, DiskBackend(str(tmp_path / "cache")))
    t1 = cache.table(exp)
    assert cache.stats == {"hits": 0, "delta_reads": 0, "full_reads": 1}
    assert cache.table(exp) is t1 and cache.stats["hits"] == 1

    # New trials, and a run that is still running with a fresh metric: only those are read again.
    run_search(make_config(termination={"max_trials": 3}))
    running = client.create_run(first.experiment_id, run_name="live")
    client.log_metric(running.info.run_id, "loss", 1.0, step=1)
    t2 = cache.table(exp)
    assert cache.stats["delta_reads"] == 1 and cache.stats["full_reads"] == 1
    _same(t2, read_runs(store, exp))
    assert len(t2.runs) == len(t1.runs) + 1 + 3 + 1

    client.log_metric(running.info.run_id, "loss", 0.5, step=2)  # a running run logs again
    t3 = cache.table(exp)
    assert cache.stats["delta_reads"] == 2
    assert t3.runs.set_index("run_name").loc["live", "metrics.loss"] == 0.5
    _same(t3, read_runs(store, exp))

    client.delete_run(running.info.run_id)  # fewer runs: a full re-read
    t4 = cache.table(exp)
    assert cache.stats["full_reads"] == 2 and "live" not in set(t4.runs["run_name"])
    _same(t4, read_runs(store, exp))


def test_a_second_worker_reuses_the_shared_entry(make_config, store, tmp_path):
    result = run_search(make_config(termination={"max_trials": 3}))
    shared = str(tmp_path / "cache")
    RunCache(store, DiskBackend(shared)).table([result.experiment_id])
    other = RunCache(store, DiskBackend(shared))  # another gunicorn worker: empty memory, same folder
    table = other.table([result.experiment_id])
    assert other.stats == {"hits": 1, "delta_reads": 0, "full_reads": 0}
    _same(table, read_runs(store, [result.experiment_id]))


def test_redis_shared_store(make_config, store):
    redis_store = RedisBackend("redis://127.0.0.1:6379/15")
    if redis_store.problem() is not None:  # a Redis that does not answer is reported, never raised
        pytest.skip(f"Redis is not reachable at 127.0.0.1:6379 ({redis_store.problem()}): start it to run this")
    result = run_search(make_config(termination={"max_trials": 3}))
    RunCache(store, redis_store).table([result.experiment_id])
    other = RunCache(store, RedisBackend("redis://127.0.0.1:6379/15"))
    other.table([result.experiment_id])
    assert other.stats["hits"] == 1 and other.stats["full_reads"] == 0
    assert MlflowClient(tracking_uri=store).get_experiment(result.experiment_id) is not None


class _Planted:
    """A pickle that would create a file when unpickled: what an attacker with write access to the cache plants."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.path}",))


def test_a_planted_pickle_in_the_shared_cache_runs_nothing(make_config, store, tmp_path):
    import pickle

    result = run_search(make_config(termination={"max_trials": 3}))
    shared = DiskBackend(str(tmp_path / "cache"))
    cache = RunCache(store, shared)
    key = cache._key([result.experiment_id])
    marker = tmp_path / "owned"
    shared.set(key, pickle.dumps(_Planted(marker)))
    table = RunCache(store, shared).table([result.experiment_id])  # a fresh worker reads the planted entry
    assert not marker.exists()
    _same(table, read_runs(store, [result.experiment_id]))  # read from the store instead
    assert not shared.get(key).startswith(b"\x80")  # and the entry is plain data again


def test_a_pickle_planted_through_diskcaches_own_api_is_never_unpickled(make_config, store, tmp_path):
    """diskcache pickles objects it stores and unpickles them when read: a planted object must stay a miss, for
    the run cache, the shared results and a fresh app's first page view alike (issue 25)."""
    import diskcache

    from trellis.app.factory import create_app

    result = run_search(make_config(termination={"max_trials": 3}))
    folder = str(tmp_path / "cache")
    app = create_app(store, cache=folder)
    assert app.server.test_client().get(f"/?experiments={result.experiment_id}").status_code == 200
    app.trellis_context.view([result.experiment_id])  # the run cache now holds an entry
    marker = tmp_path / "owned"
    planted = diskcache.Cache(folder)
    keys = list(planted.iterkeys())
    assert keys  # something to overwrite
    for key in [*keys, "trellis:planted"]:
        planted.set(key, _Planted(marker))  # stored pickled by diskcache itself
    planted.close()
    shared = DiskBackend(folder)
    assert all(shared.get(key) is None for key in keys)
    fresh = create_app(store, cache=folder)
    assert fresh.server.test_client().get(f"/?experiments={result.experiment_id}").status_code == 200
    _same(fresh.trellis_context.view([result.experiment_id]).table, read_runs(store, [result.experiment_id]))
    assert not marker.exists()


def test_a_first_read_while_no_run_has_ended_is_refreshed_later(make_config, store, client):
    """The app opens on a store whose searches only just started: every end time is missing."""
    from trellis.search.control.queue import submit_search

    config = make_config(termination={"max_trials": 3})
    waiting = submit_search(config, launched_by="t")  # SCHEDULED, no end time
    exp = [client.get_run(waiting).info.experiment_id]
    cache = RunCache(store)
    assert len(cache.table(exp).runs) == 1
    result = run_search(config)  # runs start and end: read as a delta, not a crash
    table = cache.table(exp)
    assert cache.stats["delta_reads"] == 1
    _same(table, read_runs(store, exp))
    assert len(table.runs) == 1 + 1 + len(result.trials)
