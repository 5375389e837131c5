"""How the runner ends jobs early: timeouts, data the store refused, the end of the search; and the
checkpoint files it prunes once reports are durable."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from trellis.search.engine.records import TrialRecord
from trellis.tracking.schema import EndReason

log = logging.getLogger("trellis.search.engine.runner")


class JobEndings:
    """The job-ending half of ``SearchRunner`` (its attributes are the runner's)."""

    config: Any
    executor: Any
    recorder: Any
    checkpoints: Any
    progress: Any
    trials: dict
    _running: dict[str, TrialRecord]
    _to_prune: set

    def _enforce_trial_timeout(self) -> None:
        limit = self.config.trial.timeout_s
        if limit is None:
            return
        now = time.time()
        for key, record in list(self._running.items()):
            if now - record.started_at > limit:
                msg = f"killed after exceeding trial.timeout_s={limit:g}"
                self._kill(key, msg, msg)

    def _prune_checkpoints(self) -> None:
        """Once the reports are durably in MLflow, a trial's older checkpoint files are no longer needed."""
        if not self._to_prune or self.recorder.has_pending:
            return
        for number in self._to_prune:
            with contextlib.suppress(OSError):
                self.checkpoints.prune(number, self.trials[number].last_step)
        self._to_prune.clear()

    def _fail_refused(self) -> None:
        """Trials whose data the store refused (the recorder closed their runs FAILED): stop them, count them."""
        for run_id, reason in self.recorder.take_refused().items():
            record = next((r for r in self.trials.values() if r.run_id == run_id), None)
            if record is None:
                continue
            key = next((k for k, r in self._running.items() if r is record), None)
            if key is None:
                self.progress.count(record.number, EndReason.FAILED)
                continue
            with contextlib.suppress(Exception):
                self.executor.kill(key)
            self._running.pop(key, None)
            self._close(record, EndReason.FAILED, time.time(), error=reason)

    def _kill_running(self, why: str) -> None:
        """The search ends: stop every running job. The algorithm is not told, as its decisions about
        these trials (pruning a whole rung, say) would be wrong; a resumed search replays it instead."""
        with contextlib.suppress(Exception):  # first record what workers already sent
            self._handle(self.executor.poll(0))
        for key in list(self._running):
            self._kill(key, why, None, tell_search=False)

    def _kill(self, key: str, error: str, tail: str | None, tell_search: bool = True) -> None:
        """Stop one job, record what it sent until then (its last report names the step its checkpoint holds,
        which a resumed search continues from), and mark it killed unless it finished first."""
        try:
            late = self.executor.kill(key)
        except Exception as exc:  # still mark it killed
            log.warning("could not kill %s: %s", key, exc)
            late = []
        with contextlib.suppress(Exception):
            self._handle(late)
        record = self._running.pop(key, None)
        if record is not None:
            self._close(record, EndReason.KILLED, time.time(), error=error, tail=tail, tell_search=tell_search)
