"""Rule ``tpe_no_better``: TPE's model-proposed trials are no better than its random start-up trials.

The first ``n_startup_trials`` (by sampling order) are drawn at random; the rest come from the model. A
one-sided Mann-Whitney test asks whether the model's trials end better than the start-up ones. When it
cannot say so, the model learned nothing usable yet: the space is too wide or rough for the trials given.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import mannwhitneyu

from trellis.search.analysis.diagnosis.base import Finding, Rule, SearchFacts

MIN_STARTUP = 3  # fewer random trials and their median is one trial's luck
MIN_MODEL_TRIALS = 8  # the model needs a few proposals to show what it learned
NO_BETTER_P = 0.1  # one-sided p-value: above it, "better than random" is not shown


def tpe_no_better(facts: SearchFacts) -> list[Finding]:
    if facts.algorithm != "tpe":
        return []
    n_startup = int(facts.setting("n_startup_trials", 10))
    finals = facts.finals()
    order = facts.trials.loc[finals.index, "trial"].to_numpy(dtype=float)
    scores = finals.to_numpy(dtype=float) * facts.sign  # larger is better
    startup, model = scores[order < n_startup], scores[order >= n_startup]
    if len(startup) < MIN_STARTUP or len(model) < MIN_MODEL_TRIALS:
        return []
    p = float(mannwhitneyu(model, startup, alternative="greater").pvalue)
    if p < NO_BETTER_P:
        return []
    raw = lambda a: float(np.median(a)) * facts.sign  # noqa: E731 - back to the metric's own sign
    max_trials = (facts.config.get("termination") or {}).get("max_trials")
    change = {"termination.max_trials": 2 * int(max_trials)} if max_trials else {}
    more = (
        f"twice the trials (termination.max_trials {max_trials} → {2 * int(max_trials)})"
        if max_trials
        else "more trials"
    )
    best_model, best_startup = float(model.max()) * facts.sign, float(startup.max()) * facts.sign
    return [
        Finding(
            rule="tpe_no_better",
            search_id=facts.search_id,
            severity="warning",
            title="TPE did no better than its random start-up trials",
            evidence=(
                f"median {facts.metric} {raw(model):.4g} over {len(model)} model-proposed trials against "
                f"{raw(startup):.4g} over the {len(startup)} random start-up trials (best {best_model:.4g} vs "
                f"{best_startup:.4g}); one-sided Mann-Whitney p = {p:.2f}."
            ),
            fix=f"Give it {more}, or narrow the space (Control: Fill from suggested bounds).",
            config_change=change,
        )
    ]


TPE_NO_BETTER = Rule(
    "tpe_no_better", "TPE did no better than its random start-up trials", tpe_no_better, needs_lineage=True
)
