"""Plain values for analysis results: what any cache (msgpack, JSON) can hold and read back without running
code. Arrays travel as raw little-endian float64 bytes with their shape."""

from __future__ import annotations

from typing import Any

import numpy as np


def array_to_plain(a: Any) -> dict[str, Any]:
    a = np.ascontiguousarray(np.asarray(a, dtype="<f8"))
    return {"shape": list(a.shape), "f8": a.tobytes()}


def array_from_plain(d: dict[str, Any]) -> np.ndarray:
    shape = [int(n) for n in d["shape"]]
    return np.frombuffer(bytes(d["f8"]), dtype="<f8").reshape(shape).copy()


def value_to_plain(value: Any) -> Any:
    """A parameter value or category as msgpack takes it (numpy scalars to Python ones)."""
    return value.item() if isinstance(value, np.generic) else value


def optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def shown(value: Any) -> str:
    """A parameter value as the verdicts and the findings print it: a float in 4 significant digits."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
