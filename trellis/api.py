"""What ``import trellis`` offers beyond the names it re-exports: running a search from Python, and reading an
experiment's runs as a DataFrame. Both are thin: the engine and the reader do the work."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from trellis.search.config import SearchConfig, load_config, parse_config
from trellis.search.config.parse import set_dotted
from trellis.search.engine.records import SearchResult
from trellis.tracking.uris import DEFAULT_TRACKING_URI


def run_search(
    config: SearchConfig | str | Path | Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    *,
    on_progress: Callable[[Any], None] | None = None,
    resume: str | None = None,
) -> SearchResult:
    """Run a search in this process and return how it ended (``search_id``, ``state``, ``best_params``...).

    ``config``: a ``SearchConfig``, the path of a YAML/JSON config, or the same as a mapping. ``overrides``:
    dotted keys, as ``{"tracking.uri": "sqlite:///runs.db", "termination.max_trials": 10}``.
    ``on_progress`` is called with a ``Progress`` after each event. ``resume``: a search id to continue.
    Raises ``ConfigError`` (every problem, ``key.path: reason``) before anything runs.

    Trials run in worker processes: in a script, call this under ``if __name__ == "__main__":``.
    """
    from trellis.search.engine.runner import SearchRunner

    if isinstance(config, str | Path):
        config = load_config(config, overrides)
    elif overrides or not isinstance(config, SearchConfig):
        raw = config.to_dict() if isinstance(config, SearchConfig) else copy.deepcopy(dict(config))
        for dotted, value in (overrides or {}).items():
            set_dotted(raw, dotted, value)
        config = parse_config(raw)
    return SearchRunner(config, on_progress=on_progress, resume=resume).run()


def read_runs(experiment: str, tracking_uri: str = DEFAULT_TRACKING_URI, *, trials_only: bool = True) -> pd.DataFrame:
    """One row per run of an experiment (its name or id): ``run_id``, ``status``, ``start_time``...,
    ``params.<name>`` (typed), ``metrics.<name>`` (the last value), and Trellis' own columns (search, trial
    number, end reason). Any MLflow store and any experiment: Trellis' searches or runs other tools logged.
    ``trials_only``: leave out the search parent runs."""
    from mlflow import MlflowClient

    from trellis.tracking.reader import read_runs as read_table

    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None and experiment.isdigit():
        found = client.get_experiment(experiment)
    if found is None:
        raise LookupError(f"no experiment {experiment!r} in {tracking_uri}")
    table = read_table(tracking_uri, [found.experiment_id])
    return (table.trials if trials_only else table.runs).reset_index(drop=True)
