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
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from trellis.tracking import reader, table_codec
from trellis.tracking.cache_backends import (  # noqa: F401 (the backends' names, as they were here)
    CACHE_SCHEMES,
    CacheBackend,
    DiskBackend,
    MemoryBackend,
    RedisBackend,
    cache_spec_problem,
    make_backend,
    shown_url,
)
from trellis.tracking.memo import Memo
from trellis.tracking.reader import RunTable
from trellis.tracking.sql import engine, in_clause
from trellis.tracking.table_merge import merge_tables
from trellis.tracking.uris import is_database_uri

MAX_DELTA = 5000
SHARE_AT_ONCE_UP_TO = 100_000  # runs: a larger table is shared from a background thread
log = logging.getLogger(__name__)


@dataclass
class _Entry:
    fingerprint: tuple
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
                "SELECT max(m.timestamp), count(*) FROM latest_metrics m WHERE m.run_uuid IN "
                f"(SELECT r.run_uuid FROM runs r WHERE {scope} AND r.status = 'RUNNING')"  # the few running runs first
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
        self._sharing_lock = threading.Lock()
        self._to_share: dict[str, _Entry | None] = {}

    def held(self, ids: Sequence[str]) -> int | None:
        """Which in-memory entry this process holds for these experiments (an identity: it changes whenever
        the entry is replaced), or None when it holds none."""
        found = self._memory.peek(self._key(ids))
        return None if found is None else id(found)

    def _key(self, ids: Sequence[str]) -> str:
        digest = hashlib.sha1(f"{self.uri}|{','.join(sorted(ids))}".encode()).hexdigest()[:20]
        return f"trellis:runs:{digest}"

    def table(self, experiment_ids: Sequence[str], known_fingerprint: tuple | None = None) -> RunTable:
        """``known_fingerprint``: the store's fingerprint of these experiments when the caller has just asked
        for it (a million runs' fingerprint is a scan of the runs table)."""
        ids = sorted(str(e) for e in experiment_ids)
        if not ids:
            return reader.read_runs(self.uri, [])
        key = self._key(ids)
        fp = tuple(known_fingerprint) if known_fingerprint else fingerprint(self.uri, ids)
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
            self._share(key, entry)
            return entry.table

    def _share(self, key: str, entry: _Entry) -> None:
        """Hand the entry to the other workers through the shared store: at once for a small table, from a
        background thread for a large one (encoding a million runs takes seconds a live refresh must not
        wait for; the newest entry wins). Nothing to share with a store of this process only."""
        if isinstance(self.store, MemoryBackend):
            return
        if len(entry.table.runs) <= SHARE_AT_ONCE_UP_TO:
            self._write_shared(key, entry)
            return
        with self._sharing_lock:
            running = key in self._to_share
            self._to_share[key] = entry
        if not running:
            threading.Thread(target=self._share_pending, args=(key,), daemon=True, name="trellis-cache-share").start()

    def _share_pending(self, key: str) -> None:
        while True:
            with self._sharing_lock:
                entry = self._to_share.get(key)
                if entry is None:
                    self._to_share.pop(key, None)
                    return
                self._to_share[key] = None  # taken; a newer one may be put while this one is written
            self._write_shared(key, entry)
            with self._sharing_lock:
                if self._to_share.get(key) is None:
                    self._to_share.pop(key, None)
                    return

    def _write_shared(self, key: str, entry: _Entry) -> None:
        blob = encode_entry(entry)
        if blob is not None:
            self.store.set(key, blob)

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
        raw = reader.read_raw_sql(self.uri, ids, run_ids=delta if delta else ["-"], n_deleted=fp[1] - fp[0])
        merged = merge_tables(old.table, reader.shape(raw, raw[4]), set(delta), raw[4])
        if merged is None:  # the fresh runs changed a parameter's kind: read all
            return self._full(ids, fp)
        self.stats["delta_reads"] += 1
        return _Entry(fp, merged)

    def _full(self, ids: list[str], fp: tuple) -> _Entry:
        self.stats["full_reads"] += 1
        raw = reader.read_raw_sql(self.uri, ids) if is_database_uri(self.uri) else reader.read_raw_client(self.uri, ids)
        return _Entry(fp, reader.shape(raw, raw[4]))

    def _changed_run_ids(self, ids: list[str], old: _Entry) -> list[str]:
        from sqlalchemy import text

        runs = old.table.runs
        max_start, max_end = _newest(runs["start_time"]), _newest(runs["end_time"])
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
    """The latest of some run times in ms; 0 when there is none (no run has ended yet: all NaT)."""
    newest = times.max()
    return 0 if pd.isna(newest) else int(newest.value // 1_000_000)


def encode_entry(entry: _Entry) -> bytes | None:
    """The shared form of a cache entry (``table_codec``: plain values and Arrow arrays, so reading it back can
    never run code). None when a value is not plain (kept in memory only)."""
    try:
        return table_codec.encode(entry.fingerprint, entry.table)
    except table_codec.NotPlain as exc:
        log.warning("run cache: not shared (%s)", exc)
        return None


def decode_entry(blob: bytes | None) -> _Entry | None:
    """A shared entry back, or None for anything that is not one (an old pickle, a foreign or damaged value):
    the caller then reads the store again."""
    if not blob or not blob.startswith(table_codec.MAGIC):
        return None
    try:
        fingerprint, table = table_codec.decode(blob)
        return _Entry(fingerprint, table)
    except Exception as exc:  # anything malformed is a cache miss, never an error page
        log.warning("run cache: ignored an unreadable shared entry (%s)", exc)
        return None
