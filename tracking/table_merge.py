"""A live refresh at a million runs: fold the few runs that changed into the table already read.

``merge_tables(old, fresh, replaced)`` gives what a full read would (``tests/test_cache.py`` compares them): the
rows of ``replaced`` runs are swapped for their fresh rows, new runs are inserted in the table's order, and what
the reader derives from all runs (which runs are searches, which parameters are numeric, integer or log, the
counts of skipped values) is derived again. Where the fresh runs disagree with the old on a parameter's kind
(numbers then text), it answers None and the caller reads everything again.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from trellis.tracking import reader
from trellis.tracking.reader import RunTable


def merge_tables(old: RunTable, fresh: RunTable, replaced: set[str], n_deleted: int) -> RunTable | None:
    """``old`` without the ``replaced`` runs, plus ``fresh`` (the replaced runs read again, and new runs)."""
    if not _same_kinds(old, fresh):
        return None
    kept = old.runs[~old.runs["run_id"].isin(replaced)] if replaced else old.runs
    columns = list(dict.fromkeys([*old.runs.columns, *fresh.runs.columns]))
    dtypes = {**fresh.runs.dtypes.to_dict(), **old.runs.dtypes.to_dict()}
    parts = [_with_columns(kept, columns, dtypes), _with_columns(fresh.runs, columns, dtypes)]
    runs = pd.concat(parts, ignore_index=True, copy=False)
    runs = runs.iloc[_order(runs)].reset_index(drop=True) if not _in_order(runs, len(kept)) else runs
    runs = runs[[*reader.BASE_COLUMNS, *_sorted("params.", columns), *_sorted("metrics.", columns)]]
    runs = _regroup(runs)
    table = RunTable(runs=runs)
    table.params = sorted({*old.params, *fresh.params})
    table.metrics = sorted({*old.metrics, *fresh.metrics})
    table.numeric_params = old.numeric_params | fresh.numeric_params
    table.int_params = {p for p in table.numeric_params if _ints(old, p) and _ints(fresh, p)}
    table.declared_spaces = _merged_spaces(old.declared_spaces, fresh.declared_spaces)
    table.nonfinite = {
        key: frozenset(old.nonfinite.get(key, frozenset()) - replaced) | fresh.nonfinite.get(key, frozenset())
        for key in {*old.nonfinite, *fresh.nonfinite}
    }
    table.nonfinite = {k: v for k, v in table.nonfinite.items() if v}
    table.skipped = {"deleted runs": n_deleted} if n_deleted else {}
    table.skipped.update({f"non-finite {k}": len(v) for k, v in sorted(table.nonfinite.items())})
    hints = reader.scale_hints(table.declared_spaces, runs)
    for key in sorted(table.numeric_params):
        if reader.is_log(runs[f"params.{key}"].to_numpy(dtype=float), hints.get(key)):
            table.log_params.add(key)
    return table


def _sorted(prefix: str, columns: list[str]) -> list[str]:
    return sorted(c for c in columns if c.startswith(prefix))


def _same_kinds(old: RunTable, fresh: RunTable) -> bool:
    """Whether no parameter is numeric in one and text in the other."""
    shared = set(old.params) & set(fresh.params)
    return all((p in old.numeric_params) == (p in fresh.numeric_params) for p in shared)


def _ints(table: RunTable, param: str) -> bool:
    return param not in table.params or param in table.int_params


def _with_columns(frame: pd.DataFrame, columns: list[str], dtypes: dict) -> pd.DataFrame:
    """``frame`` with every column of ``columns``; a missing one is empty, of the other part's type."""
    missing = [c for c in columns if c not in frame]
    if not missing:
        return frame
    n = len(frame)
    extra = {}
    for c in missing:
        kind = dtypes[c]
        if str(kind) == "object":
            extra[c] = pd.Series(np.full(n, None, dtype=object), dtype=object, copy=False)
        else:
            extra[c] = pd.Series(np.full(n, np.nan), copy=False).astype(kind)
    return pd.concat([frame.reset_index(drop=True), pd.DataFrame(extra)], axis=1, copy=False)


def _keys(runs: pd.DataFrame) -> pa.Table:
    start = runs["start_time"].to_numpy(dtype="datetime64[us]").astype("int64").astype(float)
    start[runs["start_time"].isna().to_numpy()] = np.nan
    return pa.table(
        {
            "e": pa.array(runs["experiment_id"].to_numpy(dtype=object), pa.string()),
            "s": pa.array(start, pa.float64(), from_pandas=True),
            "r": pa.array(runs["run_id"].to_numpy(dtype=object), pa.string()),
        }
    )


def _order(runs: pd.DataFrame) -> np.ndarray:
    """The reader's order: experiment id (as text), start time, run id."""
    keys = _keys(runs)
    return pc.sort_indices(keys, sort_keys=[("e", "ascending"), ("s", "ascending"), ("r", "ascending")]).to_numpy()


def _in_order(runs: pd.DataFrame, first_new: int) -> bool:
    """Whether the appended rows already sort after the kept ones (the usual case: runs that just started)."""
    if first_new == 0 or first_new == len(runs):
        return first_new == len(runs)
    tail = runs.iloc[first_new - 1 :]
    order = _order(tail)
    return bool((order == np.arange(len(tail))).all())


def _regroup(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs that became a search's parent since they were read (their first child is new) become searches,
    with no evaluation values, as a full read would have them."""
    parents = set(runs["parent_id"].dropna())
    turned = runs["run_id"].isin(parents).to_numpy() & (runs["kind"] != "search").to_numpy()
    if not turned.any():
        return runs
    runs = runs.copy()
    runs.loc[turned, "kind"] = "search"
    runs.loc[turned, "search_id"] = runs.loc[turned, "run_id"]
    for column in runs.columns:
        if column.startswith(("params.", "metrics.")):
            runs.loc[turned, column] = np.nan if runs[column].dtype.kind == "f" else None
    return runs


def _merged_spaces(old: dict[str, dict], fresh: dict[str, dict]) -> dict[str, dict]:
    merged = {name: dict(spec) for name, spec in old.items()}
    for name, spec in fresh.items():
        have = merged.setdefault(name, dict(spec))
        if have is spec or have == spec:
            continue
        if have["type"] == spec["type"] == "categorical":
            have["choices"] = list(dict.fromkeys([*have["choices"], *spec["choices"]]))
        elif have["type"] == spec["type"]:
            have["low"], have["high"] = min(have["low"], spec["low"]), max(have["high"], spec["high"])
            have["log"] = have["log"] or spec["log"]
    return merged
