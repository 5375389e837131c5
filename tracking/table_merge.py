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
from trellis.tracking.foreign_spaces import widen
from trellis.tracking.reader import RunTable


def merge_tables(old: RunTable, fresh: RunTable, replaced: set[str], n_deleted: int) -> RunTable | None:
    """``old`` without the ``replaced`` runs, plus ``fresh`` (the replaced runs read again, and new runs)."""
    if not _same_kinds(old, fresh):
        return None
    columns = list(dict.fromkeys([*old.runs.columns, *fresh.runs.columns]))
    columns = [*reader.BASE_COLUMNS, *_sorted("params.", columns), *_sorted("metrics.", columns)]
    runs, first_new = _combined(old.runs, fresh.runs, replaced, columns)
    if not _in_order(runs, first_new):
        runs = runs.iloc[_order(runs)].reset_index(drop=True)
    runs = _regroup(runs, fresh.runs)
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


def _combined(old: pd.DataFrame, fresh: pd.DataFrame, replaced: set[str], columns: list[str]):
    """(the merged frame, where its new runs start): old rows of runs read again are updated in place (their
    place in the order, by experiment and start, does not change), new runs are appended, replaced runs the
    fresh read no longer has are dropped. Built column by column: a concat of a million-row frame costs more."""
    fresh_ids = pd.Index(fresh["run_id"].to_numpy(dtype=object), dtype=object)
    old_ids = old["run_id"]
    hit = np.flatnonzero(old_ids.isin(fresh_ids).to_numpy())
    source = fresh_ids.get_indexer(old_ids.to_numpy(dtype=object)[hit])
    added = np.flatnonzero(~fresh_ids.isin(old_ids.to_numpy(dtype=object)[hit]))
    gone = replaced - set(fresh_ids)
    keep = ~old_ids.isin(gone).to_numpy() if gone else None
    dtypes = {**fresh.dtypes.to_dict(), **old.dtypes.to_dict()}
    merged = {}
    for c in columns:
        a, b = _array(old, c, dtypes[c]), _array(fresh, c, dtypes[c])
        if len(hit) and not _equal(a[hit], b[source]):  # most columns of a run read again did not change
            a = a.copy()
            a[hit] = b[source]
        if keep is not None:
            a = a[keep]
        values = _concat(a, b[added])
        merged[c] = pd.Series(values, dtype=object if str(values.dtype) == "object" else values.dtype, copy=False)
    frame = pd.DataFrame(merged, copy=False)
    return frame, len(frame) - len(added)


def _equal(before, after) -> bool:
    try:
        return pd.Series(before, copy=False).reset_index(drop=True).equals(pd.Series(after, copy=False))
    except (TypeError, ValueError):
        return False


def _array(frame: pd.DataFrame, column: str, dtype):
    """A column's values (an extension array), or an empty column of ``dtype`` where the frame has none."""
    if column in frame:
        return frame[column].array
    if str(dtype) == "object":
        return pd.array(np.full(len(frame), None, dtype=object), dtype=object)
    return pd.Series(np.full(len(frame), np.nan)).astype(dtype).array


def _concat(a, b):
    if len(b) == 0:
        return a
    if a.dtype == b.dtype:
        return type(a)._concat_same_type([a, b])
    return pd.concat([pd.Series(a), pd.Series(b)], ignore_index=True).array


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
    if first_new == 0 or first_new >= len(runs):
        return True if first_new >= len(runs) else bool((_order(runs) == np.arange(len(runs))).all())
    tail = runs.iloc[first_new - 1 :]
    order = _order(tail)
    return bool((order == np.arange(len(tail))).all())


def _regroup(runs: pd.DataFrame, fresh: pd.DataFrame) -> pd.DataFrame:
    """Runs that became a search's parent since they were read (their first child is new) become searches,
    with no evaluation values, as a full read would have them."""
    parents = set(fresh["parent_id"].dropna())
    if not parents:
        return runs
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
        if name in merged:
            widen(merged[name], spec)
        else:
            merged[name] = dict(spec)
    return merged
