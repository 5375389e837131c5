"""``ExecutorContract``: jobs go out, reports and endings come back in order, a raising trial fails only
itself, a worker that dies fails only its job and is replaced, and a killed job frees its slot."""

from __future__ import annotations

import tempfile
import time
from typing import Any, ClassVar

from trellis.search.config import ExecutorConfig, TrialSpec
from trellis.search.executors.base import Ended, Executor, Report
from trellis.search.registry import EXECUTORS, resolve
from trellis.search.trial import TrialJob

QUADRATIC = "trellis.examples.synthetic:quadratic"  # reports loss and accuracy every epoch
CRASHY = "trellis.examples.synthetic:crashy"  # raises for x > 0.5
HARD_EXIT = "trellis.examples.synthetic:hard_exit"  # kills its own worker process
SLOW = "trellis.examples.synthetic:slow"  # sleeps each epoch


class ExecutorContract:
    """Subclass with ``executor`` (a registered name) and any ``config`` keys it needs (an address...)."""

    executor: ClassVar[str] = ""
    config: ClassVar[dict[str, Any]] = {}
    timeout_s: ClassVar[float] = 120.0

    def make(self, workers: int = 2) -> Executor:
        spec = EXECUTORS[self.executor]
        settings = {"kind": self.executor, "workers": workers, "address": None, **self.config}
        executor = resolve(spec.executor).from_config(ExecutorConfig(**settings))
        executor.start()
        return executor

    def job(self, number: int, function: str, params: dict[str, Any], folder: str, stop: int = 3) -> TrialJob:
        return TrialJob(f"{number}.0", number, params, TrialSpec(function=function), 0, stop, "epochs",
                        f"{folder}/{number}", "loss", seed=number)  # fmt: skip

    def run_all(self, executor: Executor, jobs: list[TrialJob]) -> list:
        """Submit as slots free up, poll until every job ended; the events in the order they came."""
        waiting, events, ended = list(jobs), [], set()
        deadline = time.monotonic() + self.timeout_s
        while len(ended) < len(jobs):
            assert time.monotonic() < deadline, f"jobs did not end within {self.timeout_s} s: {events[-5:]}"
            while waiting and executor.free_slots() > 0:
                executor.submit(waiting.pop(0))
            for event in executor.poll(0.2):
                events.append(event)
                if isinstance(event, Ended):
                    ended.add(event.key)
        return events

    def test_jobs_report_every_step_in_order_then_end(self):
        executor = self.make()
        try:
            with tempfile.TemporaryDirectory() as folder:
                jobs = [self.job(i, QUADRATIC, {"x": 0.1 * i, "y": 0.0}, folder) for i in range(4)]
                events = self.run_all(executor, jobs)
        finally:
            executor.shutdown()
        for job in jobs:
            mine = [e for e in events if getattr(e, "key", None) == job.key and isinstance(e, Report | Ended)]
            assert [e.step for e in mine if isinstance(e, Report)] == [1, 2, 3]
            assert isinstance(mine[-1], Ended) and mine[-1].outcome.state == "completed"
            assert all("loss" in e.metrics for e in mine if isinstance(e, Report))

    def test_a_raising_trial_fails_alone_with_its_error(self):
        executor = self.make()
        try:
            with tempfile.TemporaryDirectory() as folder:
                jobs = [self.job(0, CRASHY, {"x": 0.9}, folder), self.job(1, CRASHY, {"x": 0.1}, folder)]
                ended = {e.key: e.outcome for e in self.run_all(executor, jobs) if isinstance(e, Ended)}
        finally:
            executor.shutdown()
        assert ended["0.0"].state == "failed" and "synthetic failure" in (ended["0.0"].error or "")
        assert ended["1.0"].state == "completed"

    def test_a_worker_that_dies_fails_only_its_job_and_is_replaced(self):
        executor = self.make(workers=1)
        try:
            with tempfile.TemporaryDirectory() as folder:
                jobs = [self.job(0, HARD_EXIT, {}, folder), self.job(1, QUADRATIC, {"x": 0.3, "y": -0.5}, folder)]
                ended = {e.key: e.outcome for e in self.run_all(executor, jobs) if isinstance(e, Ended)}
        finally:
            executor.shutdown()
        assert ended["0.0"].state == "failed" and ended["1.0"].state == "completed"

    def test_a_killed_job_frees_its_slot(self):
        executor = self.make(workers=1)
        try:
            with tempfile.TemporaryDirectory() as folder:
                slow = self.job(0, SLOW, {"seconds": 5.0}, folder, stop=10)
                executor.submit(slow)
                assert executor.free_slots() == 0
                executor.kill(slow.key)
                assert executor.free_slots() == 1
                after = self.run_all(executor, [self.job(1, QUADRATIC, {"x": 0.3, "y": -0.5}, folder)])
        finally:
            executor.shutdown()
        assert [e.outcome.state for e in after if isinstance(e, Ended)] == ["completed"]
