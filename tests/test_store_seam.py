"""One store interface: a URI's scheme picks its Store from one registry; the app reads only that interface."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from mlflow import MlflowClient

from tests.conftest import ROOT
from trellis.app.factory import create_app
from trellis.tracking import stores
from trellis.tracking.stores import PostgresStore, SqliteStore, Store, register_store, store_for

STORE_SCHEME = re.compile(r"(sqlite|postgresql|mysql|mssql|databricks)(\+\w+)?:")


def test_the_scheme_picks_the_store():
    assert type(store_for("sqlite:///x.db")) is SqliteStore and store_for("sqlite:///x.db").sql
    assert type(store_for("postgresql+psycopg://u@h/db")) is PostgresStore
    assert type(store_for("http://mlflow:5000")) is Store and not store_for("https://m").sql
    assert store_for("sqlite:///x.db").path == "x.db" and store_for("sqlite:///:memory:").path is None
    assert store_for("sqlite:////tmp/a/b.db").default_artifact_location() == "file:///tmp/a/mlartifacts"
    assert store_for("http://m:5000").default_artifact_location() is None
    assert "mlflow ui --backend-store-uri sqlite:///x.db" in store_for("sqlite:///x.db").browse_hint()


def _code_strings(path: Path) -> list[tuple[int, str]]:
    """The string constants of a module's code, docstrings left out."""
    tree = ast.parse(path.read_text())
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
    ]


def test_nothing_above_tracking_names_a_store_scheme():
    """Pages, engine, CLI and API ask the Store; only tracking/ spells a tracking store's scheme."""
    named = []
    for folder in ("app", "layouts", "search", "trellis"):
        for path in (ROOT / folder).rglob("*.py"):
            for line, value in _code_strings(path):
                if STORE_SCHEME.match(value):
                    named.append(f"{path.relative_to(ROOT)}:{line}: {value}")
    assert named == []


def test_a_store_kind_is_one_class_and_one_row(store, tmp_path):
    """A store class registered for a scheme is what the app uses: here a SQLite store whose change counter
    is counted, to see the app ask it (and nothing else) whether the runs changed."""
    asked = []

    class CountedSqlite(SqliteStore):
        def change_counter(self):
            inner = super().change_counter()
            return lambda: asked.append(1) or inner()

    MlflowClient(tracking_uri=store).search_experiments()
    register_store("sqlite", CountedSqlite)
    try:
        context = create_app(store, cache=str(tmp_path / "cache")).trellis_context
        assert isinstance(context.store, CountedSqlite)
        context.experiments()
        context.experiments()
        assert len(asked) == 2
    finally:
        register_store("sqlite", SqliteStore)
    assert stores.STORES["sqlite"] is SqliteStore and Path(store.split("///")[1]).exists()
