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

What is shared is the report's own plain form (``SpaceReport.to_plain``), behind a magic line: this module
holds no codec of its own, and nothing it keeps depends on how a figure draws the report.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import msgpack

from trellis.search.analysis.report import SpaceReport
from trellis.tracking.cache import CacheBackend
from trellis.tracking.memo import Memo

log = logging.getLogger(__name__)
REPORT_MAGIC = b"trellis-space-report-2\n"  # 2: the report's own plain form (marginals of the top pairs)
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


# -- the shared form: the report's own plain values ---------------------------------------------------------


def encode_report(report: SpaceReport) -> bytes | None:
    """The report as msgpack of its plain values (``SpaceReport.to_plain``); None when it cannot be packed."""
    try:
        return REPORT_MAGIC + msgpack.packb(report.to_plain(), use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        log.warning("space report: not shared (%s)", exc)
        return None


def decode_report(blob: bytes | None) -> SpaceReport | None:
    """A shared report back, or None for anything that is not one (never an error, never code run)."""
    if not blob or not isinstance(blob, bytes) or not blob.startswith(REPORT_MAGIC):
        return None
    try:
        return SpaceReport.from_plain(msgpack.unpackb(blob[len(REPORT_MAGIC) :], raw=False, strict_map_key=True))
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
        self._memory: Memo[SpaceReport] = Memo(entries)
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
                self._memory.put(name, report)
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
                report = compute()
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
