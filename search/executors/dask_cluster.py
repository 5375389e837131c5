"""Run trials as tasks on a Dask distributed cluster (``executor: {kind: dask, address: tcp://...}``).

Without an address a ``LocalCluster`` of ``workers`` single-threaded worker processes is started, so
the same config runs on a laptop and on a cluster. A worker needs only the project installed and
access to the tracking URI's checkpoints folder: every MLflow write still happens in the runner, which
receives each report through a Dask queue and answers early-stopping decisions through a per-job queue.

Killing a task: Dask cannot interrupt a running Python function, so a kill sets a per-job Dask event
that the trial sees at its next report (it then stops), and the runner marks the trial killed at once.
A LocalCluster is closed with the search, which ends whatever still runs on it.

GPUs: a search with ``executor.gpus`` submits each trial with ``resources={"GPU": 1 / per_gpu}``, so Dask
places it only on a worker that declares GPUs (``dask worker ADDRESS --resources GPU=1``) and never runs more
than ``per_gpu`` trials per declared GPU. Inside the task ``CUDA_VISIBLE_DEVICES`` names the worker's GPU: the
ids in the worker's ``TRELLIS_GPUS`` environment variable, else the first ids of the ``CUDA_VISIBLE_DEVICES``
it was started with (as ``dask cuda worker`` sets it), else ``0 .. GPU-1``. Trials on one worker share its
process environment, so give each GPU its own worker process (one GPU per worker). Without an address, a
search with GPUs starts one local worker per GPU (``per_gpu`` threads each) instead of a LocalCluster.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import os
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from typing import Any

from trellis.search.config import ExecutorConfig
from trellis.search.executors.base import Ended, Event, Executor, Placed, Report, Restarted
from trellis.search.executors.resources import CUDA_VISIBLE, describe_cap, resolve_gpus
from trellis.search.trial import TrialJob, TrialOutcome, run_job
from trellis.tracking import schema
from trellis.tracking.schema import EndReason

log = logging.getLogger(__name__)
GPU_RESOURCE = "GPU"
GPUS_VARIABLE = "TRELLIS_GPUS"  # a worker's own GPU ids, comma-separated
_gpu_lock = threading.Lock()
_gpu_use: collections.Counter[str] = collections.Counter()  # on a worker: trials running per GPU id


@functools.cache
def _declared_gpus(count: int) -> tuple[str, ...]:
    """On a worker: the ids of the ``count`` GPUs it declared, read once (before any task changes them)."""
    raw = os.environ.get(GPUS_VARIABLE) or os.environ.get(CUDA_VISIBLE) or ""
    ids = [piece.strip() for piece in raw.split(",") if piece.strip() and not piece.strip().startswith("-")]
    return tuple(ids[:count]) if len(ids) >= count else tuple(str(i) for i in range(count))


@contextlib.contextmanager
def _worker_gpu() -> Iterator[str | None]:
    """On a worker: the least used of its GPUs for one trial, in ``CUDA_VISIBLE_DEVICES`` while it runs."""
    from distributed import get_worker

    count = int(get_worker().state.total_resources.get(GPU_RESOURCE, 0))
    ids = _declared_gpus(count) if count > 0 else ()
    if not ids:
        yield None
        return
    with _gpu_lock:
        gpu = min(ids, key=lambda i: _gpu_use[i])
        _gpu_use[gpu] += 1
        os.environ[CUDA_VISIBLE] = gpu
    try:
        yield gpu
    finally:
        with _gpu_lock:
            _gpu_use[gpu] -= 1


def _run_on_worker(job: TrialJob, channel: str, wants_gpu: bool = False) -> TrialOutcome:
    """The Dask task: run one job, streaming reports to the runner's queue (runs on a worker)."""
    from distributed import Event as DaskEvent
    from distributed import Queue

    events = Queue(f"{channel}-events")
    attempt = uuid.uuid4().hex  # this execution of the task: Dask may run it again on another worker
    killed = DaskEvent(f"{channel}-kill-{job.key}")
    decisions = Queue(f"{channel}-decide-{job.key}") if job.wants_decisions else None
    if not wants_gpu:
        return _run_reporting(job, events, killed, decisions, attempt)
    with _worker_gpu() as gpu:
        if gpu is not None:
            events.put(("placed", job.key, {schema.GPU: gpu}, attempt))
        return _run_reporting(job, events, killed, decisions, attempt)


def _run_reporting(job: TrialJob, events: Any, killed: Any, decisions: Any, attempt: str) -> TrialOutcome:

    def reporter(step: int, metrics: dict[str, float]) -> str:
        events.put(("report", job.key, step, metrics, time.time(), attempt))
        if killed.is_set():
            return "stop"
        if decisions is None:
            return "continue"
        return str(decisions.get())

    return run_job(job, reporter)


class DaskExecutor(Executor):
    @classmethod
    def from_config(cls, config: ExecutorConfig) -> DaskExecutor:
        return cls(config.workers, config.address, gpus=config.gpus, per_gpu=config.per_gpu)

    def __init__(
        self,
        workers: int = 1,
        address: str | None = None,
        *,
        gpus: tuple[str, ...] | str | None = None,
        per_gpu: int = 1,
    ) -> None:
        self.workers = workers
        self.address = address
        self.gpus, self.per_gpu = gpus, per_gpu
        self._gpu_share: float | None = None  # what each trial asks of a worker's GPU resource, when any
        self._gpu_slots: int | None = None  # a cluster's GPUs x per_gpu, when its workers declare GPUs
        self._channel = f"trellis-{uuid.uuid4().hex[:12]}"
        self._client: Any = None
        self._cluster: Any = None
        self._events: Any = None
        self._futures: dict[str, Any] = {}
        self._attempts: dict[str, str] = {}  # job key -> the execution of its task that reported last

    def start(self) -> None:
        from distributed import Client, LocalCluster, Queue

        if self.address:
            self._client = Client(self.address)
            if self.gpus is not None and self._cluster_declares_gpus():
                self._gpu_share = 1.0 / self.per_gpu
        elif self.gpus is not None and resolve_gpus(self.gpus):
            self._cluster = self._gpu_cluster(resolve_gpus(self.gpus))
            self._client = Client(self._cluster)
            self._gpu_share = 1.0 / self.per_gpu
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

    def _cluster_declares_gpus(self) -> bool:
        """Whether the cluster's workers declare GPUs; caps the trials at once to what they hold (a trial
        submitted beyond would wait in Dask's queue while its run says it started)."""
        workers = self._client.scheduler_info().get("workers", {}).values()
        total = sum(float(w.get("resources", {}).get(GPU_RESOURCE, 0)) for w in workers)
        if total <= 0:
            log.warning(
                "executor.gpus: no worker of %s declares GPUs (resources GPU=N): trials run anywhere", self.address
            )
            return False
        self._gpu_slots = int(total) * self.per_gpu
        if self.workers > self._gpu_slots:
            log.warning(
                "executor: %d workers, but the cluster's workers declare %g GPU(s) x per_gpu %d: %d trial(s) at once",
                self.workers,
                total,
                self.per_gpu,
                self._gpu_slots,
            )
        return True

    def _gpu_cluster(self, gpus: tuple[str, ...]) -> Any:
        """One local worker process per GPU, declaring it (``TRELLIS_GPUS``), ``per_gpu`` threads each."""
        from distributed import Nanny, Scheduler, SpecCluster

        cap = describe_cap(self.workers, len(gpus) * self.per_gpu, gpus, self.per_gpu, None)
        if cap:
            log.warning(cap)
        self.workers = min(self.workers, len(gpus) * self.per_gpu)
        host = {"host": "127.0.0.1"}
        worker = {"nthreads": self.per_gpu, "resources": {GPU_RESOURCE: 1}, "silence_logs": logging.WARNING, **host}
        return SpecCluster(
            scheduler={"cls": Scheduler, "options": {"dashboard_address": None, **host}},
            workers={f"gpu-{gpu}": {"cls": Nanny, "options": {**worker, "env": {GPUS_VARIABLE: gpu}}} for gpu in gpus},
            silence_logs=logging.WARNING,
        )

    def free_slots(self) -> int:
        return min(self.workers, self._gpu_slots or self.workers) - len(self._futures)

    def resize(self, workers: int) -> None:
        """On its own GPU workers, never more trials at once than GPUs x per_gpu (more would wait queued)."""
        gpus = resolve_gpus(self.gpus) if self._cluster is not None and self._gpu_share else ()
        self.workers = min(workers, len(gpus) * self.per_gpu) if gpus else workers

    def submit(self, job: TrialJob) -> str:
        extra: dict[str, Any] = {"resources": {GPU_RESOURCE: self._gpu_share}} if self._gpu_share else {}
        future = self._client.submit(
            _run_on_worker,
            job,
            self._channel,
            self._gpu_share is not None,
            key=f"{self._channel}-{job.key}",
            pure=False,
            **extra,
        )
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
        out: list[Event] = []
        for msg in self._events.get(batch=True):
            key, attempt = str(msg[1]), str(msg[-1])
            seen = self._attempts.setdefault(key, attempt)
            if seen != attempt:  # the task runs again (its worker was lost): say so before its reports
                self._attempts[key] = attempt
                out.append(Restarted(key, time.time(), "its Dask worker was lost and Dask ran the task again"))
            out.append(self._as_event(msg))
        return out

    @staticmethod
    def _as_event(msg: Any) -> Report | Placed:
        if msg[0] == "placed":
            return Placed(str(msg[1]), {str(k): str(v) for k, v in dict(msg[2]).items()})
        _, key, step, metrics, at, _attempt = msg
        return Report(key, int(step), dict(metrics), float(at))

    def _ended(self, key: str) -> Ended:
        future = self._futures.pop(key)
        self._attempts.pop(key, None)
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
