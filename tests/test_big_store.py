"""Issue 28's stores and what is checked on them without timing anything: the fast store builder writes runs
MLflow reads as its own, a live refresh folded into a cached view equals a full read, and an analysis of a
sample agrees with the analysis of every run."""

import sqlite3

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from benchmarks.big_store import ISHIGAMI_SHARES, METRICS, PARAMS, append_runs, build_big_store, ishigami
from trellis.tracking.cache import RunCache
from trellis.tracking.reader import read_runs


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "runs.db"
    uri, exp, parent = build_big_store(path, 600, chunk=250)
    return uri, exp, parent, path


def test_the_builder_writes_runs_mlflow_reads_as_its_own(big):
    uri, exp, parent, _ = big
    runs = MlflowClient(tracking_uri=uri).search_runs([exp], max_results=1000)
    assert len(runs) == 601
    trial = next(r for r in runs if r.info.run_id != parent)
    assert set(trial.data.params) == set(PARAMS) and set(trial.data.metrics) == set(METRICS)
    assert trial.data.tags["mlflow.parentRunId"] == parent
    p = {k: float(trial.data.params[k]) for k in ("x1", "x2", "x3")}
    assert trial.data.metrics["loss"] == pytest.approx(ishigami(p["x1"], p["x2"], p["x3"]))
    fast, slow = read_runs(uri, [exp]), read_runs(uri, [exp], use_sql=False)
    pd.testing.assert_frame_equal(fast.runs, slow.runs)
    assert fast.int_params == {"units", "layers"} and fast.log_params == {"lr", "wd"}
    assert fast.numeric_params == set(PARAMS) - {"optimizer"}


def test_a_live_refresh_of_new_runs_equals_a_full_read(big):
    uri, exp, parent, path = big
    cache = RunCache(uri)
    before = cache.table([exp])
    conn = sqlite3.connect(path)
    append_runs(conn, exp, parent, 600, 120, seed=5)
    conn.execute("UPDATE runs SET status = 'RUNNING', end_time = NULL WHERE name = 'trial-700'")  # one still runs
    conn.commit()
    after = cache.table([exp])
    assert cache.stats["delta_reads"] == 1 and len(after.runs) == len(before.runs) + 120
    full = read_runs(uri, [exp])
    pd.testing.assert_frame_equal(after.runs, full.runs)
    for attr in ("params", "metrics", "numeric_params", "log_params", "int_params", "skipped", "declared_spaces"):
        assert getattr(after, attr) == getattr(full, attr), attr
    conn.execute("UPDATE runs SET status = 'FINISHED', end_time = start_time + 5000 WHERE name = 'trial-700'")
    conn.commit()
    conn.close()
    again = cache.table([exp])  # the running run ended: read again, in place
    assert cache.stats["delta_reads"] == 2
    pd.testing.assert_frame_equal(again.runs, read_runs(uri, [exp]).runs)
    assert again.runs.set_index("run_name").loc["trial-700", "status"] == "FINISHED"


def test_importance_of_a_sample_agrees_with_every_run_within_its_spread():
    """20k Ishigami runs: the forests on the page's 4000-run sample against the forests on all runs."""
    from trellis.search.analysis.fanova import FastFANOVA

    n, names = 20_000, ["x1", "x2", "x3"]
    unit = np.random.default_rng(11).uniform(size=(n, 3))
    x = -np.pi + 2 * np.pi * unit
    y = ishigami(x[:, 0], x[:, 1], x[:, 2])
    full = FastFANOVA(unit, y, names, n_trees=32, seed=0).importance(pairs=True)
    samples = []
    for seed in range(3):
        keep = np.sort(np.random.default_rng(seed).choice(n, 4000, replace=False))
        samples.append(FastFANOVA(unit[keep], y[keep], names, n_trees=32, seed=0).importance(pairs=True))
    for name in names:
        shares = np.array([s.single_mean[name] for s in samples])
        assert abs(shares.mean() - full.single_mean[name]) <= 0.02
        assert abs(shares - full.single_mean[name]).max() <= max(0.02, 3 * shares.std())
        assert abs(full.single_mean[name] - ISHIGAMI_SHARES[name]) <= 0.02  # and all runs: the known truth
    pair = ("x1", "x3")
    assert all(abs(s.pair_mean[pair] - full.pair_mean[pair]) <= 0.02 for s in samples)
