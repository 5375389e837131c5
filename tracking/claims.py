"""Claiming a search run for exactly one agent, and what state a search is in, from MLflow alone.

A claim is a compare-and-swap on the search run's ``trellis.claim`` tag: ``UPDATE tags SET value = new
WHERE run_uuid = id AND key = 'trellis.claim' AND value = seen``. The database does the comparing, so two
agents that saw the same value cannot both win, on SQLite and on PostgreSQL alike. Through an ``mlflow
server`` (no SQL access) the claim writes the tag, waits, and reads it back: the last writer wins and the
others see it lost, which is safe only while agents poll at different moments; point agents at the
database for a strict guarantee.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from mlflow import MlflowClient

from trellis.tracking import schema
from trellis.tracking.schema import SearchState
from trellis.tracking.sql import engine
from trellis.tracking.uris import is_database_uri

HEARTBEAT_STALE_S = 30.0  # a RUNNING search silent for longer than this has lost its runner


def claim(client: MlflowClient, run_id: str, seen: str, new: str) -> bool:
    """Set the run's claim tag to ``new`` if it still holds ``seen``; True when this caller won."""
    uri = client.tracking_uri
    if is_database_uri(uri):
        from sqlalchemy import text

        with engine(uri).begin() as conn:
            result = conn.execute(
                text("UPDATE tags SET value = :new WHERE run_uuid = :run AND key = :key AND value = :seen"),
                {"new": new, "run": run_id, "key": schema.CLAIM, "seen": seen},
            )
            return result.rowcount == 1
    if client.get_run(run_id).data.tags.get(schema.CLAIM) != seen:
        return False
    client.set_tag(run_id, schema.CLAIM, new)
    time.sleep(1.0)
    return client.get_run(run_id).data.tags.get(schema.CLAIM) == new


@dataclass(frozen=True)
class SearchStatus:
    """What the control page shows for a search: one of scheduled, running, finished, stopped, failed,
    orphaned (its run says RUNNING but its runner stopped beating), and the heartbeat's age."""

    label: str
    silent_s: float | None = None

    @property
    def active(self) -> bool:
        return self.label in ("scheduled", "running")


def search_status(run_status: str, tags: dict[str, str], now: float | None = None) -> SearchStatus:
    """Pure: the status of a search run from its MLflow status and tags."""
    state = tags.get(schema.SEARCH_STATE, "")
    if run_status == "SCHEDULED" or state == SearchState.SCHEDULED:
        return SearchStatus("scheduled")
    if run_status == "RUNNING":
        beat = tags.get(schema.HEARTBEAT)
        silent = (now or time.time()) - float(beat) if beat else None
        if silent is not None and silent > HEARTBEAT_STALE_S:
            return SearchStatus("orphaned", silent)
        return SearchStatus("running", silent)
    if state == SearchState.COMPLETED or (run_status == "FINISHED" and not state):
        return SearchStatus("finished")
    if state == SearchState.KILLED or run_status == "KILLED":
        return SearchStatus("stopped")
    return SearchStatus("failed")
