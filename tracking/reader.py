"""Read MLflow runs into one typed frame, fast.

``read_runs(uri, experiment_ids)`` returns a ``RunTable``: one row per active run with its identity,
status, times, Trellis lineage, typed params (``params.<name>``) and latest metrics
(``metrics.<name>``). On a database URI it reads MLflow's tables directly in four set-based queries
(runs, params, latest metrics, the few tags that matter); elsewhere it uses ``mlflow.search_runs``.
Both paths return the same frame (``tests/test_reader.py``).

Over 400 lines: the two read paths and the one shaping function are one hot path, profiled together.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from trellis.tracking import schema, wide
from trellis.tracking.foreign_spaces import SUFFIX as DIST_SUFFIX
from trellis.tracking.foreign_spaces import declared_spaces, looks_log_uniform
from trellis.tracking.sql import engine, fetch, in_clause
from trellis.tracking.uris import is_database_uri

# Tags read into columns (everything else stays in MLflow).
LINEAGE_TAGS = {
    schema.MLFLOW_PARENT_RUN: "parent_id",
    schema.TYPE: "trellis_type",
    schema.SEARCH_ID: "trellis_search_id",
    schema.SEARCH_NAME: "search_name",
    schema.ALGORITHM: "algorithm",
    schema.OBJECTIVE: "objective",
    schema.DIRECTION: "direction",
    schema.OBJECTIVES: "objectives",  # a search's objectives, JSON (several objectives)
    schema.PARETO_RANK: "pareto_rank",  # a completed trial's Pareto rank (several objectives)
    schema.TRIAL_NUMBER: "trial",
    schema.END_REASON: "end_reason",
    schema.BUDGET_REACHED: "budget_reached",
    schema.BRACKET: "bracket",
    schema.RUNG: "rung",
    schema.PBT_PARENT: "pbt_parent",
    schema.PBT_GENERATION: "pbt_generation",
    schema.CONFIG_JSON: "trellis_config",
    schema.ERROR: "error",  # one line: why a trial failed (the search diagnosis counts them)
    schema.STOPPED_AT_RUNG: "stopped_at_rung",
    schema.RESUMED_FROM: "resumed_from",  # Stop-and-Go: the step an early-stopped trial went on from
    schema.GPU: "gpu",  # the GPU ids the trial ran on (the overview's table and hover show them)
    schema.ORIGIN_MODEL: "origin_model",  # an ablation's or variation's child: its parent model's run id
    schema.ORIGIN_CHANGE: "origin_change",  # ... and the change that made it
    schema.ORIGIN_QUEUE: "origin_queue",  # on a children search: its waiting children's order
}
INT_COLUMNS = (
    "trial",
    "budget_reached",
    "bracket",
    "rung",
    "pbt_parent",
    "pbt_generation",
    "stopped_at_rung",
    "resumed_from",
    "pareto_rank",
)
BASE_COLUMNS = [
    "run_id",
    "experiment_id",
    "experiment",
    "run_name",
    "status",
    "start_time",
    "end_time",
    "duration_s",
    *LINEAGE_TAGS.values(),
    "search_id",
    "kind",
]
FLOAT_MAX = 1.7976931348623157e308


@dataclass
class RunTable:
    """Runs as a frame plus what a view needs to draw them honestly."""

    runs: pd.DataFrame
    params: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    numeric_params: set[str] = field(default_factory=set)
    log_params: set[str] = field(default_factory=set)  # recorded as log, else sampled evenly in log space
    int_params: set[str] = field(default_factory=set)  # numeric params every run logged as an integer literal
    skipped: dict[str, int] = field(default_factory=dict)
    nonfinite: dict[str, frozenset] = field(default_factory=dict)  # metric -> runs that logged NaN or infinity
    declared_spaces: dict[str, dict] = field(default_factory=dict)  # other tools' recorded spaces (Optuna)

    @property
    def trials(self) -> pd.DataFrame:
        """Runs that are evaluations (not search parents). When they stand side by side (a search's parent
        starts before its trials), a slice that shares the table's memory: a million runs are not copied."""
        evaluation = (self.runs["kind"] != "search").to_numpy()
        rows = np.flatnonzero(evaluation)
        if len(rows) and rows[-1] - rows[0] + 1 == len(rows):
            return self.runs.iloc[rows[0] : rows[-1] + 1]
        return self.runs[evaluation]


# -- the two raw paths --------------------------------------------------------------------------

RUN_COLUMNS = ("run_id", "experiment_id", "experiment", "run_name", "status", "start_ms", "end_ms")
LONG_COLUMNS = ("run_id", "key", "value")


def _frame(rows: list[tuple], columns: list[str]) -> pd.DataFrame:
    """Column-wise construction with object dtype (fast ``isin``/pivot on plain Python strings)."""
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in zip(columns, zip(*rows))})


def read_raw_sql(
    uri: str, experiment_ids: Sequence[str], run_ids: Sequence[str] | None = None, n_deleted: int | None = None
):
    """Set-based queries over MLflow's tables, read as Arrow tables (``tracking.columnar``). Returns
    (runs, params, metrics, tags, n_deleted).

    When the chosen runs are most of the store, params/metrics/tags are read by plain table scans (2-3x
    faster than index lookups through a join); rows of other runs are dropped when shaping. A caller reading
    a few ``run_ids`` that knows how many runs are deleted (the run cache's fingerprint) passes
    ``n_deleted``: no scan of the runs table then.
    """
    from trellis.tracking.columnar import Query, fetch_tables

    marks, binds = in_clause(experiment_ids)
    scope = f"r.experiment_id IN ({marks}) AND r.lifecycle_stage = 'active'"
    if run_ids is not None:
        run_marks = ", ".join(f":r{i}" for i in range(len(run_ids)))
        binds.update({f"r{i}": rid for i, rid in enumerate(run_ids)})
        scope += f" AND r.run_uuid IN ({run_marks})"
    tag_marks = ", ".join(f":t{i}" for i in range(len(LINEAGE_TAGS)))
    binds.update({f"t{i}": key for i, key in enumerate(LINEAGE_TAGS)})
    if run_ids is None or n_deleted is None:
        with engine(uri).connect() as conn:
            counts = fetch(
                conn,
                "SELECT sum(CASE WHEN r.lifecycle_stage = 'active' THEN 1 ELSE 0 END), "
                "sum(CASE WHEN r.lifecycle_stage <> 'active' THEN 1 ELSE 0 END) "
                f"FROM runs r WHERE r.experiment_id IN ({marks})",
                binds,
            )[0]
            total = fetch(conn, "SELECT count(*) FROM runs", {})[0][0] if run_ids is None else None
        n_deleted = int(counts[1] or 0)
    if run_ids is None and 2 * int(counts[0] or 0) >= total:
        join, where = "", "WHERE 1 = 1"
    else:
        join, where = "JOIN runs r ON r.run_uuid = x.run_uuid", f"WHERE {scope}"
    tag_filter = f"AND (x.key IN ({tag_marks}) OR x.key LIKE '%!_distribution' ESCAPE '!')"
    listed = {
        "runs": Query(
            f"SELECT r.run_uuid, r.experiment_id, r.name, r.status, r.start_time, r.end_time FROM runs r WHERE {scope}",
            binds,
            ("run_id", "experiment_id", "run_name", "status", "start_ms", "end_ms"),
        ),
        "experiments": Query(
            f"SELECT e.experiment_id, e.name FROM experiments e WHERE e.experiment_id IN ({marks})",
            binds,
            ("experiment_id", "experiment"),
        ),
    }
    got = fetch_tables(uri, listed)
    runs = _unique_sorted(_with_experiment_names(got["runs"], got["experiments"]), unique=True)
    index = wide.string_column(runs["run_id"]).combine_chunks()
    queries = {  # the largest first: two connections share them
        "params": Query(f"SELECT x.run_uuid, x.key, x.value FROM params x {join} {where}", binds, LONG_COLUMNS),
        "metrics": Query(
            f"SELECT x.run_uuid, x.key, x.value, x.is_nan FROM latest_metrics x {join} {where}",
            binds,
            (*LONG_COLUMNS, "is_nan"),
        ),
        "tags": Query(
            f"SELECT x.run_uuid, x.key, x.value FROM tags x {join} {where} {tag_filter}", binds, LONG_COLUMNS
        ),
    }
    long = wide.assemble(fetch_tables(uri, queries, each_batch=wide.compact), index)
    wide.give_back_memory()
    return [runs, long.pop("params"), long.pop("metrics"), long.pop("tags"), n_deleted]


def _with_experiment_names(runs: pa.Table, experiments: pa.Table) -> pa.Table:
    ids = pc.cast(runs["experiment_id"], pa.string())
    known = pc.cast(experiments["experiment_id"], pa.string()).combine_chunks()
    names = pc.take(experiments["experiment"].combine_chunks(), pc.index_in(ids, value_set=known))
    columns = {"run_id": runs["run_id"], "experiment_id": ids, "experiment": names}
    columns.update({c: runs[c] for c in ("run_name", "status", "start_ms", "end_ms")})
    return pa.table(columns)


def read_raw_client(uri: str, experiment_ids: Sequence[str]):
    """The reference path: ``mlflow.search_runs`` (pages through the store) turned into long tables."""
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    client = MlflowClient(tracking_uri=uri)
    runs, params, metrics, tags = [], [], [], []
    names = {e: client.get_experiment(e).name for e in experiment_ids}
    page_token = None
    while True:
        page = client.search_runs(list(experiment_ids), max_results=50000, page_token=page_token)
        for run in page:
            info = run.info
            runs.append(
                (
                    info.run_id,
                    info.experiment_id,
                    names[info.experiment_id],
                    info.run_name,
                    info.status,
                    info.start_time,
                    info.end_time,
                )
            )
            params += [(info.run_id, k, v) for k, v in run.data.params.items()]
            metrics += [(info.run_id, k, v) for k, v in run.data.metrics.items()]
            tags += [
                (info.run_id, k, v) for k, v in run.data.tags.items() if k in LINEAGE_TAGS or k.endswith(DIST_SUFFIX)
            ]
        page_token = page.token
        if not page_token:
            break
    deleted = len(client.search_runs(list(experiment_ids), run_view_type=ViewType.DELETED_ONLY, max_results=50000))
    metrics_df = _frame(metrics, ["run_id", "key", "value"])
    metrics_df["value"] = pd.to_numeric(metrics_df["value"], errors="coerce").astype(float)
    return (
        _frame(runs, ["run_id", "experiment_id", "experiment", "run_name", "status", "start_ms", "end_ms"]),
        _frame(params, ["run_id", "key", "value"]),
        metrics_df,
        _frame(tags, ["run_id", "key", "value"]),
        deleted,
    )


# -- shaping ------------------------------------------------------------------------------------


def recorded_spaces(runs: pd.DataFrame) -> dict[str, dict]:
    """Union of the spaces Trellis searches recorded (widest bounds, all choices, log if any search)."""
    merged: dict[str, dict] = {}
    if "trellis_config" not in runs:
        return merged
    for text in pd.Series(runs["trellis_config"]).dropna().unique():
        try:
            space = json.loads(text).get("space", {})
        except (ValueError, AttributeError):
            continue
        for name, spec in space.items():
            if not isinstance(spec, dict):
                continue
            have = merged.setdefault(name, dict(spec))
            if spec.get("type") in ("float", "int") and have.get("type") == spec.get("type"):
                have["low"], have["high"] = min(have["low"], spec["low"]), max(have["high"], spec["high"])
                have["log"] = bool(have.get("log")) or bool(spec.get("log"))
            elif spec.get("type") == "categorical" and have.get("type") == "categorical":
                have["choices"] = list(dict.fromkeys([*have["choices"], *spec["choices"]]))
    return merged


def spaces_of(table: RunTable) -> dict[str, dict]:
    """The spaces the runs were searched in: Trellis' own config, else what another tool declared."""
    return {**table.declared_spaces, **recorded_spaces(table.runs)}


def scale_hints(declared: dict[str, dict], runs: pd.DataFrame) -> dict[str, bool]:
    """Recorded log flags: what another tool declared, overridden by Trellis' own recorded spaces."""
    return {
        **{k: bool(v.get("log")) for k, v in declared.items() if v["type"] != "categorical"},
        **_log_hints(runs),
    }


LOG_TEST_SAMPLE = 100_000  # values enough to tell a log scale from a linear one (evenly strided, deterministic)


def is_log(values: np.ndarray, hint: bool | None) -> bool:
    """Whether a numeric parameter is on a log scale: the recorded scale when there is one, else read from
    its values; never with a value at or below zero."""
    present = values[~np.isnan(values)]
    if hint is None:
        hint = looks_log_uniform(present[:: max(1, len(present) // LOG_TEST_SAMPLE)])
    return bool(hint) and len(present) > 0 and present.min() > 0


def _log_hints(runs: pd.DataFrame) -> dict[str, bool]:
    """Log flags from the space of Trellis searches (their config tag), where present."""
    return {
        name: bool(spec.get("log"))
        for name, spec in recorded_spaces(runs).items()
        if spec.get("type") in ("float", "int")
    }


@contextmanager
def gc_paused():
    """Reading 100k runs makes ~10^6 small objects; the cyclic GC would rescan the heap many times over."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _int_column(values: np.ndarray) -> pd.arrays.IntegerArray:
    present = pd.notna(values)
    if not present.any():
        return pd.array(np.zeros(len(values), dtype="int64"), dtype="Int64") * pd.NA
    try:  # integers as logged: Arrow parses them without a Python object each
        ints = pc.cast(pa.array(values, pa.string(), from_pandas=True), pa.int64())
        return pd.arrays.IntegerArray(ints.fill_null(0).to_numpy(), ~present)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").astype("Int64").array


def as_arrow(table, columns: Sequence[str]) -> pa.Table:
    """A raw table as Arrow (the SQL path gives Arrow; the client path and made-up runs give pandas frames)."""
    if isinstance(table, pa.Table):
        return table
    return pa.table({c: _arrow_column(table[c]) for c in columns})


def _arrow_column(values: pd.Series) -> pa.Array:
    """Text stays text (None as null); anything else is read as numbers (the metric values, run times)."""
    raw = values.to_numpy(dtype=object)
    present = raw[pd.notna(raw)]
    if len(present) == 0 or all(isinstance(v, str) for v in present):
        return pa.array(raw, pa.string(), from_pandas=True)
    return pa.array(pd.to_numeric(pd.Series(raw), errors="coerce").to_numpy(dtype=float), pa.float64())


def shape(raw, skipped_deleted: int) -> RunTable:
    """Long raw tables to one row per run, sorted by experiment, start and id. Works on Arrow and numpy and
    builds the frame once: the hot path of every page view, and of a million-run read (``tracking.wide``).
    A list (as read_raw_sql gives) is emptied as its tables are used, so each is freed as soon as it can be."""
    params, metrics, tags = (as_arrow(t, LONG_COLUMNS) for t in raw[1:4])
    if isinstance(raw, list):
        raw[1:4] = [None, None, None]
    located = "row" in params.column_names  # read_raw_sql's runs come unique and sorted, rows found
    runs = as_arrow(raw[0], RUN_COLUMNS) if located else _unique_sorted(as_arrow(raw[0], RUN_COLUMNS))
    index = wide.string_column(runs["run_id"]).combine_chunks()
    run_ids = wide.as_objects(index, unique=True)
    n = len(run_ids)
    cols: dict[str, Any] = {"run_id": run_ids}
    cols["experiment_id"] = wide.as_objects(pc.cast(runs["experiment_id"], pa.string()))
    for c in ("experiment", "run_name", "status"):
        cols[c] = wide.as_objects(wide.string_column(runs[c]))
    start, end = (pc.cast(runs[c], pa.float64()).to_numpy() for c in ("start_ms", "end_ms"))
    cols["start_time"] = pd.to_datetime(start, unit="ms", utc=True)
    cols["end_time"] = pd.to_datetime(end, unit="ms", utc=True)
    cols["duration_s"] = (end - start) / 1000.0
    wide_tags = _wide_text(tags, index, n)
    del tags
    for key, col in LINEAGE_TAGS.items():
        cols[col] = wide_tags.get(key, np.full(n, None, dtype=object))
    for col in INT_COLUMNS:
        cols[col] = _int_column(cols[col])
    is_parent = _group_searches(cols)

    table = RunTable(runs=pd.DataFrame(), skipped={"deleted runs": skipped_deleted} if skipped_deleted else {})
    # Hyperparameters and metrics are those of evaluations; a search parent's own params stay in MLflow.
    table.declared_spaces = declared_spaces(wide_tags)
    hints = scale_hints(table.declared_spaces, pd.DataFrame({"trellis_config": cols["trellis_config"]}))
    rows = _evaluation_rows(params, index, is_parent)
    for key, key_rows, values in wide.grouped(params["key"], rows, params["value"]):
        column = wide.ParamColumn(values, key_rows, n)
        cols[f"params.{key}"] = column.values
        table.params.append(key)
        if column.numeric:
            table.numeric_params.add(key)
            if column.integers:
                table.int_params.add(key)
            if is_log(column.values, hints.get(key)):
                table.log_params.add(key)
    del params
    wide.give_back_memory()
    rows = _evaluation_rows(metrics, index, is_parent)
    values = pc.cast(metrics["value"], pa.float64()).to_numpy().copy() if len(metrics) else np.empty(0)
    # MLflow's SQL stores keep infinities as the largest floats: read them back as infinities.
    huge = np.abs(values) >= FLOAT_MAX
    values[huge] = np.sign(values[huge]) * np.inf
    for key, key_rows, key_values in wide.grouped(metrics["key"], rows, values):
        column = np.full(n, np.nan)
        column[key_rows] = key_values
        bad = ~np.isfinite(key_values)
        if bad.any():
            table.nonfinite[key] = frozenset(run_ids[key_rows[bad]])
            table.skipped[f"non-finite {key}"] = len(table.nonfinite[key])
        cols[f"metrics.{key}"] = column
        table.metrics.append(key)
    del metrics
    table.runs = pd.DataFrame(
        {c: pd.Series(v, dtype=v.dtype if isinstance(v, np.ndarray) else None, copy=False) for c, v in cols.items()},
        copy=False,
    )  # object arrays stay object: pandas would otherwise re-infer every text column
    del cols
    wide.give_back_memory()
    return table


def _unique_sorted(runs: pa.Table, unique: bool = False) -> pa.Table:
    """One row per run id (the first), ordered by experiment id (as text), start time and id. ``unique``: the
    ids are known to be unique (MLflow's primary key)."""
    ids = wide.string_column(runs["run_id"]).combine_chunks()
    if not unique:
        distinct = pc.unique(ids)
        if len(distinct) < len(ids):
            _, first = np.unique(pc.index_in(ids, value_set=distinct).to_numpy(), return_index=True)
            runs = runs.take(pa.array(np.sort(first)))
            ids = wide.string_column(runs["run_id"]).combine_chunks()
    experiments = pc.cast(runs["experiment_id"], pa.string())
    names = sorted(v for v in pc.unique(experiments).to_pylist() if v is not None)  # a few: ranked as text
    rank = pc.index_in(experiments, value_set=pa.array(names, pa.string()))
    keys = pa.table({"e": rank, "s": pc.cast(runs["start_ms"], pa.float64()), "r": ids})
    order = pc.sort_indices(keys, sort_keys=[("e", "ascending"), ("s", "ascending"), ("r", "ascending")])
    return runs.take(order)


def _rows(long: pa.Table, index: pa.Array) -> np.ndarray:
    """Each long row's run position, -1 for a run that is not read (read_raw_sql found them as it read)."""
    if "row" in long.column_names:
        return long["row"].to_numpy().astype(np.int64)
    return wide.positions(long["run_id"], index)


def _evaluation_rows(long: pa.Table, index: pa.Array, is_parent: np.ndarray) -> np.ndarray:
    """Each long row's run position, -1 for a run that is not read or is a search parent."""
    rows = _rows(long, index)
    if len(rows):
        rows[(rows >= 0) & is_parent[np.maximum(rows, 0)]] = -1
    return rows


def _wide_text(long: pa.Table, index: pa.Array, n: int) -> dict[str, np.ndarray]:
    """Tags as one text column per key."""
    return {
        key: wide.text_column(values, key_rows, n)
        for key, key_rows, values in wide.grouped(long["key"], _rows(long, index), long["value"])
    }


def _group_searches(cols: dict[str, Any]) -> np.ndarray:
    """Add ``search_id`` and ``kind`` columns; returns which runs are search parents. A search groups runs:
    Trellis' own id, else the MLflow parent (sklearn, Ray Tune), else the experiment."""
    parent_id, trellis_type, run_id = cols["parent_id"], cols["trellis_type"], cols["run_id"]
    parents = set(parent_id[pd.notna(parent_id)])
    is_parent = (trellis_type == "search") | pd.Index(run_id, dtype=object).isin(parents)
    search_id = cols["trellis_search_id"].copy()
    missing = pd.isna(search_id)
    search_id[missing] = parent_id[missing]
    search_id[is_parent] = run_id[is_parent]
    missing = pd.isna(search_id)
    search_id[missing] = "experiment:" + cols["experiment_id"][missing]
    cols["search_id"] = search_id
    cols["kind"] = np.where(is_parent, "search", np.where(trellis_type == "trial", "trial", "run")).astype(object)
    return is_parent


def read_runs(uri: str, experiment_ids: Sequence[str], *, use_sql: bool | None = None) -> RunTable:
    """All active runs of the experiments. ``use_sql`` forces a path (default: SQL for database URIs)."""
    ids = [str(e) for e in experiment_ids]
    if not ids:
        return shape((_empty_runs(), *(_empty_long() for _ in range(3)), 0), 0)
    sql = is_database_uri(uri) if use_sql is None else use_sql
    with gc_paused():
        raw = read_raw_sql(uri, ids) if sql else read_raw_client(uri, ids)
        return shape(raw, raw[4])


def _empty_runs() -> pd.DataFrame:
    return _frame([], ["run_id", "experiment_id", "experiment", "run_name", "status", "start_ms", "end_ms"])


def _empty_long() -> pd.DataFrame:
    return _frame([], ["run_id", "key", "value"])


def finite(values: pd.Series) -> pd.Series:
    """Only finite numbers (NaN and infinities dropped)."""
    v = pd.to_numeric(values, errors="coerce")
    return v[np.isfinite(v)]
