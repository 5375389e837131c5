"""SQL over MLflow's own tables, shared by the reader, the run cache and the histories reader."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache


@lru_cache(maxsize=16)
def engine(uri: str):
    """One pooled SQLAlchemy engine per store URI (per process). Pooled connections are pinged before use, so
    those a database restart closed are replaced, not handed out; a PostgreSQL server that does not answer a new
    connection fails it within 10 s (libpq would wait on the OS, minutes) unless the URI sets its own."""
    import sqlalchemy

    args = {"connect_timeout": 10} if uri.startswith("postgresql") and "connect_timeout=" not in uri else {}
    return sqlalchemy.create_engine(uri, pool_pre_ping=True, connect_args=args)


def in_clause(ids: Sequence[str]) -> tuple[str, dict]:
    """Bind marks and values for ``experiment_id IN (...)`` (ids are MLflow's integer experiment ids)."""
    names = {f"e{i}": int(e) for i, e in enumerate(ids)}
    return ", ".join(f":{k}" for k in names), names


def fetch(conn, sql: str, binds: dict) -> list[tuple]:
    """Rows as the driver's plain tuples: SQLAlchemy's Row objects cost ~8 us each, ten times the query."""
    from sqlalchemy import text

    result = conn.execute(text(sql), binds)
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


def check_answers(uri: str) -> None:
    """Raise the driver's error unless the store answers a read of MLflow's experiments table now: fast (a
    refused connection at once, a SQLite lock after its 5 s busy timeout), where MLflow retries its first
    connection for about 100 s."""
    from sqlalchemy import text

    with engine(uri).connect() as conn:
        conn.execute(text("SELECT count(*) FROM experiments")).one()


def experiment_ids_by_name(uri: str) -> dict[str, str]:
    """The active experiments' ids by name, read with one query (MLflow's client takes a second or two to set
    up its store first)."""
    from sqlalchemy import text

    with engine(uri).connect() as conn:
        rows = conn.execute(text("SELECT name, experiment_id FROM experiments WHERE lifecycle_stage = 'active'"))
        return {str(name): str(eid) for name, eid in rows}
