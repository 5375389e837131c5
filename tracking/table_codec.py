"""A RunTable as bytes for the run cache that workers share, and back, without anything that can run code.

The bytes are a magic line, a msgpack header (the fingerprint, the table's lists and sets, each column's name
and pandas type) and one Arrow IPC stream of the columns. Reading them back looks at nothing but those plain
values and Arrow's own arrays of numbers and strings: no pickle, no Arrow extension types, no pandas metadata.
A column of a type the codec does not know makes the entry stay in the process' memory only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from trellis.tracking import wide
from trellis.tracking.reader import RunTable

MAGIC = b"trellis-runs-2\n"
TIME_KINDS = {f"datetime64[{unit}, UTC]": unit for unit in ("s", "ms", "us", "ns")}
KINDS = {"object", "float64", "int64", "bool", "Int64", *TIME_KINDS}
_ARROW = {"float64": pa.float64(), "int64": pa.int64(), "bool": pa.bool_(), "Int64": pa.int64()}


class NotPlain(ValueError):
    """A value the shared cache does not hold (the entry stays in this process' memory)."""


def encode(fingerprint: tuple, table: RunTable) -> bytes:
    import msgpack

    runs = table.runs
    kinds = [str(t) for t in runs.dtypes]
    if not set(kinds) <= KINDS:
        raise NotPlain(f"column types {sorted(set(kinds) - KINDS)}")
    arrays = [_to_arrow(runs[c], kind) for c, kind in zip(runs.columns, kinds)]
    batch = pa.record_batch(arrays, names=[f"c{i}" for i in range(len(arrays))])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as stream:
        stream.write_batch(batch)
    header = {
        "fp": list(fingerprint),
        "columns": list(runs.columns),
        "kinds": kinds,
        "params": table.params,
        "metrics": table.metrics,
        "numeric": sorted(table.numeric_params),
        "log": sorted(table.log_params),
        "int": sorted(table.int_params),
        "skipped": table.skipped,
        "nonfinite": {k: sorted(v) for k, v in table.nonfinite.items()},
        "declared": table.declared_spaces,
    }
    try:
        head = msgpack.packb(header)
    except (TypeError, ValueError, OverflowError) as exc:
        raise NotPlain(str(exc)) from exc
    return MAGIC + len(head).to_bytes(8, "little") + head + sink.getvalue().to_pybytes()


def decode(blob: bytes) -> tuple[tuple, RunTable]:
    """(fingerprint, table); raises ValueError (or a msgpack/Arrow error) on anything that is not one."""
    import msgpack

    if not blob.startswith(MAGIC):
        raise ValueError("not a Trellis run table")
    start = len(MAGIC) + 8
    size = int.from_bytes(blob[len(MAGIC) : start], "little")
    header = msgpack.unpackb(blob[start : start + size], strict_map_key=True)
    if not set(header["kinds"]) <= KINDS or len(header["kinds"]) != len(header["columns"]):
        raise ValueError("unknown column types")
    with pa.ipc.open_stream(pa.py_buffer(blob[start + size :])) as stream:
        batch = stream.read_all()
    if batch.num_columns != len(header["columns"]):
        raise ValueError("columns missing")
    columns = {
        name: _from_arrow(batch.column(i), kind)
        for i, (name, kind) in enumerate(zip(header["columns"], header["kinds"]))
    }
    table = RunTable(runs=pd.DataFrame(columns, copy=False))
    table.params, table.metrics = list(header["params"]), list(header["metrics"])
    table.numeric_params, table.log_params = set(header["numeric"]), set(header["log"])
    table.int_params, table.skipped = set(header["int"]), dict(header["skipped"])
    table.nonfinite = {k: frozenset(v) for k, v in header["nonfinite"].items()}
    table.declared_spaces = dict(header["declared"])
    return tuple(header["fp"]), table


def _to_arrow(values: pd.Series, kind: str) -> pa.Array:
    if kind == "object":
        raw = values.to_numpy(dtype=object)
        present = raw[pd.notna(raw)]
        if not all(isinstance(v, str) for v in present):
            raise NotPlain(f"{values.name} holds a value that is not text")
        return pa.array(raw, pa.string(), from_pandas=True)
    if kind in TIME_KINDS:
        return pa.array(values.array.asi8, pa.int64(), mask=values.isna().to_numpy())
    if kind == "Int64":
        return pa.array(values.to_numpy(dtype="int64", na_value=0), pa.int64(), mask=values.isna().to_numpy())
    return pa.array(values.to_numpy(), _ARROW[kind])


def _from_arrow(column: pa.ChunkedArray, kind: str) -> pd.Series:
    if kind == "object":
        if not pa.types.is_string(column.type) and not pa.types.is_null(column.type):
            raise ValueError("a text column that is not text")
        return pd.Series(wide.as_objects(wide.string_column(column)), dtype=object, copy=False)
    if (
        not pa.types.is_integer(column.type)
        and not pa.types.is_floating(column.type)
        and not pa.types.is_boolean(column.type)
    ):
        raise ValueError("a number column that is not numbers")
    array = column.combine_chunks()
    if kind in TIME_KINDS:
        values = array.fill_null(0).to_numpy().astype(f"datetime64[{TIME_KINDS[kind]}]")
        values[array.is_null().to_numpy(zero_copy_only=False)] = np.datetime64("NaT")
        return pd.Series(values, copy=False).dt.tz_localize("UTC")
    if kind == "Int64":
        mask = array.is_null().to_numpy(zero_copy_only=False)
        return pd.Series(pd.arrays.IntegerArray(array.fill_null(0).to_numpy().astype("int64"), mask), copy=False)
    return pd.Series(array.to_numpy(zero_copy_only=False).astype(kind, copy=False), copy=False)
