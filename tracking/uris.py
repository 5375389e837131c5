"""Tracking URIs: the one default store, and which URIs Trellis may read and write with SQL directly."""

from __future__ import annotations

# A local SQLite MLflow store in the working directory: what the demo, the CLI and the app use by default.
DEFAULT_TRACKING_URI = "sqlite:///mlruns.db"


def is_database_uri(uri: str) -> bool:
    """An MLflow database store (SQLAlchemy URI), as opposed to a tracking server or a file store: its
    ``Store`` (``trellis.tracking.stores``) reads it with SQL."""
    from trellis.tracking.stores import store_for

    return store_for(uri).sql


def known_schemes() -> tuple[str, ...]:
    from trellis.tracking.stores import STORES

    return (*STORES, "file")


# The database driver SQLAlchemy loads for a scheme when the URI names none (``postgresql+psycopg://``
# names its own), and the extra that installs it.
DRIVERS = {"postgresql": ("psycopg", "team")}


def driver_problem(uri: str) -> str | None:
    """The one line naming the extra to install when ``uri``'s database driver is missing, or None."""
    from trellis.extras import hint, installed

    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    base, _, driver = scheme.partition("+")
    module, extra = DRIVERS.get(base, (None, None))
    if module is None or (driver and driver != module) or installed(module):
        return None
    return hint(f"a {base}:// store", extra)


def sqlite_path(uri: str) -> str | None:
    """The file of a ``sqlite:///`` URI (None for an in-memory or non-SQLite URI)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///") :].split("?", 1)[0]
    return None if path in ("", ":memory:") else path


def store_problem(uri: str, must_exist: bool, timeout_s: float = 5.0) -> str | None:
    """Why ``uri`` cannot serve as an MLflow store, answered within about ``timeout_s``, or None.

    ``must_exist``: a command that only reads (serve, resume, stop, importance, bounds) must not create a
    mistyped SQLite file as a side effect."""
    import os

    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower() if ":" in uri else "file"
    if scheme not in known_schemes():
        return f"unknown tracking URI scheme {scheme!r} in {uri!r} (known: {', '.join(known_schemes())})"
    if no_driver := driver_problem(uri):
        return no_driver
    path = sqlite_path(uri)
    if path is not None:
        if not os.path.exists(path):
            if must_exist:
                return f"no MLflow store at {path} (check the path; nothing was created)"
            return None if os.path.isdir(os.path.dirname(os.path.abspath(path))) else f"no such folder for {path}"
        with open(path, "rb") as fh:
            header = fh.read(16)
        if header and header != b"SQLite format 3\x00":
            return f"{path} is not a SQLite database"
        return _database_problem(uri, timeout_s, must_exist) if must_exist else None
    if scheme in ("postgresql", "mysql", "mssql"):
        return _database_problem(uri, timeout_s, must_exist)
    if scheme in ("http", "https"):
        return _server_problem(uri, timeout_s)
    if scheme == "file":
        return (
            f"{uri!r} is a file store, which this MLflow no longer serves: "
            "use a database store such as sqlite:///mlruns.db"
        )
    return None


def _database_problem(uri: str, timeout_s: float, must_exist: bool) -> str | None:
    """Reachable within the timeout; with ``must_exist``, already an MLflow store (reading commands must not
    turn another database into one)."""
    import sqlalchemy

    key = "timeout" if uri.startswith("sqlite") else "connect_timeout"
    try:
        engine = sqlalchemy.create_engine(uri, connect_args={key: max(1, int(timeout_s))})
        with engine.connect() as conn:
            is_store = sqlalchemy.inspect(conn).has_table("runs")
        engine.dispose()
    except Exception as exc:  # the driver's own words say best what is wrong
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"cannot reach the database store: {first}"
    if must_exist and not is_store:
        return f"{uri} holds no MLflow store (no runs table; nothing was created)"
    return None


def _server_problem(uri: str, timeout_s: float) -> str | None:
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s)
    except urllib.error.HTTPError:
        return None  # it answers: a server without /health, or behind auth
    except OSError as exc:
        return f"cannot reach the tracking server at {uri}: {getattr(exc, 'reason', exc)}"
    return None


def artifact_location_problem(tracking_uri: str, location: str | None) -> str | None:
    """Why runs logged through ``tracking_uri`` cannot store artifacts at an experiment's ``location`` (None
    when they can): an ``mlflow-artifacts:`` location is served by an MLflow server only, so a store reached
    directly (SQLite, PostgreSQL) cannot write there."""
    if not location or not str(location).startswith("mlflow-artifacts:"):
        return None
    if tracking_uri.startswith(("http://", "https://")):
        return None
    return (f"its artifacts live at {location}, which only an MLflow server serves: set tracking.uri to that "
            "server's http(s):// URL (or use another experiment)")  # fmt: skip
