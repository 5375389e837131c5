"""The executor seam: what runs jobs somewhere and streams back reports and endings.

The runner (single thread) owns all decisions and all MLflow writes; an executor only moves jobs out
and events in. Implementations live beside this module (``local``, ``dask_cluster``) and are named in
``trellis.search.registry.EXECUTORS``; this module imports none of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from trellis.search.config import ExecutorConfig
from trellis.search.trial import TrialJob, TrialOutcome


@dataclass(frozen=True)
class Report:
    key: str
    step: int
    metrics: dict[str, float]
    at: float


@dataclass(frozen=True)
class Ended:
    key: str
    outcome: TrialOutcome
    at: float


@dataclass(frozen=True)
class Placed:
    """Where a job runs, as tags for its trial run (``trellis.gpu``): sent once it is known (at submit for
    the local executor, when the task starts on its worker for Dask)."""

    key: str
    tags: dict[str, str]


@dataclass(frozen=True)
class Restarted:
    """A job that runs again from its start although it had reported (a Dask worker lost mid-trial: Dask
    re-executes the task elsewhere). Sent before its first report of the new attempt; the runner ends the
    run it had as killed and logs the new attempt in a new run tagged as a retry, so no step is logged twice."""

    key: str
    at: float
    why: str


Event = Report | Ended | Placed | Restarted


class Executor(ABC):
    @classmethod
    def from_config(cls, config: ExecutorConfig) -> Executor:
        """The executor an ``executor:`` section asks for (implementations that take more read it here)."""
        return cls(config.workers)

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def free_slots(self) -> int: ...

    @abstractmethod
    def submit(self, job: TrialJob) -> str:
        """Start a job; returns the name of the worker that runs it."""

    @abstractmethod
    def poll(self, timeout: float) -> list[Event]: ...

    @abstractmethod
    def decide(self, key: str, decision: str) -> None:
        """Answer a report of a job that waits for decisions."""

    @abstractmethod
    def kill(self, key: str) -> list[Event]:
        """Stop a running job at once (its outcome is the runner's to record).

        Returns what the job had sent and the runner had not read yet: its last reports name the step its
        checkpoint holds, so a resumed search continues from there; an ``Ended`` means it finished first."""

    @abstractmethod
    def shutdown(self) -> None: ...

    def resize(self, workers: int) -> None:
        """Run up to ``workers`` jobs at once from now on (an edit of a running search). Executors whose
        ``free_slots`` counts against ``self.workers`` need nothing more."""
        self.workers = workers
