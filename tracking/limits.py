"""What MLflow accepts, checked before anything is written, the same on every store.

SQLite stores whatever it is handed (bypassing MLflow's checks), PostgreSQL refuses a 251-character key,
and a tracking server refuses a name with ``..``: checking here with MLflow's own rules and limits makes
a bad value fail the trial that reported it, at report time, with the reason, whatever the store.
"""

from __future__ import annotations

import math
from typing import Any

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _mlflow_reason(check: Any, *args: Any) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        check(*args)
    except MlflowException as exc:
        return exc.message
    return None


def metric_problem(key: Any, value: Any, step: Any) -> str | None:
    """Why MLflow would refuse this metric (name, length, value type, step range), or None."""
    from mlflow.utils.validation import MAX_ENTITY_KEY_LENGTH, _validate_metric_name

    if not isinstance(key, str):
        return f"metric names are strings, got {type(key).__name__} {key!r}"
    if len(key) > MAX_ENTITY_KEY_LENGTH:
        return f"metric name {key[:40]!r}... is {len(key)} characters (MLflow's limit: {MAX_ENTITY_KEY_LENGTH})"
    reason = _mlflow_reason(_validate_metric_name, key)
    if reason:
        return reason
    if isinstance(value, str | bytes | bool) or value is None:
        return f"metric {key!r}: the value must be a number, got {type(value).__name__} {value!r}"
    try:
        as_float = float(value)  # numbers, numpy scalars, one-element tensors
    except OverflowError:
        return f"metric {key!r}: {str(value)[:40]}... is too large for a 64-bit float"
    except (TypeError, ValueError):
        return f"metric {key!r}: the value must be a number, got {type(value).__name__} {value!r}"
    if isinstance(value, int) and not math.isfinite(as_float):
        return f"metric {key!r}: {str(value)[:40]}... is too large for a 64-bit float"
    return step_problem(step)


def step_problem(step: Any) -> str | None:
    if hasattr(step, "__index__") and not isinstance(step, bool):
        step = step.__index__()  # numpy integers
    elif isinstance(step, float) and step.is_integer():
        step = int(step)
    if isinstance(step, bool) or not isinstance(step, int):
        return f"a step must be an integer, got {type(step).__name__} {step!r}"
    if not INT64_MIN <= step <= INT64_MAX:
        return f"step {step} is outside MLflow's 64-bit integer range"
    return None


def param_problem(key: Any, value: str) -> str | None:
    """Why MLflow would refuse this parameter (name, length, value length), or None."""
    from mlflow.utils.validation import MAX_ENTITY_KEY_LENGTH, MAX_PARAM_VAL_LENGTH, _validate_param_name

    if not isinstance(key, str) or len(key) > MAX_ENTITY_KEY_LENGTH:
        return f"parameter names are strings of at most {MAX_ENTITY_KEY_LENGTH} characters"
    reason = _mlflow_reason(_validate_param_name, key)
    if reason:
        return reason
    if len(value) > MAX_PARAM_VAL_LENGTH:
        return f"parameter {key!r}: the value is {len(value)} characters (MLflow's limit: {MAX_PARAM_VAL_LENGTH})"
    return None


def experiment_name_problem(name: Any) -> str | None:
    from mlflow.utils.validation import MAX_EXPERIMENT_NAME_LENGTH

    if not isinstance(name, str) or not name.strip():
        return "must be a non-empty string"
    if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        return f"is {len(name)} characters (MLflow's limit: {MAX_EXPERIMENT_NAME_LENGTH})"
    return None


def report_problem(step: Any, metrics: dict[str, Any]) -> str | None:
    """Why MLflow would refuse a report (a step and its metrics), or None."""
    if step is not None:
        problem = step_problem(step)
        if problem:
            return problem
    for key, value in metrics.items():
        problem = metric_problem(key, value, 0 if step is None else int(step))
        if problem:
            return problem
    return None
