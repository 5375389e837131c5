"""What pages need, built once by ``create_app`` and handed to each page: no module globals.

Over 400 lines on purpose: it is the one object every page shares (memoised views, reports, surrogates,
analyses, the store state); split, the pages would each hold several half-contexts.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import pandas as pd
from mlflow import MlflowClient

from trellis.app.auth.base import Authenticator, signed_in_user
from trellis.app.shared_results import PLAIN, Codec, Pending, SharedResults
from trellis.search.analysis.budgets import budget_choice
from trellis.search.analysis.registry import run_analysis
from trellis.search.analysis.report import SpaceReport, analyse
from trellis.search.analysis.surrogate import MIN_RUNS as SURROGATE_MIN_RUNS
from trellis.search.analysis.surrogate import Surrogate, fit_surrogate
from trellis.search.config import SearchConfig
from trellis.search.control.policy import ServerPolicy
from trellis.search.engine.resume import ResumeError, recorded_config
from trellis.tracking.cache import RunCache, fingerprint
from trellis.tracking.histories import read_histories
from trellis.tracking.links import run_url
from trellis.tracking.memo import Memo
from trellis.tracking.reader import RunTable
from trellis.tracking.retry import unavailable_reason
from trellis.tracking.run_state import runs_state
from trellis.tracking.stores import Store, store_for


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
    access: Authenticator | None = None  # sign-in: who may read which experiments, and edit where
    # How long a request waits for a search-space analysis before the page shows its progress instead.
    analysis_wait_s: float = 1.0
    _shared: SharedResults | None = field(init=False, default=None, repr=False)
    _views: Memo = field(init=False, default_factory=lambda: Memo(VIEW_ENTRIES), repr=False)
    _views_lock: threading.Lock = field(init=False, default_factory=threading.Lock, repr=False)
    _unchanged: dict = field(init=False, default_factory=dict, repr=False)  # key -> (change counter, value)
    _counter: Callable[[], tuple] | bool | None = field(init=False, default=None, repr=False)
    _client: MlflowClient | None = field(init=False, default=None, repr=False)

    @property
    def client(self) -> MlflowClient:
        """MLflow's client, made at first use: building the app (a gunicorn worker booting) never waits on the
        store, and a database store that is down then fails the request at once (MLflow's own first connection
        retries for about 100 s); the page says so and the next request tries again."""
        if self._client is None:
            self.store.fail_fast()
            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def space_report(
        self,
        selection: dict,
        metric: str,
        direction: str,
        params: list[str] | None,
        best_quantile: float | None,
        wait_s: float | None = None,
        budget: float | str | None = "auto",
    ) -> SpaceReport | Pending:
        """The search-space analysis, by the state of the runs it reads: computed once by whichever worker
        and thread asks first, shared with the others through the cache's store (``trellis.app.shared_results``).
        With ``wait_s``, computed in the background: ``Pending`` when it is not ready by then. ``budget``: the
        runs compared at one budget (``trellis.search.analysis.budgets``; "auto", a budget, or None)."""
        view, key = self._report_view(selection, metric, direction, params, best_quantile, budget)

        def compute() -> SpaceReport:
            beyond = budget_choice(view.trials, metric, budget).beyond  # runs compared at an earlier budget
            history = self.histories(list(beyond), [metric]) if beyond else None
            report = analyse(
                view.table,
                view.trials,
                metric,
                direction,
                params or None,
                best_quantile,
                budget=budget,
                history=history,
            )
            if wait_s is not None:  # for the page: its prediction form's surrogate in the same background job
                self._surrogate_of(key, report)
            return report

        if wait_s is None:
            return self.results.get(key, compute, REPORT)
        return self.results.get_soon(key, compute, REPORT, wait_s, runs=len(view.trials))

    def space_surrogate(
        self,
        selection: dict,
        metric: str,
        direction: str,
        params: list[str] | None,
        best_quantile: float | None,
        budget: float | str | None = "auto",
    ) -> Surrogate | None:
        """The surrogate of the report's runs (``trellis.search.analysis.surrogate``): fitted once per report
        state (for the page, with the report in its background job) and shared as the report is. None when
        the report has a problem or too few runs."""
        report = self.space_report(selection, metric, direction, params, best_quantile, budget=budget)
        if isinstance(report, Pending):
            return None
        _, key = self._report_view(selection, metric, direction, params, best_quantile, budget)
        return self._surrogate_of(key, report)

    def _report_view(self, selection, metric, direction, params, best_quantile, budget="auto") -> tuple[View, tuple]:
        """The runs a space report reads, and its key: what it was asked for and the state of those runs."""
        experiments = self.readable_ids(selection.get("experiments", []))  # the key names only runs read
        view = self.view(experiments, selection.get("searches", []))
        shown = {"experiments": experiments, "searches": list(selection.get("searches", []))}
        return view, (*report_key(shown, view.trials, metric, direction, params, best_quantile), budget)

    def _surrogate_of(self, key: tuple, report: SpaceReport) -> Surrogate | None:
        if report.problem or len(report.data.y) < SURROGATE_MIN_RUNS:
            return None
        return self.results.get(("surrogate", *key), lambda: fit_surrogate(report.data), SURROGATE)

    @property
    def results(self) -> SharedResults:
        """The one cache of computed results (reports, surrogates, analyses): this process, then all workers."""
        if self._shared is None:
            self._shared = SharedResults(self.cache.store, namespace=self.tracking_uri)
        return self._shared

    def analysis(self, name: str, experiment_ids: list[str], search_ids: list[str] | None = None,
                 inputs: dict | None = None) -> dict:  # fmt: skip
        """An analysis plugin's plain data over the runs shown (``trellis.search.analysis.registry``), computed
        once per store state and shared by every worker through the run cache's store as plain msgpack."""
        ids = self.readable_ids(experiment_ids)  # first: nothing past here sees another's runs
        inputs = dict(inputs or {})

        def compute() -> dict:
            view = self.view(ids, search_ids)  # the runs are read only when the analysis is computed
            return run_analysis(name, view.table, view.trials, inputs)

        state = self.store_state(ids)
        if state is None:  # no fingerprint: nothing derived from the runs is kept
            return compute()
        shown = (tuple(sorted(ids)), tuple(sorted(search_ids or ())), tuple(sorted(inputs.items())))
        return self.results.get(("analysis", name, *shown, *state), compute, PLAIN)

    def experiments(self) -> list[dict]:
        """Active experiments, newest first, as dropdown options."""
        exps = self._while_unchanged("experiments", lambda: self.client.search_experiments(max_results=10_000))
        readable = self.readable()
        if readable is not None:
            exps = [e for e in exps if e.experiment_id in readable]
        exps = sorted(exps, key=lambda e: e.last_update_time or e.creation_time or 0, reverse=True)
        return [{"label": e.name, "value": e.experiment_id} for e in exps]

    def view(self, experiment_ids: list[str], search_ids: list[str] | None = None) -> View:
        """The runs shown, memoised on the store's fingerprint: the callbacks of a page view (and other users
        viewing the same runs) share one table, trial frame and labels until a run is added, ends or logs."""
        experiment_ids = self.readable_ids(experiment_ids)  # first: nothing past here sees another's runs
        shown = (tuple(sorted(experiment_ids)), tuple(sorted(str(s) for s in search_ids or ())))
        state = self.data_state(experiment_ids)
        memo = self._views if state is not None else _request_memo("trellis_views")
        with self._views_lock:
            found = memo.get((shown, state)) if memo is not None else None
        if found is not None:
            return found
        known = state[1:-1] if state is not None and len(state) > 2 else None  # the fingerprint just asked
        table = self.cache.table(experiment_ids or [], known) if known else self.cache.table(experiment_ids or [])
        runs = table.runs
        labels = search_labels(runs)
        trials = table.trials
        if search_ids:
            trials = trials[trials["search_id"].isin(search_ids)]
        view = View(table, trials, labels)
        if memo is self._views and state[-1] is None:  # the run cache had no entry: now it has, key by it
            state = self.data_state(experiment_ids)
        if memo is not None and (memo is not self._views or state[-1] is not None):
            with self._views_lock:
                memo[(shown, state)] = view
        return view

    def data_state(self, experiment_ids: list[str]) -> tuple | None:
        """What the runs of these (readable) experiments are read from: the experiments, the store's
        fingerprint (asked once per request) and this process' run-cache entry (``None`` when it has none
        yet). None when the store has no cheap fingerprint (an http tracking server): then nothing derived
        from its runs may be kept across requests."""
        ids = tuple(sorted(str(e) for e in experiment_ids))
        state = self.store_state(list(ids))
        if state is None:
            return None
        held = getattr(self.cache, "held", None)  # a stand-in cache in a test may have none
        entry = held(list(ids)) if ids and held is not None else None
        return (ids, *state, entry if ids else 0)

    def store_state(self, experiment_ids: list[str]) -> tuple | None:
        """The store's fingerprint of these experiments, asked once per request; None when the store has no
        cheap fingerprint (an http tracking server), so nothing may be kept across requests."""
        ids = tuple(sorted(str(e) for e in experiment_ids))
        if not ids:
            return ("no experiments",)
        per_request = _request_memo("trellis_fingerprints")
        if per_request is not None and ids in per_request:
            return per_request[ids]
        fp = self._fingerprint(ids)
        state = None if fp == ("no-fingerprint",) else fp
        if per_request is not None:
            per_request[ids] = state
        return state

    def _fingerprint(self, ids: tuple[str, ...]) -> tuple:
        return self._while_unchanged(("fingerprint", ids), lambda: fingerprint(self.tracking_uri, ids))

    def _while_unchanged(self, key, compute):
        """``compute()`` (a read of the store); on SQLite its value is reused while no connection has committed
        since (SQLite's change counter, read with a one-row read that fails as any read would on a locked or
        missing store). Exact, not a time to live: any write by anyone is a new read."""
        counter = self._change_counter
        if counter is None:
            return compute()
        version = counter()
        kept = self._unchanged.get(key)
        if kept is not None and kept[0] == version:
            return kept[1]
        value = compute()  # after reading the counter: a commit meanwhile shows at the next call
        with self._views_lock:
            self._unchanged[key] = (version, value)
            if len(self._unchanged) > 256:
                self._unchanged.pop(next(iter(self._unchanged)))
        return value

    @functools.cached_property
    def store(self) -> Store:
        """The store's kind (``trellis.tracking.stores``): what it allows, chosen by its URI's scheme."""
        return store_for(self.tracking_uri)

    @property
    def _change_counter(self):
        if self._counter is None:
            self._counter = self.store.change_counter() or False
        return self._counter or None

    def histories(self, run_ids: list[str], keys: list[str]) -> pd.DataFrame:
        return read_histories(self.tracking_uri, run_ids, keys, max_points=self.max_curve_points)

    def experiment_exists(self, experiment_id: str) -> bool:
        """Whether the experiment exists and the signed-in user may read it (to others it does not exist)."""
        if not self.readable_ids([experiment_id]):
            return False
        try:
            return self._while_unchanged(("exists", str(experiment_id)), lambda: self._exists(experiment_id))
        except Exception as exc:  # MLflow raises for an unknown id
            # A store that does not answer cannot tell: the page is served and its status line says why.
            return unavailable_reason(exc) is not None

    def search_exists(self, search_id: str, experiment_ids: list[str]) -> bool:
        """Whether the search has runs in those experiments (without any: in one the user may read)."""
        try:
            if experiment_ids:
                return search_id in self.view(experiment_ids).labels
            if search_id.startswith("experiment:"):
                return self.experiment_exists(search_id.split(":", 1)[1])
            run = self._while_unchanged(("search", search_id), lambda: self.client.get_run(search_id))
            return self.experiment_exists(run.info.experiment_id)
        except Exception as exc:  # MLflow raises for an unknown run id
            return unavailable_reason(exc) is not None

    def _exists(self, experiment_id: str) -> bool:
        self.client.get_experiment(experiment_id)  # MLflow raises for an unknown id
        return True

    @property
    def auth_on(self) -> bool:
        return self.access is not None

    def current_user(self) -> str | None:
        """The signed-in user of the request being served, or None when auth is off."""
        return signed_in_user() if self.auth_on else None

    def readable(self) -> set[str] | None:
        """The experiment ids the signed-in user may read; None for all (auth off, or no limit for them).
        Outside a request (tests, benchmarks, the CLI) there is no user and no limit."""
        from flask import has_request_context

        if self.access is None or not has_request_context():
            return None
        user = self.current_user()
        return self.access.readable(user) if user is not None else set()

    def readable_ids(self, experiment_ids) -> list[str]:
        readable = self.readable()
        ids = [str(e) for e in experiment_ids or []]
        return ids if readable is None else [e for e in ids if e in readable]

    def can_edit(self, experiment_id: str) -> bool:
        """Whether the signed-in user may launch, stop, resume or edit searches in this experiment."""
        if self.access is None:
            return True
        user = self.current_user()
        return (
            user is not None
            and str(experiment_id) in self.readable_ids([experiment_id])
            and bool(self.access.can_edit(user, str(experiment_id)))
        )

    def search_config(self, search_id: str) -> SearchConfig:
        """The stored config of a search the signed-in user may read (ResumeError otherwise, as for no search)."""
        if self.access is not None:
            try:
                experiment_id = self.client.get_run(search_id).info.experiment_id
            except Exception:  # MLflow raises for an unknown or malformed id
                experiment_id = None
            if experiment_id is None or not self.readable_ids([experiment_id]):
                raise ResumeError("no such search that you may read")
        return recorded_config(self.client, search_id)

    def run_link(self, row) -> str:
        return run_url(self.mlflow_ui_url, row["experiment_id"], row["run_id"])


VIEW_ENTRIES = 8  # views kept per process (each shares its table with the run cache)
REPORT = Codec(b"trellis-space-report-2\n", SpaceReport.to_plain, SpaceReport.from_plain)
SURROGATE = Codec(b"trellis-surrogate-2\n", Surrogate.to_plain, Surrogate.from_plain)


def _request_memo(name: str) -> dict | None:
    """A dict living as long as the request being served (None outside a request)."""
    from flask import g, has_request_context

    if not has_request_context():
        return None
    memo = g.get(name)
    if memo is None:
        memo = {}
        setattr(g, name, memo)
    return memo


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
        runs_state(trials, metric=metric),
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
