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

from trellis.tracking import schema
from trellis.tracking.foreign_spaces import SUFFIX as DIST_SUFFIX
from trellis.tracking.foreign_spaces import declared_spaces, looks_log_uniform, written_as_integers
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
MISSING = {"", "None", "none", "null", "NaN", "nan"}
BOOL_STRINGS = {"True", "False", "true", "false"}
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
    declared_spaces: dict[str, dict] = field(default_factory=dict)  # other tools' recorded spaces (Optuna)

    @property
    def trials(self) -> pd.DataFrame:
        """Runs that are evaluations (not search parents)."""
        return self.runs[self.runs["kind"] != "search"]


# -- the two raw paths --------------------------------------------------------------------------


def _frame(rows: list[tuple], columns: list[str]) -> pd.DataFrame:
    """Column-wise construction with object dtype (fast ``isin``/pivot on plain Python strings)."""
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in zip(columns, zip(*rows))})


def read_raw_sql(uri: str, experiment_ids: Sequence[str], run_ids: Sequence[str] | None = None):
    """Four set-based queries over MLflow's tables. Returns (runs, params, metrics, tags, n_deleted).

    When the chosen runs are most of the store, params/metrics/tags are read by plain table scans (2-3x
    faster than 100k index lookups through a join); rows of other runs are dropped when shaping.
    """
    marks, binds = in_clause(experiment_ids)
    scope = f"r.experiment_id IN ({marks}) AND r.lifecycle_stage = 'active'"
    if run_ids is not None:
        run_marks = ", ".join(f":r{i}" for i in range(len(run_ids)))
        binds.update({f"r{i}": rid for i, rid in enumerate(run_ids)})
        scope += f" AND r.run_uuid IN ({run_marks})"
    tag_marks = ", ".join(f":t{i}" for i in range(len(LINEAGE_TAGS)))
    binds.update({f"t{i}": key for i, key in enumerate(LINEAGE_TAGS)})
    with engine(uri).connect() as conn:
        runs = fetch(
            conn,
            "SELECT r.run_uuid, r.experiment_id, e.name, r.name, r.status, r.start_time, r.end_time "
            f"FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id WHERE {scope}",
            binds,
        )
        total = fetch(conn, "SELECT count(*) FROM runs", {})[0][0] if run_ids is None else None
        if total is not None and 2 * len(runs) >= total:
            join, where = "", "WHERE 1 = 1"
        else:
            join, where = "JOIN runs r ON r.run_uuid = x.run_uuid", f"WHERE {scope}"
        params = fetch(conn, f"SELECT x.run_uuid, x.key, x.value FROM params x {join} {where}", binds)
        metrics = fetch(
            conn, f"SELECT x.run_uuid, x.key, x.value, x.is_nan FROM latest_metrics x {join} {where}", binds
        )
        tags = fetch(
            conn,
            f"SELECT x.run_uuid, x.key, x.value FROM tags x {join} {where} AND (x.key IN ({tag_marks}) "
            f"OR x.key LIKE :dist ESCAPE '!')",
            {**binds, "dist": "%!_distribution"},
        )
        deleted = fetch(
            conn,
            f"SELECT count(*) FROM runs r WHERE r.experiment_id IN ({marks}) AND r.lifecycle_stage <> 'active'",
            binds,
        )[0][0]
    runs_df = _frame(runs, ["run_id", "experiment_id", "experiment", "run_name", "status", "start_ms", "end_ms"])
    runs_df["experiment_id"] = runs_df["experiment_id"].astype(str).astype(object)
    metrics_df = _frame(metrics, ["run_id", "key", "value", "is_nan"])
    value = np.array(metrics_df["value"].to_numpy(dtype=object), dtype=float)
    if len(metrics_df):
        value[np.array(metrics_df["is_nan"].to_numpy(dtype=object), dtype=bool)] = np.nan
    metrics_df["value"] = value
    return (
        runs_df,
        _frame(params, ["run_id", "key", "value"]),
        metrics_df[["run_id", "key", "value"]],
        _frame(tags, ["run_id", "key", "value"]),
        int(deleted or 0),
    )


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


def _parse_param_column(values: pd.Series) -> tuple[pd.Series, bool]:
    """Numbers become floats (``None``-like strings become NaN); anything else stays a string."""
    raw = values.to_numpy(dtype=object)
    present = pd.notna(raw)
    given = pd.Series(raw[present], dtype=object)
    missing_like = given.isin(MISSING).to_numpy()
    if missing_like.all() or given[~missing_like].isin(BOOL_STRINGS).all():
        return values, False
    try:
        numbers = given[~missing_like].to_numpy(dtype=object).astype(float)  # float() per element: fast, strict
    except (TypeError, ValueError):
        return values, False
    if not np.isfinite(numbers).all():
        return values, False
    out = np.full(len(raw), np.nan)
    slots = np.flatnonzero(present)[~missing_like]
    out[slots] = numbers
    return pd.Series(out, index=values.index), True


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


def _log_hints(runs: pd.DataFrame) -> dict[str, bool]:
    """Log flags from the space of Trellis searches (their config tag), where present."""
    return {
        name: bool(spec.get("log"))
        for name, spec in recorded_spaces(runs).items()
        if spec.get("type") in ("float", "int")
    }


def _wide(long: pd.DataFrame, index: pd.Index, dtype: type, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """(run_id, key, value) rows to one array per key aligned to ``index`` (MLflow keeps one row per pair).

    Rows of runs outside ``index`` are dropped; ``rows`` may pass their positions when already known.
    """
    if long.empty:
        return {}
    if rows is None:
        rows = index.get_indexer(long["run_id"].to_numpy(dtype=object))
    codes, keys = pd.factorize(long["key"].to_numpy(dtype=object))
    values = long["value"].to_numpy(dtype=dtype)
    known = rows >= 0
    out: dict[str, np.ndarray] = {}
    for k, key in enumerate(keys):
        pick = known & (codes == k)
        if not pick.any():
            continue
        column = np.full(len(index), np.nan if dtype is float else None, dtype=dtype)
        column[rows[pick]] = values[pick]
        out[str(key)] = column
    return out


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
    return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").astype("Int64").array


def shape(raw, skipped_deleted: int) -> RunTable:
    """Long raw tables to one row per run. Works on numpy arrays and builds the frame once: pandas would
    otherwise re-infer every string column it is handed (about a second at 100k runs). One function on
    purpose: the columns are built in place into one dict, the hot path of every page view."""
    runs, params, metrics, tags, _ = raw
    runs = runs.drop_duplicates("run_id")
    run_id = runs["run_id"].to_numpy(dtype=object)
    index = pd.Index(run_id, dtype=object)
    cols: dict[str, Any] = {
        c: runs[c].to_numpy(dtype=object) for c in ("run_id", "experiment_id", "experiment", "run_name", "status")
    }
    start = np.array(runs["start_ms"].to_numpy(dtype=object), dtype=float)
    end = np.array(runs["end_ms"].to_numpy(dtype=object), dtype=float)
    cols["start_time"] = pd.to_datetime(start, unit="ms", utc=True)
    cols["end_time"] = pd.to_datetime(end, unit="ms", utc=True)
    cols["duration_s"] = (end - start) / 1000.0
    wide_tags = _wide(tags, index, object)
    for key, col in LINEAGE_TAGS.items():
        cols[col] = wide_tags.get(key, np.full(len(index), None, dtype=object))
    for col in INT_COLUMNS:
        cols[col] = _int_column(cols[col])
    is_parent = _group_searches(cols, run_id)

    table = RunTable(runs=pd.DataFrame(), skipped={"deleted runs": skipped_deleted} if skipped_deleted else {})
    # Hyperparameters and metrics are those of evaluations; a search parent's own params stay in MLflow.
    evaluations = pd.Index(run_id[~is_parent], dtype=object)
    spread = np.flatnonzero(~is_parent)  # position in ``index`` of each evaluation
    table.declared_spaces = declared_spaces(wide_tags)
    hints = {
        **{k: bool(v.get("log")) for k, v in table.declared_spaces.items() if v["type"] != "categorical"},
        **_log_hints(pd.DataFrame({"trellis_config": cols["trellis_config"]})),
    }
    if len(params):
        wide = _wide(params, evaluations, object)
        for key in sorted(wide):
            parsed, numeric = _parse_param_column(pd.Series(_spread(wide[key], spread, len(index)), dtype=object))
            cols[f"params.{key}"] = parsed.to_numpy()
            table.params.append(key)
            if numeric:
                table.numeric_params.add(key)
                present = parsed.dropna().to_numpy(dtype=float)
                if written_as_integers(t for t in pd.unique(wide[key]) if isinstance(t, str) and t not in MISSING):
                    table.int_params.add(key)
                log = hints[key] if key in hints else looks_log_uniform(present)  # a recorded scale wins
                if log and len(present) and present.min() > 0:
                    table.log_params.add(key)
    if len(metrics):
        rows = evaluations.get_indexer(metrics["run_id"].to_numpy(dtype=object))
        values = metrics["value"].to_numpy(dtype=float).copy()
        # MLflow's SQL stores keep infinities as the largest floats: read them back as infinities.
        huge = np.abs(values) >= FLOAT_MAX
        values[huge] = np.sign(values[huge]) * np.inf
        bad = (rows >= 0) & ~np.isfinite(values)
        for key, count in pd.Series(metrics["key"].to_numpy(dtype=object)[bad]).value_counts().sort_index().items():
            table.skipped[f"non-finite {key}"] = int(count)
        wide = _wide(metrics.assign(value=values), evaluations, float, rows=rows)
        for key in sorted(wide):
            cols[f"metrics.{key}"] = _spread(wide[key], spread, len(index))
            table.metrics.append(key)
    order = np.lexsort((run_id, start, cols["experiment_id"]))
    frame = {}
    for name, values in cols.items():
        if isinstance(values, np.ndarray):
            frame[name] = pd.Series(values[order], dtype=values.dtype, copy=False)
        else:
            frame[name] = pd.Series(values, copy=False).iloc[order].reset_index(drop=True)
    table.runs = pd.DataFrame(frame, copy=False)
    return table


def _group_searches(cols: dict[str, Any], run_id: np.ndarray) -> np.ndarray:
    """Add ``search_id`` and ``kind`` columns; returns which runs are search parents. A search groups runs:
    Trellis' own id, else the MLflow parent (sklearn, Ray Tune), else the experiment."""
    parent_id, trellis_type = cols["parent_id"], cols["trellis_type"]
    parents = set(parent_id[pd.notna(parent_id)])
    is_parent = (trellis_type == "search") | np.fromiter((r in parents for r in run_id), bool, len(run_id))
    search_id = cols["trellis_search_id"].copy()
    missing = pd.isna(search_id)
    search_id[missing] = parent_id[missing]
    search_id[is_parent] = run_id[is_parent]
    missing = pd.isna(search_id)
    search_id[missing] = "experiment:" + cols["experiment_id"][missing]
    cols["search_id"] = search_id
    cols["kind"] = np.where(is_parent, "search", np.where(trellis_type == "trial", "trial", "run")).astype(object)
    return is_parent


def _spread(values: np.ndarray, positions: np.ndarray, length: int) -> np.ndarray:
    """Values of a subset of runs placed at ``positions`` of an array of ``length`` (the rest missing)."""
    if len(positions) == length:
        return values
    out = np.full(length, np.nan if values.dtype.kind == "f" else None, dtype=values.dtype)
    out[positions] = values
    return out


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
