"""``LocalExecutor`` keeps N long-lived worker processes (spawned once, so a trial costs a
pipe message, not a process start). Each worker leads its own process group: Ctrl-C reaches only the
runner, and killing a worker takes a script trial's children with it.

With ``executor.gpus`` or ``cpus_per_trial`` each worker has a fixed place (``trellis.search.executors.resources``):
its GPU through ``CUDA_VISIBLE_DEVICES`` and its CPUs through affinity, set before its first trial; a worker
that dies is replaced on the same place, so its GPU goes on serving later trials.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import multiprocessing as mp
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection, wait
from typing import Any

from trellis.search.config import ConfigError, ExecutorConfig
from trellis.search.executors.base import Ended, Event, Executor, Placed, Report
from trellis.search.executors.resources import Place, describe_cap, enter_place, plan_places, resolve_gpus, usable_cpus
from trellis.search.processes import become_subreaper, reap_children
from trellis.search.trial import TAIL_LINES, TrialJob, TrialOutcome, die_with_parent, log_tail, run_job
from trellis.tracking import schema
from trellis.tracking.schema import EndReason

log = logging.getLogger(__name__)


def _worker_main(conn: Connection, name: str, place: Place | None = None) -> None:
    os.setsid()
    die_with_parent()
    become_subreaper()  # what a trial leaves running comes back to this worker, in its process group
    if place is not None:
        enter_place(place)
    # The runner decides how trials end: a terminal's or a service manager's signals are for it alone.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg[0] == "exit":
            return
        job: TrialJob = msg[1]

        def reporter(step: int, metrics: dict[str, float], job: TrialJob = job) -> str:
            conn.send(("report", job.key, step, metrics, time.time()))
            if not job.wants_decisions:
                return "continue"
            reply = conn.recv()
            return reply[2]

        outcome = run_job(job, reporter)
        reap_children()  # a trial's processes end with it: none outlives the search or holds its pipes
        conn.send(("ended", job.key, outcome, time.time()))


class _StderrRelay:
    """A worker's stderr, through a pipe: each chunk goes on to the runner's own stderr at once, and the last
    lines are kept, so a worker that dies (before its first trial, too: a failed import in the child's start,
    a crash in native code) is reported with the lines that say why, not only its exit code."""

    _start_lock = threading.Lock()  # fd 2 belongs to the whole process: one worker start at a time

    def __init__(self) -> None:
        self._read_fd, self._write_fd = os.pipe()
        self._lines: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._partial = ""
        self._terminal = -1  # a copy of the runner's stderr as the worker started: where its lines go on to
        self._pump = threading.Thread(target=self._relay, name="worker-stderr", daemon=True)

    @contextlib.contextmanager
    def as_stderr(self) -> Iterator[None]:
        """While a child process starts, fd 2 is this pipe: the child keeps it, the runner gets its own back."""
        with self._start_lock:
            self._terminal = os.dup(2)
            os.dup2(self._write_fd, 2)
            try:
                yield
            finally:
                os.dup2(self._terminal, 2)
        os.close(self._write_fd)
        self._pump.start()

    def _relay(self) -> None:
        while True:
            try:
                chunk = os.read(self._read_fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            with contextlib.suppress(OSError):
                os.write(self._terminal, chunk)
            text = self._partial + chunk.decode("utf-8", "replace")
            *complete, self._partial = text.split("\n")
            self._lines.extend(line for line in complete if line.strip())
        os.close(self._read_fd)
        os.close(self._terminal)

    def tail(self, wait_s: float = 1.0) -> str:
        """The worker's last stderr lines (waiting up to ``wait_s`` for what a dead worker still had in the pipe)."""
        if self._pump.is_alive():
            self._pump.join(wait_s)
        lines = [*self._lines, *([self._partial] if self._partial.strip() else [])]
        return "\n".join(lines[-TAIL_LINES:])


class _Slot:
    def __init__(self, ctx: Any, index: int, place: Place | None = None) -> None:
        self.index = index
        self.place = place
        self.name = f"{socket.gethostname()}:local-{index}"
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, self.name, place), daemon=True)
        self.stderr = _StderrRelay()
        with self.stderr.as_stderr():
            self.proc.start()
        child.close()
        self.key: str | None = None
        self.checkpoint_dir: str | None = None  # of the job it runs: its output log outlives the worker


class LocalExecutor(Executor):
    @classmethod
    def from_config(cls, config: ExecutorConfig) -> LocalExecutor:
        """Refuses (before the search run exists) more CPUs per trial than this process may use."""
        usable = len(usable_cpus())
        if config.cpus_per_trial and config.cpus_per_trial > usable:
            why = f"{config.cpus_per_trial} CPUs per trial, but this search may use {usable}"
            raise ConfigError([("executor.cpus_per_trial", why)])
        return cls(config.workers, gpus=config.gpus, per_gpu=config.per_gpu, cpus_per_trial=config.cpus_per_trial)

    def __init__(
        self,
        workers: int = 1,
        *,
        gpus: tuple[str, ...] | str | None = None,
        per_gpu: int = 1,
        cpus_per_trial: int | None = None,
    ) -> None:
        self.workers = workers
        self.gpus, self.per_gpu, self.cpus_per_trial = gpus, per_gpu, cpus_per_trial
        self._ctx = mp.get_context("spawn")
        self._slots: list[_Slot] = []
        self._places: list[Place] | None = None  # None: workers without a place (no resources asked for)
        self._placed: list[Placed] = []  # placements not yet polled

    def start(self) -> None:
        if self.gpus is not None or self.cpus_per_trial:
            gpus = resolve_gpus(self.gpus)
            self._places = plan_places(self.workers, gpus, self.per_gpu, self.cpus_per_trial)
            self._capacity_note(self.workers)
        self._slots = [self._new_slot(i) for i in range(self._allowed(self.workers))]

    def _allowed(self, workers: int) -> int:
        """How many worker processes run: one per place at most."""
        return workers if self._places is None else min(workers, len(self._places))

    def _new_slot(self, index: int) -> _Slot:
        return _Slot(self._ctx, index, None if self._places is None else self._places[index])

    def _capacity_note(self, workers: int) -> None:
        if self._places is None:
            return
        gpus = resolve_gpus(self.gpus)
        if self._places and len(self._places) < workers:
            log.warning(describe_cap(workers, len(self._places), gpus, self.per_gpu, self.cpus_per_trial))

    def free_slots(self) -> int:
        busy = sum(1 for s in self._slots if s.key is not None)
        return max(0, min(len(self._slots), self.workers) - busy)

    def resize(self, workers: int) -> None:
        """More workers start at once; fewer take effect as running trials end (idle spares stay parked)."""
        if self._places is not None and workers > self.workers:
            gpus = resolve_gpus(self.gpus)
            self._places = plan_places(workers, gpus, self.per_gpu, self.cpus_per_trial)
            self._capacity_note(workers)
        self.workers = workers
        if self._slots:
            while len(self._slots) < self._allowed(workers):
                self._slots.append(self._new_slot(len(self._slots)))

    def submit(self, job: TrialJob) -> str:
        slot = next(s for s in self._slots if s.key is None)
        slot.key, slot.checkpoint_dir = job.key, job.checkpoint_dir
        with contextlib.suppress(OSError):  # a worker that died while starting: poll reports it, with its stderr
            slot.conn.send(("run", job))
        if slot.place is not None and slot.place.gpus:
            self._placed.append(Placed(job.key, {schema.GPU: ",".join(slot.place.gpus)}))
        return slot.name

    def _take_placed(self, key: str | None = None) -> list[Event]:
        """Placements not yet polled (of ``key`` only, when given)."""
        taken = [p for p in self._placed if key is None or p.key == key]
        self._placed = [p for p in self._placed if p not in taken]
        return list(taken)

    def _slot_of(self, key: str) -> _Slot | None:
        return next((s for s in self._slots if s.key == key), None)

    def poll(self, timeout: float) -> list[Event]:
        events: list[Event] = self._take_placed()
        busy = [s for s in self._slots if s.key is not None]
        if not busy:
            if not events:
                time.sleep(min(timeout, 0.05))
            return events
        waitables: dict[Any, _Slot] = {}
        for s in busy:
            waitables[s.conn] = s
            waitables[s.proc.sentinel] = s
        if events:
            timeout = 0.0
        for ready in wait(list(waitables), timeout):
            slot = waitables[ready]
            if slot.key is None:
                continue
            if ready is slot.conn:
                events.extend(self._drain(slot))
            elif not slot.proc.is_alive() and slot.key is not None:
                events.extend(self._drain(slot))
                if slot.key is not None:
                    events.append(self._worker_died(slot))
        return events

    def _drain(self, slot: _Slot) -> list[Event]:
        out: list[Event] = []
        try:
            self._read(slot, out)
        except (EOFError, OSError):
            if slot.key is not None:
                out.append(self._worker_died(slot))
        return out

    @staticmethod
    def _read(slot: _Slot, out: list[Event]) -> None:
        """Append what the worker has sent; an ``ended`` message frees the slot."""
        while slot.key is not None and slot.conn.poll():
            msg = slot.conn.recv()
            if msg[0] == "report":
                out.append(Report(msg[1], msg[2], msg[3], msg[4]))
            elif msg[0] == "ended":
                out.append(Ended(msg[1], msg[2], msg[3]))
                slot.key = None

    def _worker_died(self, slot: _Slot) -> Ended:
        key = slot.key
        assert key is not None
        slot.proc.join(timeout=1)
        code = slot.proc.exitcode
        self._replace(slot)
        died = f"the worker running this trial exited with code {code}"
        written = log_tail(slot.checkpoint_dir) if slot.checkpoint_dir else ""
        stderr = slot.stderr.tail()
        if written:  # the trial's own lines are in its log already (they pass through stderr with a prefix)
            stderr = "\n".join(line for line in stderr.splitlines() if not line.startswith("[trial "))
        last = stderr.splitlines()[-1].strip() if stderr else ""
        outcome = TrialOutcome(
            EndReason.FAILED,
            error=f"worker process died (exit code {code})" + (f": {last}" if last else ""),
            tail="\n".join(part for part in (written, stderr, f"[trellis] {died}") if part),
        )
        return Ended(key, outcome, time.time())

    def _replace(self, slot: _Slot) -> None:
        self._terminate(slot)
        self._slots[slot.index] = _Slot(self._ctx, slot.index, slot.place)  # the same GPU and CPUs

    @staticmethod
    def _terminate(slot: _Slot, close: bool = True) -> None:
        if slot.proc.is_alive():
            try:
                os.killpg(slot.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                slot.proc.kill()
        slot.proc.join(timeout=5)
        if close:
            slot.conn.close()

    def has_unread(self, key: str, timeout: float = 0.0) -> bool:
        """Whether the worker running ``key`` sent something not polled yet (waiting up to ``timeout``)."""
        slot = self._slot_of(key)
        return slot is not None and slot.conn.poll(timeout)

    def decide(self, key: str, decision: str) -> None:
        slot = self._slot_of(key)
        if slot is not None:
            slot.conn.send(("decision", key, decision))

    def kill(self, key: str) -> list[Event]:
        slot = self._slot_of(key)
        if slot is None:
            return []
        self._terminate(slot, close=False)  # first stop it, then read what it sent up to that moment
        late: list[Event] = self._take_placed(key)
        with contextlib.suppress(EOFError, OSError):
            self._read(slot, late)
        self._replace(slot)
        return late

    def shutdown(self) -> None:
        for slot in self._slots:
            if slot.key is None and slot.proc.is_alive():
                with contextlib.suppress(OSError):
                    slot.conn.send(("exit",))
        deadline = time.time() + 2
        for slot in self._slots:
            if slot.key is None:
                slot.proc.join(timeout=max(0.0, deadline - time.time()))
            self._terminate(slot)
        self._slots = []
