"""MLflow's long rows (run, key, value) turned into one column per key, in Arrow and numpy.

The reader's hot path at a million runs: ten million param rows are never turned into Python objects. Runs are
found by a hash lookup of their ids (``positions``), keys are dictionary-encoded once (``key_codes``), a numeric
parameter is cast by Arrow straight to floats, and a text column with few distinct values (a categorical)
shares one Python string per value.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MISSING = ("", "None", "none", "null", "NaN", "nan")  # logged for "no value": NaN in a numeric column
BOOL_STRINGS = ("True", "False", "true", "false")
FEW_DISTINCT = 0.5  # a text column with at most this share of distinct values is built from its dictionary
_INTEGER = r"^\s*[+-]?[0-9]+\s*$"


def string_column(values) -> pa.ChunkedArray:
    """A column as Arrow strings (large strings and nulls kept)."""
    values = values if isinstance(values, pa.ChunkedArray) else pa.chunked_array([values])
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return values
    return values.cast(pa.string()) if not pa.types.is_null(values.type) else pa.chunked_array([], pa.string())


def positions(run_ids: pa.ChunkedArray, index: pa.Array) -> np.ndarray:
    """Each row's position in ``index`` (the runs), -1 for a run outside it. A run's rows mostly sit side by
    side (MLflow writes a run's params and metrics in one batch), so only the first row of each stretch is
    looked up: a hash lookup among a million ids costs far more than comparing neighbours."""
    ids = string_column(run_ids).combine_chunks()
    n = len(ids)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    starts = np.ones(n, dtype=bool)
    if n > 1:
        same = pc.fill_null(pc.equal(ids.slice(1), ids.slice(0, n - 1)), False)
        starts[1:] = ~same.to_numpy(zero_copy_only=False)
    heads = np.flatnonzero(starts)
    found = pc.fill_null(pc.index_in(ids.take(pa.array(heads)), value_set=index), -1).to_numpy()
    return np.repeat(found.astype(np.int64, copy=False), np.diff(np.append(heads, n)))


def key_codes(keys: pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    """Each row's key as a small integer, and the keys in order of first appearance."""
    names: dict[str, int] = {}
    parts = []
    for chunk in string_column(keys).chunks:
        encoded = pc.dictionary_encode(chunk)
        local = np.asarray([names.setdefault(k, len(names)) for k in encoded.dictionary.to_pylist()], np.int32)
        indices = encoded.indices.to_numpy(zero_copy_only=False)
        parts.append(local[indices] if len(local) else np.empty(0, np.int32))
    codes = np.concatenate(parts) if parts else np.empty(0, np.int32)
    return codes, list(names)


def per_key(codes: np.ndarray, names: list[str], rows: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
    """For each key: the indices of its rows that belong to a known run (a run logs a key once)."""
    known = rows >= 0
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
    for k, name in enumerate(names):
        picked = order[bounds[k] : bounds[k + 1]]
        picked = picked[known[picked]]
        if len(picked):
            yield name, picked


def as_objects(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Arrow strings as a numpy object array (None for null); repeated values share one Python string."""
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if len(values) == 0:
        return np.empty(0, dtype=object)
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
        given = values.filter(pc.invert(missing))
        numbers = _finite_numbers(given)
        if numbers is None:
            self.values = text_column(values, rows, length)
            return
        self.numeric = True
        self.integers = bool(pc.all(pc.match_substring_regex(given, _INTEGER)).as_py() is not False)
        out = np.full(length, np.nan)
        out[rows[~missing.to_numpy(zero_copy_only=False)]] = numbers
        self.values = out


def _finite_numbers(given: pa.Array) -> np.ndarray | None:
    """The values as floats, or None when one is not a finite number (or all are booleans, or none is given)."""
    if len(given) == 0 or pc.all(pc.is_in(given, value_set=pa.array(BOOL_STRINGS))).as_py():
        return None
    try:
        numbers = pc.cast(pc.utf8_trim_whitespace(given), pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return numbers if np.isfinite(numbers).all() else None
