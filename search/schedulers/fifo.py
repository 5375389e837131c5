"""FIFO: every trial runs to the maximum budget; the sampler decides everything else."""

from __future__ import annotations

from trellis.search.schedulers.base import JobRequest, Scheduler


class FIFOScheduler(Scheduler):
    """Every trial runs to the maximum budget; the sampler decides everything else."""

    def next_job(self) -> JobRequest:
        return JobRequest(budget_stop=self.budget.max)
