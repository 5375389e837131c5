"""What pages need, built once by ``create_app`` and handed to each page: no module globals."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import NamedTuple

import pandas as pd
from mlflow import MlflowClient

from search.analysis.report import SpaceReport, analyse
from search.control.policy import ServerPolicy
from tracking.cache import RunCache
from tracking.histories import read_histories
from tracking.links import run_url
from tracking.reader import RunTable


class View(NamedTuple):
    """The runs a page shows: the table of the chosen experiments, narrowed to the chosen searches."""

    table: RunTable
    trials: pd.DataFrame
    labels: dict[str, str]  # search id -> readable label


@dataclass
class AppContext:
    tracking_uri: str
    cache: RunCache
    mlflow_ui_url: str | None = None
    max_curve_points: int = 1000
    policy: ServerPolicy = field(default_factory=ServerPolicy)  # what the control page may launch
    auth_on: bool = False  # launch, stop, resume and edit need a signed-in user
    client: MlflowClient = field(init=False)
    _reports: OrderedDict = field(init=False, default_factory=OrderedDict)

    def __post_init__(self) -> None:
        self.client = MlflowClient(tracking_uri=self.tracking_uri)

    def space_report(
        self, selection: dict, metric: str, direction: str, params: list[str] | None, best_quantile: float | None
    ) -> SpaceReport:
        """The search-space analysis, cached by the state of the runs it reads: a revisit is instant."""
        view = self.view(selection.get("experiments", []), selection.get("searches", []))
        key = report_key(selection, view.trials, metric, direction, params, best_quantile)
        if key in self._reports:
            self._reports.move_to_end(key)
            return self._reports[key]
        report = analyse(view.table, view.trials, metric, direction, params or None, best_quantile)
        self._reports[key] = report
        while len(self._reports) > 16:
            self._reports.popitem(last=False)
        return report

    def experiments(self) -> list[dict]:
        """Active experiments, newest first, as dropdown options."""
        exps = self.client.search_experiments(max_results=10_000)
        exps = sorted(exps, key=lambda e: e.last_update_time or e.creation_time or 0, reverse=True)
        return [{"label": e.name, "value": e.experiment_id} for e in exps]

    def view(self, experiment_ids: list[str], search_ids: list[str] | None = None) -> View:
        table = self.cache.table(experiment_ids or [])
        runs = table.runs
        labels = search_labels(runs)
        trials = table.trials
        if search_ids:
            trials = trials[trials["search_id"].isin(search_ids)]
        return View(table, trials, labels)

    def histories(self, run_ids: list[str], keys: list[str]) -> pd.DataFrame:
        return read_histories(self.tracking_uri, run_ids, keys, max_points=self.max_curve_points)

    def experiment_exists(self, experiment_id: str) -> bool:
        try:
            self.client.get_experiment(experiment_id)
            return True
        except Exception:  # MLflow raises for an unknown id
            return False

    def current_user(self) -> str | None:
        """The signed-in user of the request being served (basic auth), or None when auth is off."""
        from flask import has_request_context, request

        if not self.auth_on or not has_request_context() or request.authorization is None:
            return None
        return request.authorization.username

    def run_link(self, row) -> str:
        return run_url(self.mlflow_ui_url, row["experiment_id"], row["run_id"])


def runs_state(trials: pd.DataFrame, metric: str) -> tuple[int, str, float]:
    """What changes when runs are added, end or log the metric: their count, last end time, metric sum."""
    col = f"metrics.{metric}"
    return (
        len(trials),
        str(trials["end_time"].max()) if len(trials) else "",
        float(trials[col].sum()) if col in trials else 0.0,
    )


def report_key(
    selection: dict,
    trials: pd.DataFrame,
    metric: str,
    direction: str,
    params: list[str] | None,
    best_quantile: float | None,
) -> tuple:
    """The cache key of a space analysis: what it was asked for and the state of the runs it reads."""
    return (
        tuple(selection.get("experiments", [])),
        tuple(selection.get("searches", [])),
        runs_state(trials, metric),
        metric,
        direction,
        tuple(params or ()),
        best_quantile,
    )


def search_labels(runs: pd.DataFrame) -> dict[str, str]:
    """A readable name per search: its Trellis name, its parent run's name, or its experiment's."""
    if runs.empty:
        return {}
    labels: dict[str, str] = {}
    parents = runs[runs["kind"] == "search"].set_index("run_id")
    for search_id, group in runs.groupby("search_id"):
        sid = str(search_id)
        if sid.startswith("experiment:"):
            labels[sid] = f"{group['experiment'].iloc[0]} (runs)"
        elif sid in parents.index:
            name = parents.loc[sid, "search_name"] or parents.loc[sid, "run_name"] or sid[:8]
            labels[sid] = f"{name} · {sid[:6]}"
        else:
            labels[sid] = sid[:8]
    return labels
