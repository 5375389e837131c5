"""Which metric a set of runs optimises, and in which direction: what the search recorded, else a guess."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

INTERNAL_PREFIX = "trellis."  # metrics Trellis logs for itself (``trellis.rung``, ``trellis.best.*``)

# Words of a metric's name, read from its end: the last word that says a direction decides it
# (``mean_test_score`` is a score: max; ``mean_score_time`` is a time: min). ``neg`` flips it
# (scikit-learn's ``neg_mean_squared_error`` is a score to maximise).
MINIMISE = {
    "loss",
    "error",
    "err",
    "errors",
    "time",
    "times",
    "latency",
    "duration",
    "seconds",
    "secs",
    "ms",
    "rmse",
    "mae",
    "mse",
    "mape",
    "perplexity",
    "ppl",
    "size",
    "params",
    "flops",
    "memory",
    "cost",
    "regret",
    "wer",
    "cer",
}
MAXIMISE = {
    "accuracy",
    "acc",
    "score",
    "auc",
    "roc",
    "f1",
    "r2",
    "precision",
    "recall",
    "reward",
    "return",
    "iou",
    "map",
    "bleu",
    "rouge",
    "ndcg",
    "dice",
}
TIMING = {"time", "times", "latency", "duration", "seconds", "secs", "ms"}
SPREAD = {"std", "var", "rank"}  # ``std_test_score``, ``rank_test_score``: about a score, not one
# Metrics a foreign tool is known to optimise: scikit-learn's search CV, Optuna's MLflow callback.
KNOWN_OBJECTIVES = ("mean_test_score", "value")


def words(metric: str) -> list[str]:
    """A metric name's words: split at anything not a letter or digit, and at camelCase humps."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", metric)
    return [w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w]


def guess_direction(metric: str) -> str | None:
    """``min``/``max`` from the name alone; None when no word of it says."""
    ws = words(metric)
    if ws[:1] == ["rank"]:  # ``rank_test_score``: rank 1 is best
        return "min"
    for i in range(len(ws) - 1, -1, -1):
        if ws[i] in MINIMISE or ws[i] in MAXIMISE:
            direction = "min" if ws[i] in MINIMISE else "max"
            if "neg" in ws[:i]:
                direction = "max" if direction == "min" else "min"
            return direction
    return None


def metric_direction(runs: pd.DataFrame, metric: str) -> str:
    """``max`` or ``min`` for a metric: what Trellis recorded, else a guess from its name (``max`` if none)."""
    if "objective" in runs and "direction" in runs:
        known = runs.loc[runs["objective"] == metric, "direction"].dropna()
        if len(known):
            return str(known.mode().iloc[0])
    return guess_direction(metric) or "max"


def is_internal(metric: str) -> bool:
    return metric.startswith(INTERNAL_PREFIX)


def is_timing(metric: str) -> bool:
    """A time a run took (``mean_fit_time``, ``latency_ms``, ``duration``): a cost, never an objective."""
    return bool(TIMING & set(words(metric)))


def user_metrics(metrics: list[str]) -> list[str]:
    """The metrics a person picks from: Trellis' own bookkeeping left out."""
    return [m for m in metrics if not is_internal(m)]


def default_objective(runs: pd.DataFrame, metrics: list[str]) -> str | None:
    """The recorded objective; else what the tool optimises; else an accuracy-like name; never a timing.

    Only when every metric is a timing (or internal) is the first of them returned, so a page has something.
    """
    candidates = user_metrics(metrics)
    if "objective" in runs:
        named = runs["objective"].dropna()
        if len(named) and f"metrics.{named.mode().iloc[0]}" in runs:
            return str(named.mode().iloc[0])
    for known in KNOWN_OBJECTIVES:
        if known in candidates:
            return known
    usable = [m for m in candidates if not is_timing(m) and not SPREAD & set(words(m)[:1])]
    for wanted in ("max", "min"):
        found = next((m for m in usable if guess_direction(m) == wanted), None)
        if found:
            return found
    return (usable or candidates or [None])[0]


def final_values(runs: pd.DataFrame, metric: str) -> pd.Series:
    """Each run's value of ``metric`` as the CLI counts it for "best": the value a trial ended with.

    Trellis trials count only when they completed (a pruned, failed or killed trial's last report is not a
    result, as in the runner's best); other tools' runs count when FINISHED. Non-finite values are left out.
    """
    col = f"metrics.{metric}"
    if col not in runs or runs.empty:
        return pd.Series(dtype=float)
    values = pd.to_numeric(runs[col], errors="coerce").astype(float)
    reason = runs["end_reason"] if "end_reason" in runs else pd.Series(None, index=runs.index, dtype=object)
    status = runs["status"] if "status" in runs else pd.Series("FINISHED", index=runs.index)
    ended = reason.eq("completed") | (reason.isna() & status.eq("FINISHED"))
    values = values[ended.to_numpy(dtype=bool)]
    return values[np.isfinite(values.to_numpy())]


def best_final(runs: pd.DataFrame, metric: str, direction: str) -> tuple[float | None, str | None]:
    """The best final value and its run id, or (None, None)."""
    values = final_values(runs, metric)
    if values.empty:
        return None, None
    idx = values.idxmax() if direction == "max" else values.idxmin()
    return float(values[idx]), str(runs.loc[idx, "run_id"])
