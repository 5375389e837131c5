"""Metric histories of the runs a user selects, capped per curve so a 100k-step curve stays light.

Each (run, metric) curve keeps at most ``max_points`` points: the first and last always, the rest a
uniform reservoir sample (seeded, so a redraw shows the same points), as HyperTendril does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from trellis.tracking import reader
from trellis.tracking.sql import engine
from trellis.tracking.uris import is_database_uri

COLUMNS = ["run_id", "key", "step", "timestamp", "value"]


def reservoir_indices(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of a size-``k`` sample of ``range(n)``, always containing 0 and n-1, sorted.

    Algorithm R over the interior points: each interior point ends up kept with equal probability.
    """
    if n <= k:
        return np.arange(n)
    if k <= 2:
        return np.array([0, n - 1])[:k]
    m = k - 2
    reservoir = np.arange(1, m + 1)
    for i in range(m + 1, n - 1):  # interior indices 1..n-2
        j = rng.integers(0, i)  # i - 1 interior points seen before this one
        if j < m:
            reservoir[j] = i
    return np.concatenate(([0], np.sort(reservoir), [n - 1]))


def _cap(df: pd.DataFrame, max_points: int, seed: int) -> pd.DataFrame:
    if df.empty:
        return df
    parts = []
    for (_, _), group in df.groupby(["run_id", "key"], sort=False):
        group = group.sort_values(["step", "timestamp"], kind="stable")
        if len(group) > max_points:
            rng = np.random.default_rng(seed)
            group = group.iloc[reservoir_indices(len(group), max_points, rng)]
        parts.append(group)
    return pd.concat(parts, ignore_index=True)


def read_histories(
    uri: str,
    run_ids: Sequence[str],
    keys: Sequence[str],
    max_points: int = 1000,
    seed: int = 0,
    use_sql: bool | None = None,
) -> pd.DataFrame:
    """Rows of (run_id, key, step, timestamp, value); NaN and infinities are kept as such.

    ``use_sql`` forces a path (default: SQL for database URIs, the MLflow client otherwise).
    """
    run_ids, keys = list(dict.fromkeys(run_ids)), list(dict.fromkeys(keys))
    if not run_ids or not keys:
        return pd.DataFrame(columns=COLUMNS)
    if is_database_uri(uri) if use_sql is None else use_sql:
        from sqlalchemy import text

        binds = {f"r{i}": r for i, r in enumerate(run_ids)} | {f"k{i}": k for i, k in enumerate(keys)}
        run_marks = ", ".join(f":r{i}" for i in range(len(run_ids)))
        key_marks = ", ".join(f":k{i}" for i in range(len(keys)))
        with engine(uri).connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT run_uuid, key, step, timestamp, value, is_nan FROM metrics "
                    f"WHERE run_uuid IN ({run_marks}) AND key IN ({key_marks})"
                ),
                binds,
            ).fetchall()
        df = pd.DataFrame(rows, columns=[*COLUMNS, "is_nan"])
        df["value"] = df["value"].astype(float)
        df.loc[df["is_nan"].astype(bool), "value"] = np.nan
        df = df[COLUMNS]
    else:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        rows = [
            (rid, key, m.step, m.timestamp, m.value)
            for rid in run_ids
            for key in keys
            for m in client.get_metric_history(rid, key)
        ]
        df = pd.DataFrame(rows, columns=COLUMNS)
    huge = df["value"].abs() >= reader.FLOAT_MAX
    df.loc[huge, "value"] = np.sign(df.loc[huge, "value"]) * np.inf
    df = df.astype({"step": "int64", "timestamp": "int64"})
    return _cap(df, max_points, seed).reset_index(drop=True)
