"""What the exploration page reads beyond the run table: the few lineage tags the reader leaves in MLflow, the
rung of every Hyperband/BOHB evaluation (the ``trellis.rung`` metric) and the objective at chosen steps.

Two reads, each a few set-based queries on a database store (the MLflow client elsewhere):
``read_lineage`` (tags, rungs, each run's last step of the objective), then ``read_values_at`` (the
objective at the steps the analysis asks for, and at each run's last step). Never whole histories: a
10k-trial search with 100 epochs each would be a million rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from trellis.tracking import schema
from trellis.tracking.sql import engine, fetch, in_clause
from trellis.tracking.uris import is_database_uri

EXTRA_TAGS = (schema.STOPPED_AT_RUNG, schema.PBT_REPLACED, schema.RESUMED_FROM, schema.MODEL_BASED)
FLOAT_MAX = 1.7976931348623157e308


class Lineage(NamedTuple):
    tags: pd.DataFrame  # run_id, key, value: the EXTRA_TAGS runs carry
    rungs: pd.DataFrame  # run_id, step, rung: the trellis.rung metric, one row per evaluation
    last_steps: pd.DataFrame  # run_id, step: the last step each run logged the objective at


def _marks(prefix: str, values: Sequence) -> tuple[str, dict]:
    binds = {f"{prefix}{i}": v for i, v in enumerate(values)}
    return ", ".join(f":{k}" for k in binds), binds


def _frame(rows: list[tuple], columns: list[str]) -> pd.DataFrame:
    """The rows as a frame; with none, columns of object dtype (an empty column defaults to float, and a merge
    of float ``run_id`` with text ones fails: the exploration page of a search with no rung yet answered 500)."""
    if rows:
        return pd.DataFrame(rows, columns=columns)
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})


def _scope(experiment_ids: Sequence[str]) -> tuple[str, dict]:
    """The runs of these experiments, as a subquery: a few binds, where 10k run ids would cost more to bind
    (SQLAlchemy compiles each) than the query takes; rows of runs not asked for are dropped after."""
    marks, binds = in_clause(experiment_ids)
    return (
        f"(SELECT run_uuid FROM runs WHERE experiment_id IN ({marks}) AND lifecycle_stage = 'active')",
        binds,
    )


def read_lineage(uri: str, experiment_ids: Sequence[str], run_ids: Sequence[str], objective: str | None) -> Lineage:
    """The extra tags, the rungs and each run's last step of the objective, for ``run_ids`` (runs of
    ``experiment_ids``)."""
    tags, rungs, last = [], [], []
    wanted = set(run_ids)
    if is_database_uri(uri):
        scope, binds = _scope(experiment_ids)
        tag_marks, tag_binds = _marks("t", EXTRA_TAGS)
        with engine(uri).connect() as conn:
            tags = fetch(
                conn,
                f"SELECT run_uuid, key, value FROM tags WHERE run_uuid IN {scope} AND key IN ({tag_marks})",
                binds | tag_binds,
            )
            rungs = fetch(
                conn,
                f"SELECT run_uuid, step, value FROM metrics WHERE run_uuid IN {scope} AND key = :rung",
                binds | {"rung": schema.RUNG},
            )
            last = fetch(
                conn,
                f"SELECT run_uuid, max(step) FROM metrics WHERE run_uuid IN {scope} AND key = :obj GROUP BY run_uuid",
                binds | {"obj": objective or ""},
            )
        tags, rungs, last = ([r for r in rows if r[0] in wanted] for rows in (tags, rungs, last))
    else:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        for run_id in dict.fromkeys(run_ids):
            run = client.get_run(run_id)
            tags += [(run_id, k, v) for k, v in run.data.tags.items() if k in EXTRA_TAGS]
            rungs += [(run_id, m.step, m.value) for m in client.get_metric_history(run_id, schema.RUNG)]
            if objective:
                steps = [m.step for m in client.get_metric_history(run_id, objective)]
                last += [(run_id, max(steps))] if steps else []
    rung_frame = _frame(rungs, ["run_id", "step", "rung"]).astype({"step": "int64", "rung": "float64"})
    rung_frame = rung_frame.drop_duplicates(["run_id", "step"], keep="last").reset_index(drop=True)
    return Lineage(
        _frame(tags, ["run_id", "key", "value"]),
        rung_frame,
        _frame(last, ["run_id", "step"]).astype({"step": "int64"}),
    )


def read_values_at(
    uri: str, experiment_ids: Sequence[str], run_ids: Sequence[str], objective: str, steps: Sequence[int]
) -> pd.DataFrame:
    """(run_id, step, value): the objective of each run at ``steps`` and at its own last step (the latest value
    where a step was logged twice; NaN kept, MLflow's largest floats read back as infinities)."""
    steps = sorted({int(s) for s in steps})
    rows: list[tuple] = []
    if is_database_uri(uri):
        scope, binds = _scope(experiment_ids)
        step_marks, step_binds = _marks("s", steps or [-1])
        with engine(uri).connect() as conn:
            rows = fetch(
                conn,
                "SELECT m.run_uuid, m.step, m.timestamp, m.value, m.is_nan FROM metrics m "
                "JOIN (SELECT run_uuid, max(step) AS last FROM metrics "
                f"      WHERE run_uuid IN {scope} AND key = :obj GROUP BY run_uuid) l "
                "ON l.run_uuid = m.run_uuid "
                f"WHERE m.key = :obj AND (m.step = l.last OR m.step IN ({step_marks}))",
                binds | step_binds | {"obj": objective},
            )
        wanted = set(run_ids)
        rows = [r for r in rows if r[0] in wanted]
    else:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        at = set(steps)
        for run_id in dict.fromkeys(run_ids):
            history = client.get_metric_history(run_id, objective)
            if not history:
                continue
            last = max(m.step for m in history)
            rows += [(run_id, m.step, m.timestamp, m.value, False) for m in history if m.step in at or m.step == last]
    frame = _frame(rows, ["run_id", "step", "timestamp", "value", "is_nan"])
    values = np.array(frame["value"].to_numpy(dtype=object), dtype=float)
    if len(frame):
        values[np.array(frame["is_nan"].to_numpy(dtype=object), dtype=bool)] = np.nan
    huge = np.abs(values) >= FLOAT_MAX
    values[huge] = np.sign(values[huge]) * np.inf
    frame = frame.assign(value=values).astype({"step": "int64", "timestamp": "int64"})
    frame = frame.sort_values(["run_id", "step", "timestamp"], kind="stable")
    frame = frame.drop_duplicates(["run_id", "step"], keep="last")
    return frame[["run_id", "step", "value"]].reset_index(drop=True)
