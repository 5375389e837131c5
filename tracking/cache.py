"""A run cache shared by gunicorn workers, keyed by the state of the experiments it holds.

Each request asks the store for a cheap fingerprint (run count, newest start and end, running runs and
their newest metric). Unchanged: the cached table is returned (from this process' memory, else from the
shared store). Changed: only runs that started, ended or were running since the cached read are fetched
again and folded into the cached raw tables; a drop in run count (deletions) means a full re-read.
The shared store is a folder (diskcache, the default) or Redis (``redis://...``), for a team's workers.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from trellis.tracking import reader
from trellis.tracking.memo import Memo
from trellis.tracking.reader import RunTable
from trellis.tracking.sql import engine, in_clause
from trellis.tracking.uris import is_database_uri

MAX_DELTA = 5000
BLOB_MAGIC = b"trellis-runs-1\n"  # what the shared store holds: msgpack of plain values, never pickle
ALLOWED_DTYPES = {"object", "float64", "int64", "bool"}
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


@dataclass
class _Entry:
    fingerprint: tuple
    raw: tuple  # runs, params, metrics, tags, n_deleted
    table: RunTable


def fingerprint(uri: str, experiment_ids: Sequence[str]) -> tuple:
    """A tuple that changes whenever a run is added, ends, is deleted, or a running run logs a metric."""
    if not is_database_uri(uri):
        return ("no-fingerprint",)  # the client path re-reads; http stores have no cheap fingerprint
    from sqlalchemy import text

    marks, binds = in_clause(experiment_ids)
    scope = f"r.experiment_id IN ({marks})"
    with engine(uri).connect() as conn:
        row = conn.execute(
            text(
                "SELECT sum(CASE WHEN r.lifecycle_stage = 'active' THEN 1 ELSE 0 END), count(*), max(r.start_time), "
                "max(r.end_time), sum(CASE WHEN r.status = 'RUNNING' THEN 1 ELSE 0 END) "
                f"FROM runs r WHERE {scope}"
            ),
            binds,
        ).one()
        live = conn.execute(
            text(
                "SELECT max(m.timestamp), count(*) FROM latest_metrics m JOIN runs r ON r.run_uuid = m.run_uuid "
                f"WHERE {scope} AND r.status = 'RUNNING'"
            ),
            binds,
        ).one()
    return tuple(int(v or 0) for v in (*row, *live))


class RunCache:
    """``table(experiment_ids)`` returns an up-to-date RunTable, reading as little as it can."""

    def __init__(self, uri: str, store: CacheBackend | None = None, memory_entries: int = 8) -> None:
        self.uri = uri
        self.store = store or MemoryBackend()
        self._memory: Memo[_Entry] = Memo(memory_entries)
        self._lock = threading.Lock()
        self.stats = {"hits": 0, "delta_reads": 0, "full_reads": 0}

    def held(self, ids: Sequence[str]) -> int | None:
        """Which in-memory entry this process holds for these experiments (an identity: it changes whenever
        the entry is replaced), or None when it holds none."""
        found = self._memory.peek(self._key(ids))
        return None if found is None else id(found)

    def _key(self, ids: Sequence[str]) -> str:
        digest = hashlib.sha1(f"{self.uri}|{','.join(sorted(ids))}".encode()).hexdigest()[:20]
        return f"trellis:runs:{digest}"

    def table(self, experiment_ids: Sequence[str]) -> RunTable:
        ids = sorted(str(e) for e in experiment_ids)
        if not ids:
            return reader.read_runs(self.uri, [])
        key = self._key(ids)
        fp = fingerprint(self.uri, ids)
        with self._lock:
            entry = self._memory.get(key)
            if entry is None:
                entry = decode_entry(self.store.get(key))
            if entry is not None and fp != ("no-fingerprint",) and entry.fingerprint == fp:
                self.stats["hits"] += 1
                self._remember(key, entry)
                return entry.table
            with reader.gc_paused():
                entry = self._refresh(ids, entry, fp)
            self._remember(key, entry)
            blob = encode_entry(entry)
            if blob is not None:
                self.store.set(key, blob)
            return entry.table

    def _remember(self, key: str, entry: _Entry) -> None:
        self._memory.put(key, entry)

    def _refresh(self, ids: list[str], old: _Entry | None, fp: tuple) -> _Entry:
        if old is None or not is_database_uri(self.uri) or fp[0] < old.fingerprint[0] or fp[1] < old.fingerprint[1]:
            return self._full(ids, fp)
        try:
            delta = self._changed_run_ids(ids, old)
        except Exception as exc:  # an entry that cannot be updated is replaced, never kept failing
            log.warning("run cache: re-reading in full (%s)", exc)
            return self._full(ids, fp)
        if len(delta) > MAX_DELTA:
            return self._full(ids, fp)
        self.stats["delta_reads"] += 1
        fresh = reader.read_raw_sql(self.uri, ids, run_ids=delta) if delta else None
        raw = _fold(old.raw, fresh, set(delta), fresh[4] if fresh else old.raw[4])
        return _Entry(fp, raw, reader.shape(raw, raw[4]))

    def _full(self, ids: list[str], fp: tuple) -> _Entry:
        self.stats["full_reads"] += 1
        raw = reader.read_raw_sql(self.uri, ids) if is_database_uri(self.uri) else reader.read_raw_client(self.uri, ids)
        return _Entry(fp, raw, reader.shape(raw, raw[4]))

    def _changed_run_ids(self, ids: list[str], old: _Entry) -> list[str]:
        from sqlalchemy import text

        runs = old.raw[0]
        max_start, max_end = _newest(runs["start_ms"]), _newest(runs["end_ms"])
        was_running = runs.loc[runs["status"].isin(["RUNNING", "SCHEDULED"]), "run_id"].tolist()
        marks, binds = in_clause(ids)
        binds.update({"ms": max_start, "me": max_end})
        with engine(self.uri).connect() as conn:
            rows = conn.execute(
                text(
                    f"SELECT r.run_uuid FROM runs r WHERE r.experiment_id IN ({marks}) "
                    "AND r.lifecycle_stage = 'active' "
                    "AND (r.start_time >= :ms OR r.end_time >= :me OR r.status = 'RUNNING')"
                ),
                binds,
            ).fetchall()
        return sorted({r[0] for r in rows} | set(was_running))


def _newest(times: pd.Series) -> int:
    """The latest of some run times in ms; 0 when there is none (no run has ended yet: all NaN)."""
    newest = pd.to_numeric(times, errors="coerce").max()
    return 0 if pd.isna(newest) else int(newest)


def _fold(old: tuple, fresh: tuple | None, replaced: set[str], n_deleted: Any) -> tuple:
    """Replace the rows of ``replaced`` runs in each raw table by the freshly read ones."""
    tables = []
    for i in range(4):
        kept = old[i][~old[i]["run_id"].isin(replaced)]
        tables.append(pd.concat([kept, fresh[i]], ignore_index=True) if fresh is not None else kept)
    return (*tables, n_deleted)


def encode_entry(entry: _Entry) -> bytes | None:
    """The shared form of a cache entry: its fingerprint and raw tables as msgpack of plain values (str, int,
    float, None), so reading it back can never run code. None when a value is not plain (kept in memory only)."""
    import msgpack

    tables = [
        {"columns": list(df.columns), "dtypes": [str(t) for t in df.dtypes], "data": [df[c].tolist() for c in df]}
        for df in entry.raw[:4]
    ]
    try:
        body = msgpack.packb({"fp": list(entry.fingerprint), "n_deleted": int(entry.raw[4]), "tables": tables})
    except (TypeError, ValueError, OverflowError) as exc:
        log.warning("run cache: not shared (%s)", exc)
        return None
    return BLOB_MAGIC + body


def decode_entry(blob: bytes | None) -> _Entry | None:
    """A shared entry back, or None for anything that is not one (an old pickle, a foreign or damaged value):
    the caller then reads the store again."""
    import msgpack

    if not blob or not blob.startswith(BLOB_MAGIC):
        return None
    try:
        body = msgpack.unpackb(blob[len(BLOB_MAGIC) :], strict_map_key=True)
        frames = []
        for table in body["tables"]:
            if not set(table["dtypes"]) <= ALLOWED_DTYPES:
                return None
            columns = {
                c: pd.Series(values, dtype=dtype)
                for c, dtype, values in zip(table["columns"], table["dtypes"], table["data"])
            }
            frames.append(pd.DataFrame(columns) if columns else pd.DataFrame())
        raw = (*frames, int(body["n_deleted"]))
        return _Entry(tuple(body["fp"]), raw, reader.shape(raw, raw[4]))
    except Exception as exc:  # anything malformed is a cache miss, never an error page
        log.warning("run cache: ignored an unreadable shared entry (%s)", exc)
        return None
