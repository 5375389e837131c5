"""Shared fixtures: every test gets its own SQLite MLflow store and working directory."""

from __future__ import annotations

import contextlib
import copy
import uuid
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from trellis.search.config import SearchConfig, parse_config

ROOT = Path(__file__).resolve().parent.parent

BASE: dict[str, Any] = {
    "name": "t",
    "objective": {"metric": "loss", "direction": "min"},
    "space": {
        "x": {"type": "float", "low": -1.0, "high": 1.0},
        "y": {"type": "float", "low": -1.0, "high": 1.0},
        "shape": {"type": "categorical", "choices": ["bowl", "ridge", "flat"]},
    },
    "algorithm": {"name": "random", "seed": 0},
    "budget": {"resource": "epochs", "min": 1, "max": 3},
    "termination": {"max_trials": 6},
    "executor": {"kind": "local", "workers": 2},
    "trial": {"function": "trellis.examples.synthetic:quadratic"},
}


def module_store(tmp_path_factory: pytest.TempPathFactory, name: str) -> tuple[Path, str]:
    """A folder and a SQLite store in it, for module-scoped fixtures: run inside ``contextlib.chdir(folder)``
    so MLflow's default artifact folder and Trellis' checkpoints land there too."""
    folder = tmp_path_factory.mktemp(name)
    return folder, f"sqlite:///{folder / 'mlruns.db'}"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite MLflow store; the test runs inside tmp_path (checkpoints land there)."""
    monkeypatch.chdir(tmp_path)
    return f"sqlite:///{tmp_path / 'mlruns.db'}"


@pytest.fixture
def make_config(store: str):
    def make(**changes: Any) -> SearchConfig:
        raw = copy.deepcopy(BASE)
        for key, value in changes.items():
            node = raw
            *parents, last = key.split("__")
            for p in parents:
                node = node.setdefault(p, {})
            node[last] = value
        raw.setdefault("tracking", {})
        raw["tracking"].setdefault("uri", store)
        return parse_config(raw)

    return make


@pytest.fixture
def client(store: str) -> MlflowClient:
    return MlflowClient(tracking_uri=store)


def child_runs(client: MlflowClient, search_id: str) -> list:
    run = client.get_run(search_id)
    runs = client.search_runs(
        [run.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{search_id}'", max_results=10000
    )
    return sorted(runs, key=lambda r: int(r.data.tags["trellis.trial"]))


PG = "postgresql://postgres@127.0.0.1:5432"


@contextlib.contextmanager
def fresh_pg_database(prefix: str = "trellis_test"):
    """A fresh database on the PostgreSQL server at 127.0.0.1:5432 (the team store), dropped afterwards;
    the test is skipped, saying so, when no server answers there."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(f"{PG}/postgres", connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at 127.0.0.1:5432 ({exc.__class__.__name__}): start it to run this")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{PG}/{name}"
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@pytest.fixture
def pg_uri():
    with fresh_pg_database() as uri:
        yield uri


def duplicate_steps(uri: str) -> list[tuple[str, str, int, int]]:
    """Every (run, metric, step) logged more than once in a SQLite store, with how often: a re-executed trial
    or a resumed search must never log a step twice (issue 25). Empty when all is well."""
    import sqlite3

    path = uri.removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute(
            "SELECT run_uuid, key, step, COUNT(*) FROM metrics GROUP BY run_uuid, key, step HAVING COUNT(*) > 1"
        ).fetchall()
    return [(str(r), str(k), int(s), int(n)) for r, k, s, n in rows]
