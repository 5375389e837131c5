"""Where the run cache and the shared results live: a diskcache folder (one machine's workers), Redis (a
team's), or this process' memory. Every backend stores bytes only, and never unpickles what it reads.
"""

from __future__ import annotations

import logging
import os
import threading
import time

log = logging.getLogger(__name__)


class CacheBackend:
    """Bytes by key, visible to every worker process."""

    def get(self, key: str) -> bytes | None:
        raise NotImplementedError

    def set(self, key: str, value: bytes) -> None:
        raise NotImplementedError

    def problem(self) -> str | None:
        """Why the shared cache is not shared right now (shown on the pages), or None."""
        return None

    def add(self, key: str, value: bytes, ttl_s: float) -> bool | None:
        """Set ``key`` only if it is absent, atomically for every worker (a lock entry that expires after
        ``ttl_s``): True when this call set it, False when it was there, None when the store cannot say."""
        raise NotImplementedError

    def delete_if(self, key: str, value: bytes) -> None:
        """Delete ``key`` if it still holds ``value`` (a lock released by its holder only)."""
        raise NotImplementedError


class DiskBackend(CacheBackend):
    """A diskcache folder shared by the workers of one machine. diskcache pickles what is not bytes, text or a
    number, and unpickles it when read: here nothing stored pickled is ever read back (``_plain_disk``), so a
    pickle planted in the folder, through diskcache's own API or by hand, is a miss and runs no code."""

    def __init__(self, directory: str) -> None:
        import diskcache

        self._cache = diskcache.Cache(directory, size_limit=2**31, disk=_plain_disk())

    def get(self, key: str) -> bytes | None:
        value = self._cache.get(key)
        return value if isinstance(value, bytes) else None

    def set(self, key: str, value: bytes) -> None:
        self._cache.set(key, value, expire=7 * 24 * 3600)

    def add(self, key: str, value: bytes, ttl_s: float) -> bool | None:
        return bool(self._cache.add(key, value, expire=ttl_s))

    def delete_if(self, key: str, value: bytes) -> None:
        with self._cache.transact():
            if self._cache.get(key) == value:
                self._cache.delete(key)


def _plain_disk():
    """diskcache's ``Disk`` that never unpickles: an entry stored pickled reads as missing."""
    import diskcache
    from diskcache.core import MODE_PICKLE

    class PlainDisk(diskcache.Disk):
        def fetch(self, mode, filename, value, read):
            if mode == MODE_PICKLE:
                log.warning("run cache: ignored a pickled entry (never unpickled)")
                return None
            return super().fetch(mode, filename, value, read)

    return PlainDisk


class RedisBackend(CacheBackend):
    """Redis shared by the workers. A Redis that does not answer (down, restarting, full) never fails a page:
    reads miss and writes are skipped, so each worker goes on with its own in-process cache (RunCache keeps
    its entries in memory), the log says so once, and Redis is tried again every ``retry_s`` seconds
    (``TRELLIS_CACHE_RETRY_S``, default 30) and used again once it answers."""

    def __init__(self, url: str, retry_s: float | None = None, timeout_s: float = 2.0) -> None:
        from trellis.extras import require

        require("a redis:// run cache", "team", "redis")
        import redis

        # Short socket timeouts (the URL's own win): a hung Redis costs a request 2 s, not forever.
        self._redis = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
        self.url = url
        self.retry_s = _retry_s() if retry_s is None else retry_s
        self._errors = (redis.RedisError, OSError)
        self._reason: str | None = None  # why Redis is not used now; None while it answers
        self._retry_at = 0.0
        self._lock = threading.Lock()
        self._call(self._redis.ping)  # at start: a Redis that is down is said in the log, the app still starts

    def get(self, key: str) -> bytes | None:
        return self._call(self._redis.get, key)

    def set(self, key: str, value: bytes) -> None:
        self._call(self._redis.set, key, value, ex=7 * 24 * 3600)

    def add(self, key: str, value: bytes, ttl_s: float) -> bool | None:
        if self.problem() is not None:
            return None
        done = self._call(self._redis.set, key, value, nx=True, ex=max(1, int(ttl_s)))
        return None if self._reason is not None else bool(done)

    def delete_if(self, key: str, value: bytes) -> None:
        if self._call(self._redis.get, key) == value:
            self._call(self._redis.delete, key)

    def problem(self) -> str | None:
        if self._reason is not None:
            self._call(self._redis.ping)  # due for a retry: the note goes as soon as Redis answers
        if self._reason is None:
            return None
        return (
            f"the shared cache at {shown_url(self.url)} is not answering ({self._reason}): each worker uses its own "
            f"cache meanwhile (slower first views); retrying every {self.retry_s:g} s"
        )

    def _call(self, op, *args, **kwargs):
        if self._reason is not None and time.monotonic() < self._retry_at:
            return None
        try:
            result = op(*args, **kwargs)
        except self._errors as exc:
            with self._lock:
                first = self._reason is None
                self._reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                self._retry_at = time.monotonic() + self.retry_s
            if first:
                log.warning(
                    "run cache: Redis at %s is not answering (%s); using each worker's own cache, retrying every %g s",
                    shown_url(self.url),
                    self._reason,
                    self.retry_s,
                )
            return None
        if self._reason is not None:
            with self._lock:
                self._reason = None
            log.warning("run cache: Redis at %s answers again; sharing the cache again", shown_url(self.url))
        return result


def _retry_s() -> float:
    try:
        return max(1.0, float(os.environ.get("TRELLIS_CACHE_RETRY_S", "30")))
    except ValueError:
        return 30.0


def shown_url(url: str) -> str:
    """A URL as a page or a log may show it: any password replaced by ``***``."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return url.split("@")[-1]


class MemoryBackend(CacheBackend):
    """This process only: entries (and lock entries, with their expiry) in a dict."""

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}
        self._expiry: dict[str, float] = {}
        self._guard = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._guard:
            if key in self._expiry and self._expiry[key] <= time.monotonic():
                self._data.pop(key, None)
                self._expiry.pop(key, None)
            return self._data.get(key)

    def set(self, key: str, value: bytes) -> None:
        with self._guard:
            self._data[key] = value
            self._expiry.pop(key, None)

    def add(self, key: str, value: bytes, ttl_s: float) -> bool | None:
        if self.get(key) is not None:
            return False
        with self._guard:
            if key in self._data:
                return False
            self._data[key], self._expiry[key] = value, time.monotonic() + ttl_s
            return True

    def delete_if(self, key: str, value: bytes) -> None:
        with self._guard:
            if self._data.get(key) == value:
                self._data.pop(key, None)
                self._expiry.pop(key, None)


CACHE_SCHEMES = ("redis://", "rediss://", "unix://")


def cache_spec_problem(spec: str) -> str | None:
    """Why ``spec`` names no cache Trellis can use (None when it does): a URL of another kind would otherwise
    become a folder named after its scheme."""
    if "://" in spec and not spec.startswith(CACHE_SCHEMES):
        scheme = spec.split("://", 1)[0]
        return f"{scheme}:// is not a cache Trellis can use: give a folder, or redis://host:port/db"
    return None


def make_backend(spec: str | None) -> CacheBackend:
    """``redis://host:port/db``, a folder path for diskcache, or None for this process only."""
    if not spec:
        return MemoryBackend()
    problem = cache_spec_problem(spec)
    if problem:
        raise ValueError(problem)
    if spec.startswith(CACHE_SCHEMES):
        return RedisBackend(spec)
    return DiskBackend(spec)
