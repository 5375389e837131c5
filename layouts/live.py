"""Live pages: when the store changed under an open page, and what the page's controls keep when it did.

Pure functions of plain values (no Dash). The shell polls a cheap fingerprint of the chosen experiments
(``trellis.tracking.cache.fingerprint``) and bumps a version the pages' data callbacks listen to only when it
changed; these functions make those decisions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from trellis.tracking.run_state import runs_state


class LiveStep(NamedTuple):
    seen: dict  # what the shell remembers: the experiments polled and their fingerprint
    changed: bool  # whether the pages must read the runs again


def live_step(seen: dict | None, experiments: Sequence[str], fingerprint: Sequence | None, tick: bool) -> LiveStep:
    """What a poll of ``experiments`` (their store fingerprint now) means.

    Only a tick can ask for a refresh, and only when it polls the same experiments as the last poll and
    their fingerprint differs: a selection change re-renders the pages by itself, so it only records the
    fingerprint the pages were drawn from. A store without a fingerprint (None) never asks.
    """
    now = {"experiments": sorted(str(e) for e in experiments), "fingerprint": list(fingerprint or [])}
    if not tick or fingerprint is None or seen is None or seen.get("experiments") != now["experiments"]:
        return LiveStep(now, False)
    return LiveStep(now, seen.get("fingerprint") != now["fingerprint"])


def next_version(version: int | None) -> int:
    """The data version after a change: a counter, so every bump is a new value."""
    return int(version or 0) + 1


def kept_choice(current: Any, old_options: Sequence | None, options: Sequence, default: Any, multi: bool = False):
    """A picker's value once the runs it offers were read again: the user's choice while it is still offered.

    A single picker keeps its value while the options hold it, else takes ``default``. A multi picker keeps
    what the user chose (dropping values no longer offered, keeping an emptied picker empty); it takes
    ``default`` only when it had nothing to offer before (a search that had logged no metric yet).
    """
    offered = {_value(o) for o in options}
    if not multi:
        return current if current in offered else default
    if not old_options or current is None:
        return default
    return [v for v in current if v in offered]


def _value(option: Any) -> Any:
    return option.get("value") if isinstance(option, dict) else option


def detail_click(by_click: bool, refresh: bool, click: dict | None, shown: Sequence[str] | None) -> dict | None:
    """The importance row whose marginal the space page shows, as a click on it (None: the most important).

    A click shows its row; a new analysis the user asked for (another metric, parameters, runs) starts from
    its most important row; a live refresh of the same analysis keeps the row shown (``shown``: its
    parameters, as the marginal drawn last records them).
    """
    if by_click:
        return click
    if refresh and shown:
        return {"points": [{"customdata": list(shown)}]}
    return None


# A refresh quicker than this shows no spinner over the graph it redraws (dcc.Loading's delay_show).
LOADING_DELAY_MS = 600


def ended_state(trials) -> tuple:
    """How many of these runs have ended, and the last end: what a heavy analysis is recomputed on
    (``trellis.tracking.run_state.runs_state`` with ``ended_only``: a running search's metrics change every
    tick; an analysis redone only when a run ends stays at most one run behind)."""
    return runs_state(trials, ended_only=True)
