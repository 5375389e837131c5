"""The search-space analysis: computed once per run state by all threads and worker processes, shared as plain
data through the run cache's store (never a pickle), the same report everywhere."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from benchmarks.load_runs import build_store
from trellis.app.context import REPORT, SURROGATE
from trellis.app.shared_results import PLAIN, Pending, SharedResults, decode, encode
from trellis.search.analysis.fanova import FastFANOVA
from trellis.search.analysis.marginals import MAX_PAIRS, PAIR_POINTS, POINTS, Marginals
from trellis.search.analysis.report import SpaceReport, active_masks, analyse
from trellis.tracking.cache import DiskBackend, MemoryBackend, RedisBackend
from trellis.tracking.reader import read_runs

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reports")
    uri, exp = build_store(folder / "runs.db", 300)
    return uri, exp, read_runs(uri, [exp])


def test_a_report_round_trips_as_plain_data_with_the_forests_marginals(runs):
    _, _, table = runs
    report = analyse(table, table.trials, "accuracy", "max")
    assert isinstance(report.marginals, Marginals)
    # the same forest as the analysis' (same runs, trees and seed), asked directly
    forest = FastFANOVA(report.data.X, report.data.y, report.data.names, n_trees=64, seed=0,
                        active=active_masks(table.trials, report.data))  # fmt: skip
    back = decode(encode(report, REPORT), REPORT)
    assert back is not None
    assert SpaceReport.from_plain(report.to_plain()) is not None  # no codec but the report's own
    assert back.refined_yaml == report.refined_yaml and back.problem is None
    assert back.importance == report.importance and back.bounds == report.bounds
    assert back.run_ids == report.run_ids and back.order == report.order
    assert back.data.names == report.data.names and back.data.notes == report.data.notes
    assert [a.categories for a in back.data.axes] == [a.categories for a in report.data.axes]
    np.testing.assert_array_equal(back.data.X, report.data.X)
    for name in report.data.names:  # what the page's detail plot asks for, as the forest answers it
        mean, std = forest.marginal(name, POINTS)
        np.testing.assert_allclose(back.marginals.marginal(name)[0], mean)
        np.testing.assert_allclose(back.marginals.marginal(name)[1], std)
    np.testing.assert_array_equal(back.marginals.points, POINTS)
    ranked = sorted(report.importance.pair_mean, key=lambda p: -report.importance.pair_mean[p])
    assert set(back.marginals.pairs) == set(ranked[:MAX_PAIRS])  # what is kept depends on the analysis alone
    a, b = ranked[0]
    grid = forest.pair_marginal(a, b, PAIR_POINTS, PAIR_POINTS)
    np.testing.assert_allclose(back.marginals.pair_marginal(a, b), grid)
    np.testing.assert_allclose(back.marginals.pair_marginal(b, a), grid.T)


class Planted:
    """A pickle that would create a file when unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_a_planted_pickle_under_the_report_key_runs_nothing_and_is_a_miss(runs, tmp_path):
    _, _, table = runs
    backend = DiskBackend(str(tmp_path / "cache"))
    reports = SharedResults(backend, namespace="store")
    key = ("exp", "accuracy", "max")
    marker = tmp_path / "ran"
    evil = pickle.dumps(Planted(marker))
    for blob in (evil, b"trellis-space-report-1\n" + evil, b"trellis-space-report-1\n\x93garbage"):
        backend.set(reports.store_key(key), blob)
        assert decode(blob, REPORT) is None
    calls = []

    def compute():
        calls.append(1)
        return analyse(table, table.trials, "accuracy", "max")

    report = reports.get(key, compute, REPORT)
    assert calls == [1] and not marker.exists()
    assert report.importance is not None
    # the planted value was replaced by the real report, which a fresh worker reads without computing
    other = SharedResults(DiskBackend(str(tmp_path / "cache")), namespace="store")
    assert other.get(key, lambda: pytest.fail("computed again"), REPORT).refined_yaml == report.refined_yaml
    assert not marker.exists()


def _backend(kind: str, tmp_path: Path):
    if kind == "disk":
        return DiskBackend(str(tmp_path / "cache"))
    if kind == "memory":
        return MemoryBackend()
    redis = RedisBackend("redis://127.0.0.1:6379/15")
    if getattr(redis, "problem", lambda: None)() is not None:
        pytest.skip("Redis is not reachable at 127.0.0.1:6379: start it to run this")
    return redis


@pytest.mark.parametrize("kind", ["disk", "memory", "redis"])
def test_threads_asking_for_the_same_report_compute_it_once(runs, tmp_path, kind):
    _, _, table = runs
    reports = SharedResults(_backend(kind, tmp_path), namespace=f"threads-{time.time()}")
    calls, results = [], []
    start = threading.Barrier(8)

    def compute():
        calls.append(1)
        time.sleep(0.3)  # long enough for every thread to ask meanwhile
        return analyse(table, table.trials, "accuracy", "max")

    def ask():
        start.wait()
        results.append(reports.get(("same", "key"), compute, REPORT))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 8 and calls == [1]
    assert {r.refined_yaml for r in results} == {results[0].refined_yaml}


WORKER = """
import hashlib, os, sys, time
from pathlib import Path
from trellis.app.context import REPORT
from trellis.app.shared_results import SharedResults
from trellis.search.analysis.report import analyse
from trellis.tracking.cache import DiskBackend
from trellis.tracking.reader import read_runs

uri, exp, folder, go, counter = sys.argv[1:6]
table = read_runs(uri, [exp])
reports = SharedResults(DiskBackend(folder), namespace="processes")

def compute():
    with open(counter, "a") as f:
        f.write("computed\\n")
    time.sleep(1.0)  # the other process asks meanwhile
    return analyse(table, table.trials, "accuracy", "max")

Path(go + f".ready.{os.getpid()}").touch()
deadline = time.time() + 120
while not Path(go).exists() and time.time() < deadline:
    time.sleep(0.01)
report = reports.get(("same", "key"), compute, REPORT)
print("REPORT", hashlib.sha256(report.refined_yaml.encode()).hexdigest(), report.order)
"""


def test_two_worker_processes_compute_the_report_once_and_show_the_same(runs, tmp_path):
    uri, exp, _ = runs
    folder, go, counter = tmp_path / "cache", tmp_path / "go", tmp_path / "computed.txt"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, uri, exp, str(folder), str(go), str(counter)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    deadline = time.time() + 120
    while len(list(tmp_path.glob("go.ready.*"))) < 2 and time.time() < deadline:
        time.sleep(0.05)
    go.touch()  # both started: they ask at the same moment
    outputs = [w.communicate(timeout=180) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [err[-2000:] for _, err in outputs]
    reported = [line for out, _ in outputs for line in out.splitlines() if line.startswith("REPORT")]
    assert len(reported) == 2 and reported[0] == reported[1]
    assert counter.read_text().splitlines() == ["computed"]


# -- off the request path ---------------------------------------------------------------------------------


def test_a_slow_report_is_pending_at_once_then_ready_and_computed_once(runs, tmp_path):
    _, _, table = runs
    reports = SharedResults(DiskBackend(str(tmp_path / "cache")), namespace="soon")
    other_worker = SharedResults(DiskBackend(str(tmp_path / "cache")), namespace="soon")
    go, calls = threading.Event(), []

    def compute():
        calls.append(1)
        assert go.wait(60)
        return analyse(table, table.trials, "accuracy", "max")

    key = ("slow", "key")
    before = time.time()
    first = reports.get_soon(key, compute, REPORT, wait_s=0.2, runs=300)
    assert isinstance(first, Pending) and first.runs == 300 and first.previous is None
    assert before - 1 <= first.since <= time.time()
    # asked again meanwhile, by this worker and by another: still pending, since the same start, no second run
    again = reports.get_soon(key, compute, REPORT, wait_s=0.1, runs=300)
    elsewhere = other_worker.get_soon(key, lambda: pytest.fail("computed twice"), REPORT, wait_s=0.3, runs=300)
    assert isinstance(again, Pending) and again.since == first.since
    assert isinstance(elsewhere, Pending) and abs(elsewhere.since - first.since) < 1.0
    go.set()
    done = reports.get_soon(key, compute, REPORT, wait_s=60, runs=300)
    assert not isinstance(done, Pending) and done.importance is not None and calls == [1]
    shared = other_worker.get_soon(key, lambda: pytest.fail("computed twice"), REPORT, wait_s=60, runs=300)
    assert not isinstance(shared, Pending) and shared.refined_yaml == done.refined_yaml


def test_a_failed_background_report_says_so_and_the_next_ask_computes_again(runs, tmp_path):
    _, _, table = runs
    reports = SharedResults(MemoryBackend(), namespace="fails")
    calls = []

    def compute():
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("the store went away")
        return analyse(table, table.trials, "accuracy", "max")

    with pytest.raises(ValueError, match="store went away"):
        reports.get_soon(("k",), compute, REPORT, wait_s=30)
    report = reports.get_soon(("k",), compute, REPORT, wait_s=60)
    assert not isinstance(report, Pending) and report.importance is not None and calls == [1, 1]


def test_one_cache_holds_reports_surrogates_and_plugin_data_each_by_its_own_plain_form(runs, tmp_path):
    """Three kinds of result in one store: each read back by its codec; under another kind's key, a miss."""
    from trellis.search.analysis.surrogate import fit_surrogate

    _, _, table = runs
    results = SharedResults(DiskBackend(str(tmp_path / "cache")), namespace="kinds")
    report = results.get(("report",), lambda: analyse(table, table.trials, "accuracy", "max"), REPORT)
    surrogate = results.get(("surrogate",), lambda: fit_surrogate(report.data), SURROGATE)
    results.get(("plugin",), lambda: {"runs": len(table.trials), "names": ["a", "b"]}, PLAIN)
    fresh = SharedResults(DiskBackend(str(tmp_path / "cache")), namespace="kinds")
    never = lambda: pytest.fail("computed again")  # noqa: E731
    assert fresh.get(("report",), never, REPORT).refined_yaml == report.refined_yaml
    assert fresh.get(("surrogate",), never, SURROGATE).to_plain() == surrogate.to_plain()
    assert fresh.get(("plugin",), never, PLAIN) == {"runs": 300, "names": ["a", "b"]}
    blob = fresh.backend.get(fresh.store_key(("plugin",)))
    assert decode(blob, REPORT) is None and decode(blob, SURROGATE) is None
    assert decode(pickle.dumps({"runs": 1}), PLAIN) is None
