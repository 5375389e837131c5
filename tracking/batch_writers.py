"""A narrow write interface to MLflow with two implementations.

``ClientWriter`` goes through ``MlflowClient`` (works for every tracking URI: http, file, databases).
``SqlWriter`` is used when the tracking URI is a database (sqlite, postgresql, mysql): it writes all
pending changes of many runs in one transaction, with MLflow's own table definitions and MLflow's own
value conventions (NaN as is_nan, infinities clamped, latest_metrics kept current), so what MLflow
reads back is the same as through the client. A per-call client costs ~25 ms for a trial's three calls;
one transaction per flush costs that for hundreds of trials. ``tests/test_store_writers.py`` checks
that both writers leave identical runs.
"""

from __future__ import annotations

import getpass
import logging
import math
import uuid
from dataclasses import dataclass, field

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from trellis.tracking.uris import is_database_uri

log = logging.getLogger(__name__)
BATCH_PARAMS_TAGS = 100
BATCH_METRICS = 1000


@dataclass
class PendingRun:
    """Changes to one run not yet written. ``create`` is set while the run itself is not written."""

    run_id: str
    experiment_id: str
    create: dict | None = None  # {"start_time": ms, "name": str}
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: list[tuple[str, float, int, int]] = field(default_factory=list)  # key, value, ms, step
    end: tuple[str, int | None] | None = None  # status, end time ms (("RUNNING", None): reopened)

    def empty(self) -> bool:
        return not (self.create or self.params or self.tags or self.metrics or self.end)


class ClientWriter:
    """Runs are created at once (the store assigns ids); changes go out as log_batch calls."""

    creates_eagerly = True

    def __init__(self, client: MlflowClient) -> None:
        self.client = client

    def create_run(self, experiment_id: str, start_ms: int, tags: dict[str, str], name: str) -> str:
        return self.client.create_run(experiment_id, start_time=start_ms, tags=tags, run_name=name).info.run_id

    def write(self, runs: list[PendingRun]) -> None:
        for run in runs:
            params = [Param(k, v) for k, v in run.params.items()]
            tags = [RunTag(k, v) for k, v in run.tags.items()]
            metrics = [Metric(k, v, ts, step) for k, v, ts, step in run.metrics]
            while params or tags or metrics:
                p, params = params[:BATCH_PARAMS_TAGS], params[BATCH_PARAMS_TAGS:]
                t, tags = tags[:BATCH_PARAMS_TAGS], tags[BATCH_PARAMS_TAGS:]
                room = BATCH_METRICS - len(p) - len(t)
                m, metrics = metrics[:room], metrics[room:]
                self.client.log_batch(run.run_id, metrics=m, params=p, tags=t)
            if run.end and run.end[0] == "RUNNING":
                self.client.update_run(run.run_id, status="RUNNING")
            elif run.end:
                self.client.set_terminated(run.run_id, status=run.end[0], end_time=run.end[1])


def _sanitize(value: float) -> tuple[bool, float]:
    """MLflow's SQL convention: NaN stored as 0 with is_nan, infinities as the largest floats."""
    if math.isnan(value):
        return True, 0.0
    if math.isinf(value):
        return False, 1.7976931348623157e308 if value > 0 else -1.7976931348623157e308
    return False, value


class SqlWriter:
    """One transaction per flush, for database tracking URIs. Run ids are made here (uuid4 hex)."""

    creates_eagerly = False

    def __init__(self, client: MlflowClient) -> None:
        from mlflow.store.tracking.dbmodels import models
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        store = client._tracking_client.store
        if not isinstance(store, SqlAlchemyStore):
            raise TypeError(f"not a SQL store: {type(store).__name__}")
        self.client = client
        self.store = store
        self.runs = models.SqlRun.__table__
        self.tags = models.SqlTag.__table__
        self.params = models.SqlParam.__table__
        self.metrics = models.SqlMetric.__table__
        self.latest = models.SqlLatestMetric.__table__
        self._artifact_roots: dict[str, str] = {}
        self._latest: dict[str, dict[str, tuple[int, int, float, bool]]] = {}
        self.user = _user()

    def create_run(self, experiment_id: str, start_ms: int, tags: dict[str, str], name: str) -> str:
        return uuid.uuid4().hex

    def _artifact_uri(self, experiment_id: str, run_id: str) -> str:
        from mlflow.utils.uri import append_to_uri_path

        if experiment_id not in self._artifact_roots:
            self._artifact_roots[experiment_id] = self.client.get_experiment(experiment_id).artifact_location
        return append_to_uri_path(self._artifact_roots[experiment_id], run_id, "artifacts")

    def _session(self):
        try:
            return self.store.ManagedSessionMaker(read_only=False)
        except TypeError:
            return self.store.ManagedSessionMaker()

    def _metric_rows(self, run: PendingRun, metric_rows: list, latest_rows: list, replace_latest: list) -> None:
        """The run's metric rows (duplicates dropped) and the latest value per key that they change."""
        rid = run.run_id
        seen: set[tuple] = set()
        latest = self._latest.setdefault(rid, {})
        changed: set[str] = set()
        for key, value, ts, step in run.metrics:
            is_nan, clean = _sanitize(float(value))
            ident = (key, ts, step, clean, is_nan)
            if ident in seen:
                continue
            seen.add(ident)
            metric_rows.append(
                {"run_uuid": rid, "key": key, "value": clean, "timestamp": ts, "step": step, "is_nan": is_nan}
            )
            if key not in latest or (step, ts, clean) > latest[key][:3]:
                latest[key] = (step, ts, clean, is_nan)
                changed.add(key)
        if changed and not run.create:
            replace_latest.append((rid, sorted(changed)))
        for key in sorted(changed):
            step, ts, clean, is_nan = latest[key]
            latest_rows.append(
                {"run_uuid": rid, "key": key, "value": clean, "timestamp": ts, "step": step, "is_nan": is_nan}
            )

    def write(self, runs: list[PendingRun]) -> None:
        """One transaction; on failure nothing is written and the latest-metric bookkeeping is as before."""
        saved = {rid: dict(latest) for rid, latest in self._latest.items()}
        try:
            self._write(runs)
        except BaseException:
            self._latest = saved
            raise

    def _write(self, runs: list[PendingRun]) -> None:
        from sqlalchemy import delete, insert, update

        run_rows, tag_rows, param_rows, metric_rows, latest_rows = [], [], [], [], []
        ends, replace_tags, replace_latest = [], [], []
        for run in runs:
            rid = run.run_id
            if run.create:
                status, end_time = run.end if run.end else ("RUNNING", None)
                run_rows.append(
                    {
                        "run_uuid": rid,
                        "name": run.create["name"],
                        "artifact_uri": self._artifact_uri(run.experiment_id, rid),
                        "experiment_id": int(run.experiment_id),
                        "source_type": "UNKNOWN",
                        "source_name": "",
                        "entry_point_name": "",
                        "user_id": self.user,
                        "status": status,
                        "start_time": run.create["start_time"],
                        "end_time": end_time,
                        "deleted_time": None,
                        "source_version": "",
                        "lifecycle_stage": "active",
                    }
                )
            elif run.end:
                ends.append({"rid": rid, "st": run.end[0], "et": run.end[1]})
            if run.tags and not run.create:
                replace_tags.append((rid, list(run.tags)))
            tag_rows += [{"run_uuid": rid, "key": k, "value": v} for k, v in run.tags.items()]
            param_rows += [{"run_uuid": rid, "key": k, "value": v} for k, v in run.params.items()]
            self._metric_rows(run, metric_rows, latest_rows, replace_latest)
            if run.end and run.end[0] != "RUNNING":
                self._latest.pop(rid, None)
        with self._session() as session:
            if run_rows:
                session.execute(insert(self.runs), run_rows)
            for rid, keys in replace_tags:
                session.execute(delete(self.tags).where(self.tags.c.run_uuid == rid, self.tags.c.key.in_(keys)))
            for rid, keys in replace_latest:
                t = self.latest
                session.execute(delete(t).where(t.c.run_uuid == rid, t.c.key.in_(keys)))
            for table, rows in ((self.tags, tag_rows), (self.params, param_rows), (self.metrics, metric_rows)):
                if rows:
                    session.execute(insert(table), rows)
            if latest_rows:
                session.execute(insert(self.latest), latest_rows)
            for end in ends:
                session.execute(
                    update(self.runs)
                    .where(self.runs.c.run_uuid == end["rid"])
                    .values(status=end["st"], end_time=end["et"])
                )


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user database entry (some containers)
        return "unknown"


def make_writer(client: MlflowClient, prefer_sql: bool = True) -> ClientWriter | SqlWriter:
    if prefer_sql and is_database_uri(client.tracking_uri):
        try:
            return SqlWriter(client)
        except (ImportError, AttributeError, TypeError) as exc:
            log.warning("falling back to MLflow client writes (%s)", exc)
    return ClientWriter(client)
