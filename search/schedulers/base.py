"""Schedulers: decide what runs next and what happens on each intermediate result.

The runner asks ``next_job()`` whenever a worker is free. A job either starts a new trial (the
sampler proposes its configuration) or continues an existing one from its checkpoint; it carries the
budget to run to and the tags that explain why (bracket, rung, PBT parent, ...). On every intermediate
report the runner asks ``on_report`` for a decision. FIFO, early stopping (with Stop-and-Go),
Hyperband/BOHB and PBT implement it in modules beside this one, named in ``trellis.search.registry``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from trellis.search.config import Budget, Objective

if TYPE_CHECKING:
    from trellis.search.config import SearchConfig


class Decision(StrEnum):
    CONTINUE = "continue"
    STOP = "stop"  # early-stopped: the trial ends here but stays resumable from its checkpoint


@dataclass(frozen=True)
class JobRequest:
    """What to run next. ``trial`` is None for a new trial, else the number of one to continue.

    A new trial takes its configuration from the sampler unless ``params`` is given (a PBT member after
    exploit), and starts from a copy of trial ``copy_checkpoint_from``'s checkpoint when that is set.
    """

    budget_stop: int
    budget_start: int = 0
    trial: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] | None = None
    copy_checkpoint_from: int | None = None


class Scheduler(ABC):
    #: Whether workers must wait for a decision after each report (False saves a round trip).
    needs_decisions: bool = False

    def __init__(self, budget: Budget, objective: Objective) -> None:
        self.budget = budget
        self.objective = objective

    @classmethod
    def from_config(cls, config: SearchConfig) -> Scheduler:
        """The scheduler a search config asks for; implementations with settings read theirs here."""
        return cls(config.budget, config.objective)

    @abstractmethod
    def next_job(self) -> JobRequest | None:
        """The next job to start, or None when nothing should start now."""

    def on_report(self, trial: int, step: int, value: float | None) -> Decision:
        return Decision.CONTINUE

    def on_trial_end(self, trial: int, step: int, value: float | None, state: str) -> None:
        """Called once a job ends (completed, early_stopped, failed, killed)."""

    def on_job_started(self, trial: int, params: dict[str, Any] | None = None) -> None:
        """Called when the runner started the job ``next_job`` asked for (a new trial or a continuation)."""

    def size(self) -> int | None:
        """How many trials the scheduler will start in all, when it knows (Hyperband's brackets)."""
        return None

    @property
    def finished(self) -> bool:
        """True once the scheduler will ask for nothing more (Hyperband after its last bracket)."""
        return False

    def drain_updates(self) -> list[tuple[int, dict[str, str]]]:
        """Tags for ended trials whose fate was decided since the last call (pruned at a rung, exploited)."""
        return []
