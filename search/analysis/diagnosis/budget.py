"""Rules on the budget an early decision is taken at (early stopping's ``step``, Hyperband/BOHB's first rung).

``low_rung_correlation``: over the trials that ran to the end, the rank correlation (Spearman) between the
objective at the early step and at the end (DeepCAVE's budget correlation). Low, the early decision ranks
trials on something else than what they end with → raise the step (or ``budget.min``) to the first step whose
ranking agrees with the end.

``slow_starters``: early stopping cut off trials that started no better than some that were behind at the
step and still ended among the best (the few that ran on because too few trials had reached the step to
compare with, and those Stop-and-Go resumed) → a larger step.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trellis.search.analysis.diagnosis.base import Finding, Rule, SearchFacts, run_number, spearman
from trellis.search.registry import BRACKETED, SEQUENTIAL, shape_of
from trellis.search.schedulers.hyperband import hyperband_brackets

CORR_MIN_TRIALS = 5  # fewer and one trial swings the correlation by ±0.5 (5: what R=9, eta=3 Hyperband runs to the end)
LOW_RANK_CORRELATION = 0.5  # below it the early ranking explains less than a quarter of the final one's variance
GOOD_RANK_CORRELATION = 0.8  # the step to suggest: where the early ranking mostly agrees with the end
OVERTAKE_SHARE = 0.5  # a slow starter ended better than at least half of the trials that were ahead of it
MIN_AHEAD = 2  # ... and at least two were ahead (one swap among neighbours is noise)
SLOW_MIN_SHARE = 0.25  # a quarter of the trials that ran on from behind did so: more than noise reorders


def early_step(facts: SearchFacts) -> tuple[int, str] | None:
    """The budget of the earliest decision and the config key that sets it, or None (no early decision)."""
    budget = facts.config.get("budget", {})
    top = int(budget.get("max", 0))
    early = facts.config.get("early_stopping") or {}
    shape = shape_of(facts.algorithm)
    if shape == SEQUENTIAL and int(early.get("step", -1)) > 0:
        step = int(early["step"])
        return (step, "early_stopping.step") if step < top else None
    if shape == BRACKETED:
        brackets = hyperband_brackets(top, int(budget.get("min", 1)), int(facts.setting("eta", 3)))
        first = min(b.rungs[0][1] for b in brackets)
        return (first, "budget.min") if first < top else None
    return None


def _completed(facts: SearchFacts) -> pd.Series:
    """The final value of each trial that ran to the end of the budget, by run id."""
    finals = facts.finals()
    top = int(facts.config.get("budget", {}).get("max", 0))
    rows = facts.trials.loc[finals.index]
    reached = pd.to_numeric(rows["budget_reached"], errors="coerce").to_numpy(dtype=float)
    keep = reached >= top if "budget_reached" in rows else np.ones(len(rows), bool)
    return pd.Series(finals.to_numpy()[keep], index=rows["run_id"].to_numpy()[keep], dtype=float)


def correlations(facts: SearchFacts) -> dict[int, tuple[float, int]]:
    """Step -> (Spearman correlation with the final value, trials) over the trials that ran to the end."""
    finals = _completed(facts)
    top = int(facts.config.get("budget", {}).get("max", 0))
    out = {}
    for step in range(1, top):
        early = facts.values_at(step)
        both = early.index.intersection(finals.index)
        if len(both) >= CORR_MIN_TRIALS:
            rho = spearman(early[both].to_numpy(), finals[both].to_numpy())
            if rho is not None:
                out[step] = (rho, len(both))
    return out


def suggested_step(corr: dict[int, tuple[float, int]], after: int) -> int | None:
    return next((s for s in sorted(corr) if s > after and corr[s][0] >= GOOD_RANK_CORRELATION), None)


def low_rung_correlation(facts: SearchFacts) -> list[Finding]:
    found = early_step(facts)
    if found is None or facts.history is None:
        return []
    step, key = found
    corr = correlations(facts)
    if step not in corr or corr[step][0] >= LOW_RANK_CORRELATION:
        return []
    rho, n = corr[step]
    better = suggested_step(corr, step)
    top = int(facts.config["budget"]["max"])
    where = "early stopping's step" if key == "early_stopping.step" else "the first Hyperband rung"
    agree = (
        f"; from step {better} on it is {corr[better][0]:.2f}"
        if better
        else f"; no step before {top} reaches {GOOD_RANK_CORRELATION}"
    )
    if better:
        fix, change = f"Raise {key} from {step} to {better}, where the ranking agrees with the end.", {key: better}
    elif key == "early_stopping.step":
        fix, change = "Turn early stopping off (step -1): no early step ranks trials as they end.", {key: -1}
    else:
        fix, change = "Use random or TPE with the full budget: no rung below the last ranks trials as they end.", {}
    return [
        Finding(
            rule="low_rung_correlation",
            search_id=facts.search_id,
            severity="warning",
            title=f"{facts.metric} at step {step} ({where}) does not predict the final {facts.metric}",
            evidence=(
                f"Spearman rank correlation {rho:.2f} between {facts.metric} at step {step} and at step {top}, over "
                f"the {n} trials that reached step {top}{agree}."
            ),
            fix=fix,
            config_change=change,
        )
    ]


def slow_starters(facts: SearchFacts) -> list[Finding]:
    found = early_step(facts)
    if found is None or found[1] != "early_stopping.step" or facts.history is None:
        return []
    step = found[0]
    finals = _completed(facts)
    at_step = facts.values_at(step)
    both = finals.index.intersection(at_step.index)
    if len(both) < 3 or len(at_step) < 3:
        return []
    sign = facts.sign
    early, final = at_step[both] * sign, finals[both] * sign  # larger is better from here on
    median = float(np.median(at_step.to_numpy() * sign))
    final_median = float(np.median(final.to_numpy()))
    e, f = early.to_numpy(), final.to_numpy()
    ahead = e[None, :] > e[:, None]  # [i, j]: j was ahead of i at the step
    n_ahead = ahead.sum(axis=1)
    overtook = (ahead & (f[None, :] < f[:, None])).sum(axis=1)
    behind = e < median
    passed = overtook >= OVERTAKE_SHARE * np.maximum(n_ahead, 1)
    chosen = behind & (n_ahead >= MIN_AHEAD) & (f >= final_median) & passed
    overtakers = list(both[chosen])
    if not overtakers or len(overtakers) < SLOW_MIN_SHARE * behind.sum():
        return []
    rows = facts.trials.set_index("run_id", drop=False)
    reason = rows["end_reason"] if "end_reason" in rows else pd.Series(None, index=rows.index, dtype=object)
    stopped = [
        r for r in at_step.index if r in rows.index and reason.get(r) == "early_stopped" and r not in finals.index
    ]
    slowest = min(early[r] for r in overtakers)
    cut = [r for r in stopped if at_step[r] * sign >= slowest]
    if not cut:
        return []
    resumed = rows["resumed_from"] if "resumed_from" in rows else pd.Series(None, index=rows.index)
    n_resumed = sum(1 for r in overtakers if not pd.isna(resumed.get(r)))
    best = max(overtakers, key=lambda r: final[r])
    how = (
        f"{n_resumed} of them resumed by Stop-and-Go"
        if n_resumed
        else "they ran on because too few trials had reached the step to compare with"
    )
    better = suggested_step(correlations(facts), step)
    top = int(facts.config["budget"]["max"])
    new = better or (2 * step if 2 * step < top else -1)
    resume_hint = (
        ""
        if (facts.config.get("early_stopping") or {}).get("resume")
        else ", or turn on Stop-and-Go (early_stopping.resume: true)"
    )
    fix = (
        f"Raise early_stopping.step from {step} to {new}{resume_hint}."
        if new > 0
        else f"Turn early stopping off (step -1){resume_hint}."
    )
    return [
        Finding(
            rule="slow_starters",
            search_id=facts.search_id,
            severity="warning",
            title=f"Early stopping at step {step} cut off slow starters",
            evidence=(
                f"{_trials(len(overtakers))} behind the median at step {step} and still ended among the better half "
                f"({how}; {run_number(rows.loc[best])} ended with {facts.metric} = {finals[best]:.4g}); "
                f"{len(cut)} trials stopped at step {step} had started no worse than the slowest of them."
            ),
            fix=fix,
            config_change={"early_stopping.step": new},
            run_ids=tuple(str(r) for r in [*overtakers, *cut]),
        )
    ]


def _trials(n: int) -> str:
    return "1 trial was" if n == 1 else f"{n} trials were"


SLOW_STARTERS = Rule(
    "slow_starters", "early stopping cut off trials that would have caught up", slow_starters, needs_lineage=True
)
LOW_RUNG_CORRELATION = Rule(
    "low_rung_correlation",
    "an early rung or stopping step does not predict the final objective",
    low_rung_correlation,
    needs_lineage=True,
)
