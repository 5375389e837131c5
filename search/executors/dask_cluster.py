"""Run trials as tasks on a Dask distributed cluster (``executor: {kind: dask, address: tcp://...}``).

Without an address a ``LocalCluster`` of ``workers`` single-threaded worker processes is started, so
the same config runs on a laptop and on a cluster. A worker needs only the project installed and
access to the tracking URI's checkpoints folder: every MLflow write still happens in the runner, which
receives each report through a Dask queue and answers early-stopping decisions through a per-job queue.

Killing a task: Dask cannot interrupt a running Python function, so a kill sets a per-job Dask event
that the trial sees at its next report (it then stops), and the runner marks the trial killed at once.
A LocalCluster is closed with the search, which ends whatever still runs on it.
"""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from typing import Any

from search.config import ExecutorConfig
from search.executors.base import Ended, Event, Executor, Report
from search.trial import TrialJob, TrialOutcome, run_job
from tracking.schema import EndReason

log = logging.getLogger(__name__)


def _run_on_worker(job: TrialJob, channel: str) -> TrialOutcome:
    """The Dask task: run one job, streaming reports to the runner's queue (runs on a worker)."""
    from distributed import Event as DaskEvent
    from distributed import Queue

    events = Queue(f"{channel}-events")
    killed = DaskEvent(f"{channel}-kill-{job.key}")
    decisions = Queue(f"{channel}-decide-{job.key}") if job.wants_decisions else None

    def reporter(step: int, metrics: dict[str, float]) -> str:
        events.put(("report", job.key, step, metrics, time.time()))
        if killed.is_set():
            return "stop"
        if decisions is None:
            return "continue"
        return str(decisions.get())

    return run_job(job, reporter)


class DaskExecutor(Executor):
    @classmethod
    def from_config(cls, config: ExecutorConfig) -> DaskExecutor:
        return cls(config.workers, config.address)

    def __init__(self, workers: int = 1, address: str | None = None) -> None:
        self.workers = workers
        self.address = address
        self._channel = f"trellis-{uuid.uuid4().hex[:12]}"
        self._client: Any = None
        self._cluster: Any = None
        self._events: Any = None
        self._futures: dict[str, Any] = {}

    def start(self) -> None:
        from distributed import Client, LocalCluster, Queue

        if self.address:
            self._client = Client(self.address)
        else:
            self._cluster = LocalCluster(
                n_workers=self.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.WARNING,
            )
            self._client = Client(self._cluster)
        self._events = Queue(f"{self._channel}-events", client=self._client)

    def free_slots(self) -> int:
        return self.workers - len(self._futures)

    def submit(self, job: TrialJob) -> str:
        future = self._client.submit(_run_on_worker, job, self._channel, key=f"{self._channel}-{job.key}", pure=False)
        self._futures[job.key] = future
        return f"dask:{self.address or 'local-cluster'}"

    def poll(self, timeout: float) -> list[Event]:
        deadline = time.monotonic() + timeout
        while True:
            done = [key for key, f in self._futures.items() if f.done()]  # first: their reports are queued by now
            reports = self._drain()
            if reports or done or time.monotonic() >= deadline:
                return [*reports, *(self._ended(key) for key in done)]
            time.sleep(0.02)

    def _drain(self) -> list[Event]:
        if self._events.qsize() == 0:
            return []
        return [self._as_report(msg) for msg in self._events.get(batch=True)]

    @staticmethod
    def _as_report(msg: Any) -> Report:
        _, key, step, metrics, at = msg
        return Report(key, int(step), dict(metrics), float(at))

    def _ended(self, key: str) -> Ended:
        future = self._futures.pop(key)
        try:
            outcome = future.result()
        except Exception as exc:  # the task itself failed (worker lost, unpicklable job, ...)
            tail = "".join(traceback.format_exception(exc))[-4000:]
            outcome = TrialOutcome(
                EndReason.FAILED, error=f"dask task failed: {type(exc).__name__}: {exc}"[:500], tail=tail
            )
        return Ended(key, outcome, time.time())

    def decide(self, key: str, decision: str) -> None:
        from distributed import Queue

        Queue(f"{self._channel}-decide-{key}", client=self._client).put(decision)

    def kill(self, key: str) -> list[Event]:
        from distributed import Event as DaskEvent

        future = self._futures.pop(key, None)
        if future is None:
            return []
        DaskEvent(f"{self._channel}-kill-{key}", client=self._client).set()
        future.cancel()
        return self._drain()  # reports queued before the trial saw the event (other jobs' too: all are kept)

    def shutdown(self) -> None:
        for key in list(self._futures):
            self.kill(key)
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        self._client = self._cluster = None
