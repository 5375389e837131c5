"""Tracking URIs: the one default store, and which URIs Trellis may read and write with SQL directly."""

from __future__ import annotations

# A local SQLite MLflow store in the working directory: what the demo, the CLI and the app use by default.
DEFAULT_TRACKING_URI = "sqlite:///mlruns.db"
DB_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


def is_database_uri(uri: str) -> bool:
    """An MLflow database store (SQLAlchemy URI), as opposed to a tracking server or a file store."""
    return uri.split(":", 1)[0].split("+", 1)[0] in DB_SCHEMES
