"""Build a SQLite MLflow store of one Trellis search with many runs, fast (issue 28's 100k and 1M stores).

MLflow creates the schema and the experiment; the runs, params, metrics (history and latest) and tags are then
written straight into MLflow's tables with ``executemany`` (MLflow's client reads them back as its own: tested in
``tests/test_big_store.py``). 1M runs x (10 params, 5 metrics) take about a minute.

The runs are trials of one search over ten parameters:
  - ``x1, x2, x3`` uniform on [-pi, pi]: the objective ``loss`` is Ishigami's function of them (a = 7, b = 0.1;
    shares x1 .314, x2 .442, x3 0, x1:x3 .244), so an importance answer on these stores has a known truth;
  - ``lr`` (log), ``wd`` (log), ``dropout``, ``warmup`` (floats), ``units``, ``layers`` (ints) and ``optimizer``
    (categorical) do not move ``loss``.
Metrics: ``loss``, ``accuracy`` (falls with loss), ``val_loss``, ``n_params``, ``time_s``.

    python benchmarks/big_store.py PATH.db --runs 1000000
"""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
import time
import uuid
from pathlib import Path

import numpy as np

PARAMS = ("x1", "x2", "x3", "lr", "wd", "dropout", "warmup", "units", "layers", "optimizer")
METRICS = ("loss", "accuracy", "val_loss", "n_params", "time_s")
OPTIMIZERS = ("adam", "sgd", "rmsprop")
SPACE = {
    "x1": {"type": "float", "low": -math.pi, "high": math.pi},
    "x2": {"type": "float", "low": -math.pi, "high": math.pi},
    "x3": {"type": "float", "low": -math.pi, "high": math.pi},
    "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
    "wd": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True},
    "dropout": {"type": "float", "low": 0.0, "high": 0.7},
    "warmup": {"type": "float", "low": 0.0, "high": 1.0},
    "units": {"type": "int", "low": 8, "high": 512},
    "layers": {"type": "int", "low": 1, "high": 5},
    "optimizer": {"type": "categorical", "choices": list(OPTIMIZERS)},
}
ISHIGAMI_SHARES = {"x1": 0.3139, "x2": 0.4424, "x3": 0.0}
T0 = 1_700_000_000_000


def ishigami(x1: np.ndarray, x2: np.ndarray, x3: np.ndarray, a: float = 7.0, b: float = 0.1) -> np.ndarray:
    return np.sin(x1) + a * np.sin(x2) ** 2 + b * x3**4 * np.sin(x1)


def draw_runs(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """The runs' parameters and metrics, as columns."""
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {name: rng.uniform(-math.pi, math.pi, n) for name in ("x1", "x2", "x3")}
    cols["lr"] = 10 ** rng.uniform(-5, -1, n)
    cols["wd"] = 10 ** rng.uniform(-6, -2, n)
    cols["dropout"] = rng.uniform(0, 0.7, n)
    cols["warmup"] = rng.uniform(0, 1, n)
    cols["units"] = rng.integers(8, 513, n)
    cols["layers"] = rng.integers(1, 6, n)
    cols["optimizer"] = np.asarray(OPTIMIZERS, dtype=object)[rng.integers(0, 3, n)]
    cols["loss"] = ishigami(cols["x1"], cols["x2"], cols["x3"])
    cols["accuracy"] = 1 / (1 + np.exp(cols["loss"] - 5))
    cols["val_loss"] = cols["loss"] + rng.normal(0, 0.3, n)
    cols["n_params"] = (cols["units"] * cols["layers"] * 74).astype(float)
    cols["time_s"] = rng.gamma(2.0, 3.0, n)
    return cols


def _text(values: np.ndarray) -> list[str]:
    if values.dtype.kind == "f":
        return [repr(v) for v in values.tolist()]
    return [str(v) for v in values.tolist()]


def build_big_store(path: Path, n_runs: int, seed: int = 0, chunk: int = 100_000) -> tuple[str, str, str]:
    """(uri, experiment id, search id) of a new store at ``path`` holding one search of ``n_runs`` trials."""
    from mlflow import MlflowClient

    path = Path(path)
    uri = f"sqlite:///{path}"
    exp = MlflowClient(tracking_uri=uri).create_experiment("big", artifact_location=(path.parent / "art").as_uri())
    art = (path.parent / "art").as_uri()
    parent = uuid.uuid4().hex
    config = {"name": "big", "algorithm": {"name": "random"}, "objective": {"metric": "loss", "direction": "min"}}
    config["space"] = SPACE
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA journal_mode = MEMORY")
    conn.execute(RUN_SQL, (parent, "big", T0 - 1000, T0 + n_runs * 1000, f"{art}/{parent}/artifacts", int(exp)))
    parent_tags = {
        "mlflow.runName": "big",
        "trellis.type": "search",
        "trellis.search_id": parent,
        "trellis.search_name": "big",
        "trellis.algorithm": "random",
        "trellis.objective": "loss",
        "trellis.direction": "min",
        "trellis.state": "completed",
        "trellis.config": json.dumps(config),
    }
    conn.executemany(
        "INSERT INTO tags (run_uuid, key, value) VALUES (?, ?, ?)", [(parent, k, v) for k, v in parent_tags.items()]
    )
    append_runs(conn, exp, parent, 0, n_runs, seed, chunk)
    conn.close()
    return uri, exp, parent


RUN_SQL = (
    "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, start_time, "
    "end_time, source_version, lifecycle_stage, artifact_uri, experiment_id, deleted_time) "
    "VALUES (?, ?, 'UNKNOWN', '', '', 'bench', 'FINISHED', ?, ?, '', 'active', ?, ?, NULL)"
)


def append_runs(
    conn: sqlite3.Connection, exp: str, parent: str, first: int, n_runs: int, seed: int = 0, chunk: int = 100_000
) -> None:
    """Trials ``first`` .. ``first + n_runs - 1`` of the search ``parent``, each committed chunk by chunk."""
    art = conn.execute("SELECT artifact_location FROM experiments WHERE experiment_id = ?", (int(exp),)).fetchone()[0]
    cols = draw_runs(n_runs, seed + first)
    for lo in range(0, n_runs, chunk):
        hi = min(n_runs, lo + chunk)
        number = np.arange(first + lo, first + hi)
        ids = [uuid.UUID(int=int(v)).hex for v in np.random.default_rng((seed, first + lo)).integers(0, 2**63, hi - lo)]
        starts = T0 + number * 1000
        names = [f"trial-{i}" for i in number]
        run_rows = zip(ids, names, starts.tolist(), (starts + 900).tolist(), (f"{art}/{r}/artifacts" for r in ids))
        conn.executemany(RUN_SQL, (row + (int(exp),) for row in run_rows))
        # Rows of one run side by side, as MLflow's log_batch and Trellis' writer leave them.
        texts = [_text(cols[key][lo:hi]) for key in PARAMS]
        conn.executemany(
            "INSERT INTO params (run_uuid, key, value) VALUES (?, ?, ?)",
            ((rid, key, column[i]) for i, rid in enumerate(ids) for key, column in zip(PARAMS, texts)),
        )
        values = [cols[key][lo:hi].tolist() for key in METRICS]
        stamps = (starts + 500).tolist()
        rows = [(rid, key, column[i], stamps[i]) for i, rid in enumerate(ids) for key, column in zip(METRICS, values)]
        for table in ("metrics", "latest_metrics"):
            conn.executemany(
                f"INSERT INTO {table} (run_uuid, key, value, timestamp, step, is_nan) VALUES (?, ?, ?, ?, 0, 0)", rows
            )
        tags = {
            "mlflow.runName": names,
            "mlflow.parentRunId": [parent] * len(ids),
            "trellis.type": ["trial"] * len(ids),
            "trellis.search_id": [parent] * len(ids),
            "trellis.trial": [str(i) for i in number],
        }
        conn.executemany(
            "INSERT INTO tags (run_uuid, key, value) VALUES (?, ?, ?)",
            ((rid, key, column[i]) for i, rid in enumerate(ids) for key, column in tags.items()),
        )
        conn.commit()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", type=Path)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    t = time.perf_counter()
    uri, exp, _ = build_big_store(args.path, args.runs, args.seed)
    print(f"{uri}: experiment {exp}, {args.runs} runs in {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
