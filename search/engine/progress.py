"""What a progress display shows, counted per trial (a trial continued for a rung or a generation moves
between buckets, it is not counted again)."""

from __future__ import annotations

from dataclasses import dataclass, field

from trellis.tracking.schema import EndReason


def bucket_of(reason: str) -> str:
    """The progress bucket of a trial's end reason: failed, killed, or completed (every other ending)."""
    if reason in (EndReason.FAILED, EndReason.KILLED):
        return str(EndReason(reason))
    return EndReason.COMPLETED.value


@dataclass
class Progress:
    """Passed to the ``on_progress`` callback after each event."""

    started: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    killed: int = 0
    best_value: float | None = None
    best_trial: int | None = None
    limit: int | None = None
    _bucket: dict[int, str] = field(default_factory=dict, repr=False)

    @property
    def ended(self) -> int:
        return self.completed + self.failed + self.killed

    def buckets(self) -> dict[int, str]:
        """Trial number -> how it ended (its bucket: completed, failed or killed)."""
        return dict(self._bucket)

    def count(self, number: int, reason: str) -> None:
        """Trial ``number`` ended (again) with ``reason``: move it to that reason's bucket."""
        new = bucket_of(reason)
        old = self._bucket.get(number)
        if old == new:
            return
        if old is not None:
            self._add(old, -1)
        self._bucket[number] = new
        self._add(new, +1)

    def _add(self, bucket: str, n: int) -> None:
        if bucket == EndReason.COMPLETED:
            self.completed += n
        elif bucket == EndReason.FAILED:
            self.failed += n
        else:
            self.killed += n
