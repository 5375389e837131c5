"""Runs made up in a test, shaped by the reader's own code (``trellis.tracking.reader.shape``) exactly as it
shapes rows read from MLflow's tables: the analysis sees what it would see from a store, in milliseconds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from trellis.tracking.reader import RunTable, shape


def _text(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return repr(float(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    return str(value)


def distribution_tag(axis: Any) -> str:
    """An axis (``trellis.search.analysis.design.Axis``) as Optuna's MLflowCallback records its distribution."""
    if axis.kind == "categorical":
        return f"CategoricalDistribution(choices={tuple(axis.categories)!r})"
    if axis.kind == "int":
        return f"IntDistribution(high={int(axis.high)}, log={axis.log}, low={int(axis.low)}, step=1)"
    return f"FloatDistribution(high={float(axis.high)!r}, log={axis.log}, low={float(axis.low)!r}, step=None)"


def table_from_data(data: Any) -> RunTable:
    """The runs of an ``AnalysisData`` (values back from [0, 1]), with their space declared as Optuna does."""
    params: dict[str, list[Any]] = {}
    for i, axis in enumerate(data.axes):
        units = data.X[:, i]
        if axis.kind == "categorical":
            k = len(axis.categories)
            params[axis.name] = [axis.categories[min(int(u * k), k - 1)] for u in units]
        elif axis.kind == "int":
            params[axis.name] = [int(round(axis.from_unit(u))) for u in units]
        else:
            params[axis.name] = [axis.from_unit(u) for u in units]
    n = len(data.y)
    tags = {f"{a.name}_distribution": [distribution_tag(a)] * n for a in data.axes}
    return table_of(params, {data.metric: data.y}, tags)


def table_of(
    params: Mapping[str, Sequence[Any]],
    metrics: Mapping[str, Sequence[float]],
    tags: Mapping[str, Sequence[Any]] | None = None,
) -> RunTable:
    """One run per position; a ``None`` parameter is not logged by that run (as a conditional one is not)."""
    n = len(next(iter(metrics.values())))
    ids = [f"run{i:06d}" for i in range(n)]
    runs = pd.DataFrame(
        {
            "run_id": ids,
            "experiment_id": ["1"] * n,
            "experiment": ["made-up"] * n,
            "run_name": [f"trial-{i}" for i in range(n)],
            "status": ["FINISHED"] * n,
            "start_ms": [1_000 * i for i in range(n)],
            "end_ms": [1_000 * i + 500 for i in range(n)],
        }
    )
    long_params = [(ids[i], k, _text(v)) for k, vs in params.items() for i, v in enumerate(vs) if v is not None]
    long_metrics = [(ids[i], k, float(v)) for k, vs in metrics.items() for i, v in enumerate(vs)]
    long_tags = [(ids[i], k, str(v)) for k, vs in (tags or {}).items() for i, v in enumerate(vs) if v is not None]
    frame = lambda rows, cols: pd.DataFrame(rows, columns=cols)  # noqa: E731
    raw = (
        runs,
        frame(long_params, ["run_id", "key", "value"]),
        frame(long_metrics, ["run_id", "key", "value"]),
        frame(long_tags, ["run_id", "key", "value"]),
        0,
    )
    return shape(raw, 0)
