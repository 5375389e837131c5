"""When a search stops launching work: pure checks of ``termination:`` against the search's state."""

from __future__ import annotations

from trellis.search.config import Objective, Termination


def threshold_reached(best: float | None, threshold, objective: Objective) -> bool:
    """The best value so far is at least as good as ``threshold`` (in the objective's direction). A list of
    thresholds (several objectives) is ``thresholds_met``'s, per trial."""
    if best is None or threshold is None or isinstance(threshold, tuple):
        return False
    return best * objective.sign >= threshold * objective.sign


def thresholds_met(values: list[float] | None, thresholds, objectives) -> bool:
    """Several objectives: one trial is at least as good as every threshold at once (each in its direction)."""
    if values is None or not isinstance(thresholds, tuple) or len(thresholds) != len(values):
        return False
    return all(v * o.sign >= t * o.sign for v, t, o in zip(values, thresholds, objectives, strict=True))


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
