"""MLflow's long rows (run, key, value) turned into one column per key, in Arrow and numpy.

The reader's hot path at a million runs: ten million param rows are never turned into Python objects. Runs are
found by a hash lookup of their ids (``positions``), keys are dictionary-encoded once (``key_codes``), a numeric
parameter is cast by Arrow straight to floats, and a text column with few distinct values (a categorical)
shares one Python string per value.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MISSING = ("", "None", "none", "null", "NaN", "nan")  # logged for "no value": NaN in a numeric column
BOOL_STRINGS = ("True", "False", "true", "false")
FEW_DISTINCT = 0.5  # a text column with at most this share of distinct values is built from its dictionary


def string_column(values) -> pa.ChunkedArray:
    """A column as Arrow strings (large strings and nulls kept)."""
    values = values if isinstance(values, pa.ChunkedArray) else pa.chunked_array([values])
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return values
    return values.cast(pa.string()) if not pa.types.is_null(values.type) else pa.chunked_array([], pa.string())


def give_back_memory() -> None:
    """Hand freed memory back to the system between the steps of a large read: Arrow's pool keeps freed
    blocks, and so does glibc's heap after the driver's batches (a worker's size is its high-water mark)."""
    pa.default_memory_pool().release_unused()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _libc():
    """glibc, for ``malloc_trim`` (elsewhere None: nothing to trim). Loaded by name: ``find_library`` would
    run ``ldconfig`` in a subprocess at import."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None


_LIBC = _libc()


def _stretches(ids: pa.Array) -> np.ndarray:
    """Where each stretch of equal neighbouring ids starts. A run's rows mostly sit side by side (MLflow writes
    a run's params and metrics in one batch), so only the first row of each stretch needs looking up."""
    starts = np.ones(len(ids), dtype=bool)
    if len(ids) > 1:
        same = pc.fill_null(pc.equal(ids.slice(1), ids.slice(0, len(ids) - 1)), False)
        starts[1:] = ~same.to_numpy(zero_copy_only=False)
    return np.flatnonzero(starts)


def positions(run_ids, index: pa.Array) -> np.ndarray:
    """Each row's position in ``index`` (the runs' ids), -1 for a run outside it."""
    ids = string_column(run_ids).combine_chunks()
    if len(ids) == 0:
        return np.empty(0, dtype=np.int64)
    heads = _stretches(ids)
    found = pc.fill_null(pc.index_in(ids.take(pa.array(heads)), value_set=index), -1).to_numpy()
    return np.repeat(found.astype(np.int64), np.diff(np.append(heads, len(ids))))


class Compact(NamedTuple):
    """A batch of long rows as read, made small: the id of each stretch of one run's rows and its length,
    and the rows' keys (dictionary-encoded) and values."""

    heads: pa.Array
    lengths: np.ndarray
    body: pa.RecordBatch


def compact(batch: pa.RecordBatch) -> Compact:
    """Done to each batch as it arrives, so that ten million run ids and keys are never held at once. A
    metric's NaN flag (MLflow's ``is_nan``) turns its value into NaN."""
    ids = string_column(batch.column(0)).combine_chunks()
    heads = _stretches(ids)
    value = batch.column(2)
    if batch.num_columns > 3:
        is_nan = pc.fill_null(pc.cast(batch.column(3), pa.bool_()), False)
        value = pc.if_else(is_nan, np.nan, pc.cast(value, pa.float64()))
    else:  # a copy: a slice of the batch would keep the whole batch (its run ids too) alive
        value = pa.concat_arrays([value, value.slice(0, 0)])
    key = pc.dictionary_encode(string_column(batch.column(1)).combine_chunks())
    body = pa.record_batch({"key": key, "value": value})
    return Compact(ids.take(pa.array(heads)), np.diff(np.append(heads, len(ids))), body)


def assemble(parts: dict[str, list[Compact]], index: pa.Array) -> dict[str, pa.Table]:
    """Each query's compacted batches as one table of (row, key, value): every stretch's run looked up among
    the runs' ids, all tables at once (one hash table); rows of other runs dropped."""
    heads = [p.heads for batches in parts.values() for p in batches]
    found = pc.fill_null(pc.index_in(pa.concat_arrays(heads), value_set=index), -1).to_numpy() if heads else None
    out, start = {}, 0
    for name, batches in parts.items():
        if not batches:
            out[name] = pa.table(
                {"row": pa.array([], pa.int64()), "key": pa.array([], pa.string()), "value": pa.array([])}
            )
            continue
        lengths = np.concatenate([p.lengths for p in batches])
        rows = np.repeat(found[start : start + len(lengths)].astype(np.int64), lengths)
        start += len(lengths)
        table = pa.Table.from_batches([p.body for p in batches]).append_column("row", pa.array(rows))
        out[name] = table.filter(pa.array(rows >= 0)) if (rows < 0).any() else table
    return out


def key_codes(keys: pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    """Each row's key as a small integer, and the keys in order of first appearance."""
    names: dict[str, int] = {}
    parts = []
    chunks = keys.chunks if isinstance(keys, pa.ChunkedArray) else [keys]
    for chunk in chunks:
        encoded = (
            chunk if pa.types.is_dictionary(chunk.type) else pc.dictionary_encode(string_column(chunk).combine_chunks())
        )
        local = np.asarray([names.setdefault(k, len(names)) for k in encoded.dictionary.to_pylist()], np.int32)
        indices = encoded.indices.to_numpy(zero_copy_only=False)
        parts.append(local[indices] if len(local) else np.empty(0, np.int32))
    codes = np.concatenate(parts) if parts else np.empty(0, np.int32)
    return codes, list(names)


def grouped(keys, rows: np.ndarray, values) -> Iterator[tuple[str, np.ndarray, object]]:
    """Per key, in key order: the rows of known runs that logged it and their values (Arrow or numpy)."""
    codes, names = key_codes(keys)
    known = rows >= 0
    for k in sorted(range(len(names)), key=lambda i: names[i]):
        pick = (codes == k) & known
        if not pick.any():
            continue
        picked = values[pick] if isinstance(values, np.ndarray) else values.filter(pa.array(pick))
        yield names[k], rows[pick], picked


def as_objects(values: pa.ChunkedArray | pa.Array, unique: bool = False) -> np.ndarray:
    """Arrow strings as a numpy object array (None for null); repeated values share one Python string."""
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if len(values) == 0:
        return np.empty(0, dtype=object)
    if unique:
        return values.to_numpy(zero_copy_only=False).astype(object, copy=False)
    encoded = pc.dictionary_encode(values)
    if len(encoded.dictionary) > FEW_DISTINCT * len(values):
        return values.to_numpy(zero_copy_only=False).astype(object, copy=False)
    words = np.asarray(encoded.dictionary.to_pylist() + [None], dtype=object)
    indices = pc.fill_null(encoded.indices, len(words) - 1).to_numpy(zero_copy_only=False)
    return words[indices]


def text_column(values: pa.Array, rows: np.ndarray, length: int) -> np.ndarray:
    out = np.full(length, None, dtype=object)
    out[rows] = as_objects(values)
    return out


class ParamColumn:
    """One parameter's values over the runs: floats when every logged value is a finite number (missing-like
    text is NaN), else the text as logged. ``integers``: every number was written as an integer literal."""

    def __init__(self, values: pa.Array, rows: np.ndarray, length: int) -> None:
        self.numeric, self.integers = False, False
        values = string_column(values).combine_chunks()
        missing = pc.fill_null(pc.is_in(values, value_set=pa.array(MISSING)), True)
        given = values.filter(pc.invert(missing)) if pc.any(missing).as_py() else values
        numbers, self.integers = _finite_numbers(given)
        if numbers is None:
            self.values = text_column(values, rows, length)
            return
        self.numeric = True
        out = np.full(length, np.nan)
        out[rows[~missing.to_numpy(zero_copy_only=False)]] = numbers
        self.values = out


def _finite_numbers(given: pa.Array) -> tuple[np.ndarray | None, bool]:
    """(the values as floats, whether all were integer literals); None when one is not a finite number (or all
    are booleans, or none is given)."""
    if len(given) == 0 or pc.all(pc.is_in(given, value_set=pa.array(BOOL_STRINGS))).as_py():
        return None, False
    for text in (given, None):
        text = given if text is not None else pc.utf8_trim_whitespace(given)  # spaces: the slower second try
        try:
            numbers = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        if not np.isfinite(numbers).all():
            return None, False
        return numbers, bool((numbers == np.floor(numbers)).all()) and _integer_literals(text)
    return None, False


def _integer_literals(text: pa.Array) -> bool:
    """Whether whole numbers were written as integers ("32", not "32.0" or "3e1")."""
    try:
        pc.cast(text, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True
