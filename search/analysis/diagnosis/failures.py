"""Rule ``failed_trials``: many trials failed → the commonest error line, and the runs to read.

Each failed trial carries its one-line reason in ``trellis.error`` and its stderr tail as the artifact
``trellis/stderr_tail.txt``; the finding names the runs so a page can link them. When the failures sit on one
side of a numeric parameter (every failed trial above the highest that worked, say) or on one choice of a
categorical one, the fix is to leave that part out of the space.
"""

from __future__ import annotations

import pandas as pd

from trellis.search.analysis.diagnosis.base import Finding, Rule, SearchFacts
from trellis.search.analysis.plain import shown

FAILED_SHARE = 0.2  # a fifth of the trials failing is a fifth of the budget spent on nothing
FAILED_MIN = 2  # one failure is an accident
MAX_RUN_IDS = 50  # runs named in the finding (a page lists them; the count says how many in all)


def failed_trials(facts: SearchFacts) -> list[Finding]:
    trials = facts.trials
    if trials.empty:
        return []
    reason = trials["end_reason"] if "end_reason" in trials else pd.Series(None, index=trials.index, dtype=object)
    failed_mask = (trials["status"] == "FAILED") | (reason == "failed")
    failed = trials[failed_mask]
    share = len(failed) / len(trials)
    if len(failed) < FAILED_MIN or share < FAILED_SHARE:
        return []
    errors = failed["error"].dropna() if "error" in failed else pd.Series(dtype=object)
    if len(errors):
        counts = errors.astype(str).value_counts()
        line, n_line = str(counts.index[0]), int(counts.iloc[0])
        commonest = f"the commonest error ({n_line} of them): {line}"
    else:
        commonest = "no error line was recorded"
    change, region = _region(facts, trials[~failed_mask], failed)
    fix = "Read their stderr tails (trellis/stderr_tail.txt) and fix the trial"
    fix += f", or leave out {region}." if region else "."
    ordered = failed.sort_values("trial") if "trial" in failed else failed
    return [
        Finding(
            rule="failed_trials",
            search_id=facts.search_id,
            severity="danger",
            title=f"{len(failed)} of {len(trials)} trials failed",
            evidence=f"{share:.0%} of the trials failed; {commonest}.",
            fix=fix,
            config_change=change,
            run_ids=tuple(str(r) for r in ordered["run_id"].iloc[:MAX_RUN_IDS]),
        )
    ]


def _region(facts: SearchFacts, ok: pd.DataFrame, failed: pd.DataFrame) -> tuple[dict, str]:
    """A config change that leaves out where every failure lies and no success does, with its words."""
    if ok.empty:
        return {}, ""
    space = facts.config.get("space", {})
    for name, spec in facts.numeric_space().items():
        col = f"params.{name}"
        if col not in failed:
            continue
        bad, good = failed[col].dropna().to_numpy(dtype=float), ok[col].dropna().to_numpy(dtype=float)
        if len(bad) < len(failed) or not len(good):
            continue
        value = _bound(good.max(), spec)
        if bad.min() > good.max() and value > float(spec["low"]):
            return {
                f"space.{name}.high": value
            }, f"{name} above {shown(value)} (every failure had {name} > {shown(good.max())})"
        value = _bound(good.min(), spec)
        if bad.max() < good.min() and value < float(spec["high"]):
            return {
                f"space.{name}.low": value
            }, f"{name} below {shown(value)} (every failure had {name} < {shown(good.min())})"
    for name, spec in space.items():
        col = f"params.{name}"
        if not isinstance(spec, dict) or spec.get("type") != "categorical" or col not in failed:
            continue
        bad, good = set(failed[col].astype(str)), set(ok[col].dropna().astype(str))
        if len(bad) == 1 and not bad & good and failed[col].notna().all():
            kept = [c for c in spec["choices"] if str(c) not in bad]
            if len(kept) >= 1:
                return {f"space.{name}.choices": kept}, f"{name} = {next(iter(bad))} (every trial with it failed)"
    return {}, ""


def _bound(value: float, spec: dict) -> float | int:
    return int(round(value)) if spec.get("type") == "int" else float(f"{value:.6g}")


FAILED_TRIALS = Rule("failed_trials", "many trials failed", failed_trials)
