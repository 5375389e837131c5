"""Rules ``bad_values`` and ``duplicate_runs``: what any experiment's runs can show, Trellis' or another tool's.

``bad_values``: runs that ended without a finite objective (NaN, ±inf, or never logged it while others did):
their budget taught the search nothing. ``duplicate_runs``: runs that repeat another run's parameters exactly;
unless they are meant as repeats (other seeds), their budget bought no new point.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trellis.search.analysis.diagnosis.base import Finding, Rule, SearchFacts

BAD_MIN = 2  # one bad run is an accident
DUPLICATE_MIN, DUPLICATE_SHARE = 2, 0.05  # at least two repeats, and a twentieth of the runs
MAX_RUN_IDS = 50


def bad_values(facts: SearchFacts) -> list[Finding]:
    trials = facts.trials
    column = f"metrics.{facts.metric}"
    if trials.empty or column not in trials:
        return []
    ended = trials["status"] == "FINISHED" if "status" in trials else pd.Series(True, index=trials.index)
    values = trials[column].to_numpy(dtype=float)
    bad = ended.to_numpy() & ~np.isfinite(values)
    if bad.sum() < BAD_MIN:
        return []
    kinds = {"NaN": int(np.isnan(values[bad]).sum()), "±inf": int(np.isinf(values[bad]).sum())}
    said = ", ".join(f"{n} {k}" for k, n in kinds.items() if n)
    never = int(bad.sum()) - kinds["NaN"] - kinds["±inf"]
    said = ", ".join(p for p in (said, f"{never} never logged it" if never else "") if p)
    return [
        Finding(
            rule="bad_values",
            search_id=facts.search_id,
            severity="warning",
            title=f"{int(bad.sum())} of {len(trials)} finished runs have no finite {facts.metric}",
            evidence=f"{said}; they are left out of every analysis.",
            fix=f"Find why these runs end without a finite {facts.metric} (a diverging loss: lower the learning "
            "rate's top, clip gradients) or report it as a failure so the search can avoid the region.",
            run_ids=tuple(str(r) for r in trials.loc[bad, "run_id"].iloc[:MAX_RUN_IDS]),
        )
    ]


def duplicate_runs(facts: SearchFacts) -> list[Finding]:
    names = [n for n in facts.config.get("space", {}) if f"params.{n}" in facts.trials]
    if not names or len(facts.trials) < 2:
        return []
    params = facts.trials[[f"params.{n}" for n in names]].astype(str)
    repeats = params.duplicated(keep="first")
    n = int(repeats.sum())
    if n < DUPLICATE_MIN or n < DUPLICATE_SHARE * len(params):
        return []
    groups = int(params[params.duplicated(keep=False)].drop_duplicates().shape[0])
    return [
        Finding(
            rule="duplicate_runs",
            search_id=facts.search_id,
            severity="info",
            title=f"{n} of {len(params)} runs repeat another run's parameters",
            evidence=f"{groups} configurations were run more than once ({', '.join(names)} all equal).",
            fix="If they are not meant as repeats (other seeds), search continuous ranges or let a sampler "
            "that remembers (TPE) skip configurations it has seen.",
            run_ids=tuple(str(r) for r in facts.trials.loc[repeats, "run_id"].iloc[:MAX_RUN_IDS]),
        )
    ]


BAD_VALUES = Rule("bad_values", "finished runs without a finite objective", bad_values)
DUPLICATE_RUNS = Rule("duplicate_runs", "runs repeat another run's parameters", duplicate_runs)
