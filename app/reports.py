"""The search-space analysis, computed once per run state and shared by every gunicorn worker and thread.

A report (fANOVA importance, marginals, suggested bounds) of a 10k-run experiment takes seconds. It is kept
in the same shared store as the run cache (a diskcache folder or Redis), as msgpack of plain values (numbers,
strings, lists; arrays as raw little-endian float64 bytes with their shape): reading it back never runs code,
and anything else under its key (an old pickle, a foreign or damaged value) is a miss. Whoever needs a
report first takes a lock entry in the store (diskcache ``add``, Redis ``SET NX EX``: atomic across
processes) and computes it; the others, threads of the same worker and other workers alike, wait for the
result and read it. A lock whose holder died expires (``LOCK_TTL_S``); a waiter that waited too long
computes the report itself. A store that does not answer (Redis down) leaves each worker on its own, still
computing once per worker.

A page never waits long for it: ``get_soon`` starts the computation on a background thread of the worker and
waits at most ``wait_s``; past that it answers ``Pending`` (when the computation started, how many runs) and
the page shows a progress line and asks again every second. Whichever worker a later request reaches finds
the shared result, or the same computation still going (the lock's entry says since when).

The forests themselves are not kept: the page's marginals (each parameter on ``POINTS``, each pair of the
importance rows on ``PAIR_POINTS``) are computed with the report and stand in for ``report.fanova``.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import msgpack
import numpy as np

from trellis.layouts.space import importance_rows
from trellis.search.analysis.bounds import SuggestedBounds
from trellis.search.analysis.design import AnalysisData, Axis
from trellis.search.analysis.fanova import FastFANOVA, Importance, decompose_tree
from trellis.search.analysis.report import SpaceReport
from trellis.tracking.cache import CacheBackend

log = logging.getLogger(__name__)
REPORT_MAGIC = b"trellis-space-report-1\n"
POINTS = np.linspace(0.0, 1.0, 81)  # where the page draws a parameter's marginal
PAIR_POINTS = POINTS[::4]  # and a pair's, on both axes
LOCK_TTL_S = 120.0  # a lock outlives its holder at most this long
WAIT_S = 150.0  # a waiter computes the report itself after this long
POLL_S = 0.1
# Reports computed off the request path; two at a time per worker process (the rest queue), so a burst of
# different analyses cannot take every core from the requests.
_BACKGROUND = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="trellis-report")


@dataclass(frozen=True)
class Pending:
    """A report being computed: since when (unix seconds, when its computation started), over how many runs,
    and the report it replaces (the same analysis before a run ended), shown meanwhile when there is one."""

    since: float
    runs: int
    previous: SpaceReport | None = None


# -- the marginals that stand in for the forest ------------------------------------------------------------


@dataclass
class Marginals:
    """Each parameter's marginal (mean and std over trees) on ``POINTS`` and each shown pair's on
    ``PAIR_POINTS``: what the page asks ``FastFANOVA.marginal`` and ``pair_marginal`` for."""

    names: list[str]
    single: dict[str, tuple[np.ndarray, np.ndarray]]
    pairs: dict[tuple[str, str], np.ndarray]

    def marginal(self, name: str, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if name not in self.single or not _same_grid(points, POINTS):
            raise KeyError(f"no precomputed marginal of {name!r} on these points")
        return self.single[name]

    def pair_marginal(self, a: str, b: str, pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
        if not (_same_grid(pa, PAIR_POINTS) and _same_grid(pb, PAIR_POINTS)):
            raise KeyError("no precomputed pair marginal on these points")
        if (a, b) in self.pairs:
            return self.pairs[(a, b)]
        return self.pairs[(b, a)].T


def _same_grid(points, grid: np.ndarray) -> bool:
    points = np.asarray(points, float)
    return points.shape == grid.shape and bool(np.allclose(points, grid))


def marginals_of(fan: FastFANOVA, importance: Importance) -> Marginals:
    """One pass over the trees: every parameter's marginal, and every pair the importance plot can show."""
    names = fan.names
    shown = [r.params for r in importance_rows(importance) if len(r.params) == 2]
    pairs = sorted({(min(names.index(a), names.index(b)), max(names.index(a), names.index(b))) for a, b in shown})
    curves: list[list[np.ndarray]] = [[] for _ in names]
    grids: dict[tuple[int, int], list[np.ndarray]] = {p: [] for p in pairs}
    for parts in fan.trees:
        dec = decompose_tree(parts, pairs, keep_pair_marginals=True)
        for i, ax in enumerate(dec.axes):
            k = np.clip(np.searchsorted(ax.edges, POINTS, side="right") - 1, 0, len(ax.widths) - 1)
            curves[i].append(dec.marginals[i][k])
        for i, j in pairs:
            ax_i, ax_j = dec.axes[i], dec.axes[j]
            ki = np.clip(np.searchsorted(ax_i.edges, PAIR_POINTS, side="right") - 1, 0, len(ax_i.widths) - 1)
            kj = np.clip(np.searchsorted(ax_j.edges, PAIR_POINTS, side="right") - 1, 0, len(ax_j.widths) - 1)
            grids[(i, j)].append(dec.pair_marginals[(i, j)][np.ix_(ki, kj)])
    single = {n: (np.mean(c, axis=0), np.std(c, axis=0)) for n, c in zip(names, curves)}
    return Marginals(list(names), single, {(names[i], names[j]): np.mean(g, axis=0) for (i, j), g in grids.items()})


def with_marginals(report: SpaceReport) -> SpaceReport:
    """The report as the page uses it: the forest replaced by its marginals (plain data, shareable)."""
    if isinstance(report.fanova, FastFANOVA) and report.importance is not None:
        report.fanova = marginals_of(report.fanova, report.importance)
    return report


# -- plain-data form -------------------------------------------------------------------------------------


def _array(a) -> dict:
    a = np.ascontiguousarray(np.asarray(a, dtype="<f8"))
    return {"shape": list(a.shape), "f8": a.tobytes()}


def _unarray(d: dict) -> np.ndarray:
    shape = [int(n) for n in d["shape"]]
    values = np.frombuffer(bytes(d["f8"]), dtype="<f8")
    return values.reshape(shape).copy()


def _plain(value):
    """A parameter value or category as msgpack takes it (numpy scalars to Python ones)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def encode_report(report: SpaceReport) -> bytes | None:
    """The report as msgpack of plain values; None when it holds something else (then it is not shared)."""
    d = report.data
    fan = report.fanova
    if fan is not None and not isinstance(fan, Marginals):
        return None
    imp, b = report.importance, report.bounds
    body = {
        "data": {
            "axes": [
                [a.name, a.kind, float(a.low), float(a.high), bool(a.log), [_plain(c) for c in a.categories]]
                for a in d.axes
            ],
            "X": _array(d.X),
            "y": _array(d.y),
            "run_ids": [str(r) for r in d.run_ids],
            "metric": d.metric,
            "direction": d.direction,
            "notes": [[str(k), int(v)] for k, v in d.notes.items()],
        },
        "marginals": None
        if fan is None
        else {
            "names": list(fan.names),
            "single": [[n, _array(m), _array(s)] for n, (m, s) in fan.single.items()],
            "pairs": [[a, b_, _array(g)] for (a, b_), g in fan.pairs.items()],
        },
        "importance": None
        if imp is None
        else {
            "names": list(imp.names),
            "single": [[n, float(imp.single_mean[n]), float(imp.single_std[n])] for n in imp.single_mean],
            "pairs": [[a, b_, float(m), float(imp.pair_std[(a, b_)])] for (a, b_), m in imp.pair_mean.items()],
            "n_trees_used": int(imp.n_trees_used),
        },
        "bounds": None
        if b is None
        else {
            "ranges": [[n, float(lo), float(hi)] for n, (lo, hi) in b.ranges.items()],
            "categories": [[n, [_plain(c) for c in cs]] for n, cs in b.categories.items()],
            "unit_ranges": [[n, float(lo), float(hi)] for n, (lo, hi) in b.unit_ranges.items()],
            "r2": None if b.r2 is None else float(b.r2),
            "r2_std": None if b.r2_std is None else float(b.r2_std),
            "n_runs": int(b.n_runs),
            "unimportant": [[n, _plain(v)] for n, v in b.unimportant.items()],
            "narrowed": bool(b.narrowed),
        },
        "refined_yaml": report.refined_yaml,
        "problem": report.problem,
        "run_ids": None if report.run_ids is None else [str(r) for r in report.run_ids],
    }
    try:
        return REPORT_MAGIC + msgpack.packb(body, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        log.warning("space report: not shared (%s)", exc)
        return None


def decode_report(blob: bytes | None) -> SpaceReport | None:
    """A shared report back, or None for anything that is not one (never an error, never code run)."""
    if not blob or not isinstance(blob, bytes) or not blob.startswith(REPORT_MAGIC):
        return None
    try:
        body = msgpack.unpackb(blob[len(REPORT_MAGIC) :], raw=False, strict_map_key=True)
        d = body["data"]
        data = AnalysisData(
            [Axis(str(n), str(k), float(lo), float(hi), bool(lg), list(cs)) for n, k, lo, hi, lg, cs in d["axes"]],
            _unarray(d["X"]),
            _unarray(d["y"]),
            [str(r) for r in d["run_ids"]],
            str(d["metric"]),
            str(d["direction"]),
            {str(k): int(v) for k, v in d["notes"]},
        )
        m = body["marginals"]
        fan = (
            None
            if m is None
            else Marginals(
                [str(n) for n in m["names"]],
                {str(n): (_unarray(mean), _unarray(std)) for n, mean, std in m["single"]},
                {(str(a), str(b)): _unarray(g) for a, b, g in m["pairs"]},
            )
        )
        i = body["importance"]
        importance = (
            None
            if i is None
            else Importance(
                [str(n) for n in i["names"]],
                {str(n): float(mean) for n, mean, _ in i["single"]},
                {str(n): float(std) for n, _, std in i["single"]},
                {(str(a), str(b)): float(mean) for a, b, mean, _ in i["pairs"]},
                {(str(a), str(b)): float(std) for a, b, _, std in i["pairs"]},
                int(i["n_trees_used"]),
            )
        )
        bd = body["bounds"]
        bounds = (
            None
            if bd is None
            else SuggestedBounds(
                {str(n): (float(lo), float(hi)) for n, lo, hi in bd["ranges"]},
                {str(n): list(cs) for n, cs in bd["categories"]},
                {str(n): (float(lo), float(hi)) for n, lo, hi in bd["unit_ranges"]},
                None if bd["r2"] is None else float(bd["r2"]),
                None if bd["r2_std"] is None else float(bd["r2_std"]),
                int(bd["n_runs"]),
                {str(n): v for n, v in bd.get("unimportant", [])},
                bool(bd.get("narrowed", True)),
            )
        )
        text, problem, run_ids = body["refined_yaml"], body["problem"], body["run_ids"]
        for value in (text, problem):
            if value is not None and not isinstance(value, str):
                return None
        run_ids = None if run_ids is None else [str(r) for r in run_ids]
        return SpaceReport(data, fan, importance, bounds, text, problem, run_ids)
    except Exception as exc:  # anything malformed is a miss: the report is computed again
        log.warning("space report: ignored an unreadable shared entry (%s)", exc)
        return None


# -- once per key, across threads and processes --------------------------------------------------------


class _Lock:
    """A lock entry in the shared store (``CacheBackend.add``: atomic across processes, expiring); None from
    ``take`` when the store cannot hold one (then each process is on its own)."""

    def __init__(self, backend: CacheBackend) -> None:
        self.backend = backend

    def take(self, key: str, token: str) -> bool | None:
        try:
            return self.backend.add(key, _lock_value(token), LOCK_TTL_S)
        except Exception as exc:  # a store that does not answer: no shared lock
            log.warning("space report: no shared lock (%s)", exc)
            return None

    def held(self, key: str) -> bool:
        return self.since(key) is not None

    def since(self, key: str) -> float | None:
        """When the holder of the lock took it (unix seconds); None when nobody holds it."""
        try:
            value = self.backend.get(key)
        except Exception:
            return None
        if value is None:
            return None
        try:
            return float(bytes(value).split(b" ", 1)[1])
        except (IndexError, ValueError, TypeError):
            return 0.0  # held, by a value of another form: since unknown

    def release(self, key: str, token: str) -> None:
        try:
            self.backend.delete_if(key, _lock_value(token))
        except Exception as exc:
            log.warning("space report: lock not released, it expires by itself (%s)", exc)


def _lock_value(token: str) -> bytes:
    """What a lock entry holds: its holder's token and when it was taken (the progress line's start)."""
    return f"{token} {_STARTED.setdefault(token, time.time()):.3f}".encode()


_STARTED: dict[str, float] = {}  # token -> when its lock was first taken, in this process


class SharedReports:
    """``get(key, compute)``: the report of ``key`` (a plain tuple), computed by one caller in all."""

    def __init__(self, backend: CacheBackend, namespace: str = "", entries: int = 16) -> None:
        self.backend = backend
        self.namespace = namespace
        self.lock = _Lock(backend)
        self._memory: OrderedDict[str, SpaceReport] = OrderedDict()
        self._entries = entries
        self._guard = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._jobs: dict[str, tuple[float, concurrent.futures.Future]] = {}  # background computations
        self.stats = {"computed": 0, "shared": 0, "memory": 0, "waited": 0}

    def store_key(self, key: tuple) -> str:
        text = json.dumps([self.namespace, list(key)], default=str, sort_keys=True)
        return "trellis:space:" + hashlib.sha256(text.encode()).hexdigest()[:32]

    def get(self, key: tuple, compute: Callable[[], SpaceReport]) -> SpaceReport:
        name = self.store_key(key)
        found = self._remembered(name)
        if found is not None:
            return found
        with self._guard:
            key_lock = self._key_locks.setdefault(name, threading.Lock())
        with key_lock:  # the threads of this process: one goes on, the others find its result after
            found = self._remembered(name)
            if found is not None:
                return found
            report = self._shared_or_computed(name, compute)
            with self._guard:
                self._memory[name] = report
                self._memory.move_to_end(name)
                while len(self._memory) > self._entries:
                    self._memory.popitem(last=False)
                self._key_locks.pop(name, None)
            return report

    def get_soon(
        self, key: tuple, compute: Callable[[], SpaceReport], wait_s: float, runs: int = 0
    ) -> SpaceReport | Pending:
        """The report of ``key`` if it is ready within ``wait_s`` seconds, else ``Pending``: its computation
        (or the wait for another worker's) goes on in the background, and a later call finds it."""
        name = self.store_key(key)
        found = self._remembered(name)
        if found is not None:
            return found
        with self._guard:
            job = self._jobs.get(name)
            if job is None:
                job = self._jobs[name] = (time.time(), _BACKGROUND.submit(self.get, key, compute))
        started, future = job
        try:
            report = future.result(timeout=max(0.0, wait_s))
        except concurrent.futures.TimeoutError:
            since = self.lock.since(name + ":lock")
            return Pending(min(started, since) if since else started, runs)
        except BaseException:
            with self._guard:  # a failed computation is not kept: the next call tries again
                if self._jobs.get(name) is job:
                    del self._jobs[name]
            raise
        with self._guard:
            if self._jobs.get(name) is job:
                del self._jobs[name]
        return report

    def _remembered(self, name: str) -> SpaceReport | None:
        with self._guard:
            found = self._memory.get(name)
            if found is not None:
                self._memory.move_to_end(name)
                self.stats["memory"] += 1
            return found

    def _read(self, name: str) -> SpaceReport | None:
        try:
            blob = self.backend.get(name)
        except Exception:  # a store that does not answer is a miss
            return None
        return decode_report(blob)

    def _shared_or_computed(self, name: str, compute: Callable[[], SpaceReport]) -> SpaceReport:
        lock_name, token = name + ":lock", uuid.uuid4().hex
        deadline = time.monotonic() + WAIT_S
        waited = False
        while True:
            report = self._read(name)
            if report is not None:
                self.stats["shared"] += 1
                self.stats["waited"] += waited
                return report
            taken = self.lock.take(lock_name, token)
            if taken or taken is None or time.monotonic() > deadline:
                break
            waited = True  # another worker computes it: wait for its result (or for its lock to go)
            while self.lock.held(lock_name) and time.monotonic() < deadline:
                report = self._read(name)
                if report is not None:
                    break
                time.sleep(POLL_S)
        try:
            report = self._read(name) if taken else None  # finished by another just before the lock was ours
            if report is None:
                report = with_marginals(compute())
                self.stats["computed"] += 1
                blob = encode_report(report)
                if blob is not None:
                    try:
                        self.backend.set(name, blob)
                    except Exception as exc:
                        log.warning("space report: not shared (%s)", exc)
            return report
        finally:
            if taken:
                self.lock.release(lock_name, token)
            _STARTED.pop(token, None)
