"""Results computed once per run state and shared by every gunicorn worker and thread: the search-space report,
its surrogate and every analysis plugin's plain data go through this one cache.

A report (fANOVA importance, marginals, suggested bounds) of a 10k-run experiment takes seconds. It is kept
in the same shared store as the run cache (a diskcache folder or Redis), as msgpack of the result's own plain
form (``Codec``: a magic line, ``to_plain`` and ``from_plain``; ``SpaceReport``, ``Surrogate`` and analysis
plugins each carry theirs): reading it back never runs code, and anything else under its key (an old pickle,
a foreign or damaged value) is a miss. Whoever needs a result first takes a lock entry in the store
(diskcache ``add``, Redis ``SET NX EX``: atomic across processes) and computes it; the others, threads of the
same worker and other workers alike, wait for the result and read it. A lock whose holder died expires
(``LOCK_TTL_S``); a waiter that waited too long computes the result itself. A store that does not answer
(Redis down) leaves each worker on its own, still computing once per worker. In the process, results are
kept in one ``Memo``.

A page never waits long for it: ``get_soon`` starts the computation on a background thread of the worker and
waits at most ``wait_s``; past that it answers ``Pending`` (when the computation started, how many runs) and
the page shows a progress line and asks again every second. Whichever worker a later request reaches finds
the shared result, or the same computation still going (the lock's entry says since when).
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
from typing import Any, NamedTuple

import msgpack

from trellis.tracking.cache import CacheBackend
from trellis.tracking.memo import Memo

log = logging.getLogger(__name__)
LOCK_TTL_S = 120.0  # a lock outlives its holder at most this long
WAIT_S = 150.0  # a waiter computes the result itself after this long
POLL_S = 0.1
# Results computed off the request path; two at a time per worker process (the rest queue), so a burst of
# different analyses cannot take every core from the requests.
_BACKGROUND = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="trellis-report")


class Codec(NamedTuple):
    """How a kind of result is shared: its magic line, and its own plain form both ways (``from_plain``
    raises on anything that is not one)."""

    magic: bytes
    to_plain: Callable[[Any], Any]
    from_plain: Callable[[Any], Any]


# An analysis plugin's data is plain already (``trellis.search.analysis.registry``).
PLAIN = Codec(b"trellis-analysis-1\n", lambda value: value, lambda plain: plain)


@dataclass(frozen=True)
class Pending:
    """A result being computed: since when (unix seconds, when its computation started), over how many runs,
    and the result it replaces (the same analysis before a run ended), shown meanwhile when there is one."""

    since: float
    runs: int
    previous: Any = None


# -- the shared form: the result's own plain values ---------------------------------------------------------


def encode(value: Any, codec: Codec) -> bytes | None:
    """The result as msgpack of its plain values behind the codec's magic line; None when it cannot be packed."""
    try:
        return codec.magic + msgpack.packb(codec.to_plain(value), use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        log.warning("shared result: not shared (%s)", exc)
        return None


def decode(blob: Any, codec: Codec) -> Any | None:
    """A shared result back, or None for anything that is not one (never an error, never code run)."""
    if not blob or not isinstance(blob, bytes) or not blob.startswith(codec.magic):
        return None
    try:
        return codec.from_plain(msgpack.unpackb(blob[len(codec.magic) :], raw=False, strict_map_key=False))
    except Exception as exc:  # anything malformed is a miss: the result is computed again
        log.warning("shared result: ignored an unreadable shared entry (%s)", exc)
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
            log.warning("shared result: no shared lock (%s)", exc)
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
            log.warning("shared result: lock not released, it expires by itself (%s)", exc)


def _lock_value(token: str) -> bytes:
    """What a lock entry holds: its holder's token and when it was taken (the progress line's start)."""
    return f"{token} {_STARTED.setdefault(token, time.time()):.3f}".encode()


_STARTED: dict[str, float] = {}  # token -> when its lock was first taken, in this process


class SharedResults:
    """``get(key, compute, codec)``: the result of ``key`` (a plain tuple), computed by one caller in all."""

    def __init__(self, backend: CacheBackend, namespace: str = "", entries: int = 32) -> None:
        self.backend = backend
        self.namespace = namespace
        self.lock = _Lock(backend)
        self._memory: Memo[Any] = Memo(entries)
        self._guard = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._jobs: dict[str, tuple[float, concurrent.futures.Future]] = {}  # background computations
        self.stats = {"computed": 0, "shared": 0, "memory": 0, "waited": 0}

    def store_key(self, key: tuple) -> str:
        text = json.dumps([self.namespace, list(key)], default=str, sort_keys=True)
        return "trellis:space:" + hashlib.sha256(text.encode()).hexdigest()[:32]

    def get(self, key: tuple, compute: Callable[[], Any], codec: Codec) -> Any:
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
            result = self._shared_or_computed(name, compute, codec)
            with self._guard:
                self._memory.put(name, result)
                self._key_locks.pop(name, None)
            return result

    def get_soon(
        self, key: tuple, compute: Callable[[], Any], codec: Codec, wait_s: float, runs: int = 0
    ) -> Any | Pending:
        """The result of ``key`` if it is ready within ``wait_s`` seconds, else ``Pending``: its computation
        (or the wait for another worker's) goes on in the background, and a later call finds it."""
        name = self.store_key(key)
        found = self._remembered(name)
        if found is not None:
            return found
        with self._guard:
            job = self._jobs.get(name)
            if job is None:
                job = self._jobs[name] = (time.time(), _BACKGROUND.submit(self.get, key, compute, codec))
        started, future = job
        try:
            result = future.result(timeout=max(0.0, wait_s))
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
        return result

    def _remembered(self, name: str) -> Any | None:
        found = self._memory.get(name)
        if found is not None:
            with self._guard:
                self.stats["memory"] += 1
        return found

    def _read(self, name: str, codec: Codec) -> Any | None:
        try:
            blob = self.backend.get(name)
        except Exception:  # a store that does not answer is a miss
            return None
        return decode(blob, codec)

    def _shared_or_computed(self, name: str, compute: Callable[[], Any], codec: Codec) -> Any:
        lock_name, token = name + ":lock", uuid.uuid4().hex
        deadline = time.monotonic() + WAIT_S
        waited = False
        while True:
            result = self._read(name, codec)
            if result is not None:
                self.stats["shared"] += 1
                self.stats["waited"] += waited
                return result
            taken = self.lock.take(lock_name, token)
            if taken or taken is None or time.monotonic() > deadline:
                break
            waited = True  # another worker computes it: wait for its result (or for its lock to go)
            while self.lock.held(lock_name) and time.monotonic() < deadline:
                result = self._read(name, codec)
                if result is not None:
                    break
                time.sleep(POLL_S)
        try:
            result = self._read(name, codec) if taken else None  # finished by another just before the lock was ours
            if result is None:
                result = compute()
                self.stats["computed"] += 1
                blob = encode(result, codec)
                if blob is not None:
                    try:
                        self.backend.set(name, blob)
                    except Exception as exc:
                        log.warning("shared result: not shared (%s)", exc)
            return result
        finally:
            if taken:
                self.lock.release(lock_name, token)
            _STARTED.pop(token, None)
