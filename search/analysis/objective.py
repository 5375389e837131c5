"""Which metric a set of runs optimises, and in which direction: what the search recorded, else a guess."""

from __future__ import annotations

import pandas as pd


def metric_direction(runs: pd.DataFrame, metric: str) -> str:
    """``max`` or ``min`` for a metric: what Trellis recorded, else a guess from its name."""
    if "objective" in runs and "direction" in runs:
        known = runs.loc[runs["objective"] == metric, "direction"].dropna()
        if len(known):
            return str(known.iloc[0])
    lowered = metric.lower()
    minimise = ("loss", "error", "latency", "n_params", "time", "mse", "mae", "rmse", "perplexity", "size")
    return "min" if any(word in lowered for word in minimise) else "max"


def default_objective(runs: pd.DataFrame, metrics: list[str]) -> str | None:
    if "objective" in runs:
        named = runs["objective"].dropna()
        if len(named) and f"metrics.{named.mode().iloc[0]}" in runs:
            return str(named.mode().iloc[0])
    return metrics[0] if metrics else None
