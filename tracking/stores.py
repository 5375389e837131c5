"""The one store interface: a tracking URI's scheme picks its ``Store`` from ``STORES``, as MLflow's
``TrackingStoreRegistry`` picks a tracking store; nothing else in Trellis names a scheme.

A ``Store`` says what the URI allows: ``sql`` (MLflow's tables can be read and claimed with SQL directly, the
fast path; otherwise everything goes through MLflow's REST client), how to check that it answers now, how to
tell cheaply that nothing changed (``change_counter``), where artifacts go by default, and how a user browses
it. Adding a store kind is one class and one ``register_store`` row.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:  # MLflow takes seconds to import: a read of a database store needs none of it
    from mlflow import MlflowClient


class Store:
    """A store reached through MLflow's client only (a tracking server, Databricks)."""

    sql = False

    def __init__(self, uri: str) -> None:
        self.uri = uri

    def check_answers(self, client: MlflowClient | None = None) -> None:
        """Raise unless the store answers a read of its experiments now."""
        from mlflow import MlflowClient

        (client or MlflowClient(tracking_uri=self.uri)).search_experiments(max_results=1)

    def fail_fast(self) -> None:
        """Before a client is first used: raise at once if the store is down (no-op where the client's own
        first request fails fast enough)."""

    def change_counter(self) -> Callable[[], tuple] | None:
        """A cheap call whose value changes whenever anything was written (None: no such thing here)."""
        return None

    def default_artifact_location(self) -> str | None:
        """Where a new experiment keeps its artifacts when the config says nothing (None: MLflow's default)."""
        return None

    def browse_hint(self) -> str:
        """How a user opens the runs in the MLflow UI."""
        return self.uri

    def adbc_connect(self) -> Callable | None:
        """A function opening an ADBC (columnar) connection to the store's database, or None where there is
        no such driver here: the reader then reads rows through SQLAlchemy."""
        return None

    def adbc_options(self) -> dict[str, str]:
        """Statement options for that driver."""
        return {}


class SqlStore(Store):
    """A database store (SQLAlchemy URI): read, fingerprinted and claimed with SQL on MLflow's own tables."""

    sql = True

    def check_answers(self, client: MlflowClient | None = None) -> None:
        from trellis.tracking.sql import check_answers

        check_answers(self.uri)  # fast, where MLflow retries its first connection for about 100 s

    def fail_fast(self) -> None:
        self.check_answers()

    def browse_hint(self) -> str:
        import sys

        return f"{sys.executable} -m mlflow ui --backend-store-uri {self.uri}"


class SqliteStore(SqlStore):
    @property
    def path(self) -> str | None:
        path = self.uri[len("sqlite:///") :].split("?", 1)[0] if self.uri.startswith("sqlite:///") else ""
        return None if path in ("", ":memory:") else path

    def change_counter(self) -> Callable[[], tuple] | None:
        path = self.path
        return ChangeCounter(path) if path and Path(path).exists() else None

    def adbc_connect(self) -> Callable | None:
        try:
            import adbc_driver_sqlite.dbapi as adbc
        except ImportError:
            return None
        path = self.path
        if path is None:
            return None
        uri = Path(path).resolve().as_uri() + "?mode=ro"
        return lambda: adbc.connect(uri)

    def adbc_options(self) -> dict[str, str]:
        return {"adbc.sqlite.query.batch_rows": "65536"}  # the default, 1024, makes ten thousand batches

    def default_artifact_location(self) -> str | None:
        """Beside the database file (``<db dir>/mlartifacts``) rather than in the working directory."""
        path = self.path
        return (Path(path).resolve().parent / "mlartifacts").as_uri() if path else None


class PostgresStore(SqlStore):
    def adbc_connect(self) -> Callable | None:
        try:
            import adbc_driver_postgresql.dbapi as adbc
        except ImportError:
            return None
        from sqlalchemy.engine import make_url

        url = make_url(self.uri).set(drivername="postgresql")
        libpq = url.render_as_string(hide_password=False)
        return lambda: adbc.connect(libpq)

    def change_counter(self) -> Callable[[], tuple] | None:
        return PostgresChangeCounter(self.uri)


_STORES: dict[str, type[Store]] = {}


def register_store(scheme: str, store: type[Store]) -> None:
    """The store class for URIs of ``scheme`` (``postgresql+psycopg`` falls back to ``postgresql``)."""
    _STORES[scheme] = store


for _scheme, _store in {
    "sqlite": SqliteStore,
    "postgresql": PostgresStore,
    "mysql": SqlStore,
    "mssql": SqlStore,
    "http": Store,
    "https": Store,
    "databricks": Store,
}.items():
    register_store(_scheme, _store)
STORES = _STORES


def scheme_of(uri: str) -> str:
    return urlsplit(uri).scheme.lower() if ":" in uri else "file"


def store_for(uri: str) -> Store:
    """The store of ``uri`` (a plain ``Store`` for a scheme no row names: MLflow's client decides)."""
    scheme = scheme_of(uri)
    cls = _STORES.get(scheme) or _STORES.get(scheme.split("+", 1)[0]) or Store
    return cls(uri)


class ChangeCounter:
    """SQLite's ``PRAGMA data_version`` on one connection of this process: it changes whenever another
    connection, of any process, commits to the file. Read together with one row of ``runs``, so a store that is
    locked or gone fails here as the fingerprint's own query would."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._generation = 0
        self._lock = threading.Lock()

    def __call__(self) -> tuple[int, int]:
        """(connection number, its counter): a new connection's counter starts anew, so values compare only
        within one connection."""
        with self._lock:
            if self._conn is None:  # read-write, never create: a store that went away is an error here
                uri = Path(self.path).resolve().as_uri() + "?mode=rw"
                self._conn = sqlite3.connect(uri, uri=True, timeout=5.0, check_same_thread=False)
                self._generation += 1
            try:
                self._conn.execute("SELECT 1 FROM runs LIMIT 1").fetchall()
                return self._generation, int(self._conn.execute("PRAGMA data_version").fetchone()[0])
            except sqlite3.Error:
                self._conn.close()  # a fresh connection next time
                self._conn = None
                raise


class PostgresChangeCounter:
    """PostgreSQL's current snapshot (``xmin:xmax:in-progress ids``): the same text means no transaction that
    writes committed in between (one that began would have moved ``xmax``, one that ended left the list).
    Cluster-wide, so another database's writes only cost a fresh read; one trivial query instead of the
    fingerprint's two aggregates over the experiments' runs."""

    def __init__(self, uri: str) -> None:
        self.uri = uri

    def __call__(self) -> tuple[str]:
        from sqlalchemy import text

        from trellis.tracking.sql import engine

        with engine(self.uri).connect() as conn:
            return (str(conn.execute(text("SELECT pg_current_snapshot()::text")).scalar_one()),)
