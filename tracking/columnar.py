"""SQL results as Arrow tables, for reading a million runs without a Python object per value.

Where the store's kind has an ADBC driver installed (``Store.adbc_connect``: SQLite in the core, PostgreSQL with
the team extra) the queries run through it, two connections side by side (SQLite and PostgreSQL read in
parallel; Arrow releases the GIL). Anywhere else, or if the ADBC read fails (a driver missing a type, a locked
file), the same queries run through SQLAlchemy's DB-API driver and the rows become the same Arrow tables.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa

from trellis.tracking.sql import engine, fetch
from trellis.tracking.stores import store_for
from trellis.tracking.wide import give_back_memory

log = logging.getLogger(__name__)
_BIND = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)")
READERS = 2  # connections reading side by side
TRIM_EVERY = 16  # batches


@dataclass(frozen=True)
class Query:
    """A SELECT with SQLAlchemy-style ``:name`` binds, and the names its columns get."""

    sql: str
    binds: dict
    columns: tuple[str, ...]


EachBatch = Callable[[pa.RecordBatch], object]


def fetch_tables(uri: str, queries: dict[str, Query], each_batch: EachBatch | None = None) -> dict:
    """Each query's result as an Arrow table (give the largest first); with ``each_batch``, instead the list
    of what it made of each batch, in the reading thread as the batch arrived (a million runs' long rows are
    then never all held as read)."""
    store = store_for(uri)
    connect = store.adbc_connect()
    if connect is not None:
        try:
            return _through_adbc(connect, store.adbc_options(), queries, each_batch)
        except Exception as exc:  # any ADBC trouble: the DB-API path reads the same rows
            log.warning("columnar read failed, reading rows instead (%s)", str(exc).splitlines()[0][:200])
    return _through_dbapi(uri, queries, each_batch)


def inline(sql: str, binds: dict) -> str:
    """The query with its binds written as SQL literals (ADBC's drivers take no named binds; a PostgreSQL
    query with binds would also lose the COPY fast path). Only ints and plain strings are accepted."""

    def literal(match: re.Match) -> str:
        value = binds[match.group(1)]
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise TypeError(f"cannot inline a {type(value).__name__} bind")
        if isinstance(value, int):
            return str(int(value))
        if "\x00" in value or "\\" in value:
            raise ValueError("cannot inline a string with a NUL or a backslash")
        return "'" + value.replace("'", "''") + "'"

    return _BIND.sub(literal, sql)


def _through_adbc(connect: Callable, options: dict, queries: dict[str, Query], each_batch: EachBatch | None) -> dict:
    waiting = list(queries)  # largest first: each connection takes the next query when it is free
    lock = threading.Lock()

    def worker() -> dict:
        out: dict = {}
        with connect() as conn, conn.cursor() as cur:
            while True:
                with lock:
                    if not waiting:
                        return out
                    name = waiting.pop(0)
                query = queries[name]
                if options:
                    cur.adbc_statement.set_options(**options)
                cur.execute(inline(query.sql, query.binds))
                reader = cur.fetch_record_batch()
                if each_batch is None:
                    out[name] = reader.read_all().rename_columns(list(query.columns))
                else:
                    out[name] = []
                    for i, batch in enumerate(reader):
                        if batch.num_rows:
                            out[name].append(each_batch(batch.rename_columns(list(query.columns))))
                        if i % TRIM_EVERY == TRIM_EVERY - 1:
                            give_back_memory()  # the driver's freed batches, before the heap grows on them

    with ThreadPoolExecutor(min(READERS, len(queries))) as pool:
        parts = list(pool.map(lambda _: worker(), range(min(READERS, len(queries)))))
    return {name: part[name] for part in parts for name in part}


def _through_dbapi(uri: str, queries: dict[str, Query], each_batch: EachBatch | None) -> dict:
    out = {}
    with engine(uri).connect() as conn:
        for name, query in queries.items():
            rows = fetch(conn, query.sql, query.binds)
            columns = list(zip(*rows)) if rows else [() for _ in query.columns]
            batch = pa.record_batch({c: _array(v) for c, v in zip(query.columns, columns)})
            if each_batch is None:
                out[name] = pa.Table.from_batches([batch])
            else:
                out[name] = [each_batch(batch)] if batch.num_rows else []
    return out


def _array(values: tuple) -> pa.Array:
    try:
        return pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types in a column: keep them as text
        return pa.array([None if v is None else str(v) for v in values], pa.string())
