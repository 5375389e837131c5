"""``runs_state``: the one answer to "did these runs change?" for a frame of runs (``RunTable.trials``).

Every in-process result built from runs is kept under a key that holds this state, and is rebuilt when the
state changes. What counts as a change is said by the caller, the same function for all:

- ``ended_only``: only runs that ended count (a heavy analysis, redone when a run ends, not while running runs
  log: fANOVA and bounds stay at most one run behind);
- otherwise also how many runs there are (a diagnosis sees a trial as soon as it starts);
- ``metric``: also the sum of that metric over the runs (an analysis of that metric sees new values).

The store-level question (did anything in these experiments change, across processes) is the store's
fingerprint (``trellis.tracking.cache.fingerprint``, behind ``AppContext.store_state``).
"""

from __future__ import annotations

import pandas as pd

LIVE_STATUSES = ("RUNNING", "SCHEDULED")


def runs_state(trials: pd.DataFrame, *, ended_only: bool = False, metric: str | None = None) -> tuple:
    """(runs, ended runs, last end[, metric sum]); with ``ended_only`` the count of all runs is left out."""
    if trials.empty:
        ended, last = 0, ""
    else:  # without a status column (runs read elsewhere): a run with an end time has ended
        live = trials["status"].isin(LIVE_STATUSES) if "status" in trials else trials["end_time"].isna()
        done = trials[~live]
        ended = len(done)
        last = str(done["end_time"].max()) if len(done) else ""
    state: tuple = (ended, last) if ended_only else (len(trials), ended, last)
    if metric is not None:
        column = f"metrics.{metric}"
        state += (float(trials[column].sum()) if column in trials and len(trials) else 0.0,)
    return state
