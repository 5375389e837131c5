"""When a search stops launching work: pure checks of ``termination:`` against the search's state."""

from __future__ import annotations

from trellis.search.config import Objective, Termination


def threshold_reached(best: float | None, threshold: float | None, objective: Objective) -> bool:
    """The best value so far is at least as good as ``threshold`` (in the objective's direction)."""
    if best is None or threshold is None:
        return False
    return best * objective.sign >= threshold * objective.sign


def out_of_time(termination: Termination, elapsed_s: float) -> bool:
    return termination.max_time_s is not None and elapsed_s >= termination.max_time_s


def launch_stop(termination: Termination, objective: Objective, best: float | None, elapsed_s: float) -> str | None:
    """Why no further job may start (``threshold`` or ``max_time``), or None while work may start."""
    if threshold_reached(best, termination.threshold, objective):
        return "threshold"
    if out_of_time(termination, elapsed_s):
        return "max_time"
    return None


def trials_exhausted(termination: Termination, n_sampled: int) -> bool:
    """``max_trials`` counts the sampler's configurations; continuations and PBT exploits are not new ones."""
    return termination.max_trials is not None and n_sampled >= termination.max_trials
