"""Rule ``pbt_collapse``: most of a PBT population descends from one initial member → lower the quantile or
resample more.

Lineage comes from the tags PBT writes (docs/mlflow-schema.md): ``trellis.pbt.parent_trial`` (whose
checkpoint and configuration a member copied) and ``trellis.pbt.generation`` (when it was born). A member is
alive at the end of generation g when it was born by then and trained through that generation's budget.
Following parents back to generation 0 gives each member's founder.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from trellis.search import space
from trellis.search.analysis.diagnosis.base import Finding, Rule, SearchFacts
from trellis.search.registry import POPULATION, shape_of

COLLAPSE_SHARE = 0.75  # three quarters of the population from one founder: the rest of the search is its variations
MIN_POPULATION = 4  # with fewer members one founder winning is no collapse, just a small population
QUANTILE_FLOOR = 0.1  # the quantile suggested is at least this (and at least one member per generation)
RESAMPLE_STEP = 0.25  # the resample probability suggested: this much more, at most 1


def generations_of(facts: SearchFacts) -> tuple[int, int]:
    """(generations, interval) of the PBT config."""
    budget_max = int(facts.config.get("budget", {}).get("max", 1))
    interval = max(1, int(facts.setting("interval", 1)))
    max_generations = int(facts.setting("max_generations", 0))
    total = budget_max if max_generations <= 0 else min(budget_max, interval * max_generations)
    return max(1, math.ceil(total / interval)), interval


def founders(trials: pd.DataFrame) -> dict[int, int]:
    """Trial number -> the generation-0 member it descends from (itself for the initial population)."""
    parent = {
        int(t): (None if pd.isna(p) else int(p))
        for t, p in zip(trials["trial"], trials["pbt_parent"], strict=True)
        if not pd.isna(t)
    }
    out: dict[int, int] = {}
    for trial in parent:
        seen, node = set(), trial
        while parent.get(node) is not None and node not in seen:  # a cycle would be a broken record: stop
            seen.add(node)
            node = parent[node]
        out[trial] = node
    return out


def alive_at(trials: pd.DataFrame, generation: int, interval: int, total: int) -> pd.DataFrame:
    stop = min(total, (generation + 1) * interval)
    born = pd.to_numeric(trials["pbt_generation"], errors="coerce").fillna(0).to_numpy(dtype=float)
    reached = pd.to_numeric(trials["budget_reached"], errors="coerce").fillna(0).to_numpy(dtype=float)
    return trials[(born <= generation) & (reached >= stop)]


def _spread(facts: SearchFacts, members: pd.DataFrame) -> float | None:
    """Mean over numeric parameters of the members' std on the parameter's own [0, 1] scale."""
    stds = []
    for name, spec in facts.numeric_space().items():
        col = f"params.{name}"
        if col in members and len(members) >= 2:
            unit = space.to_unit(
                members[col].to_numpy(dtype=float), float(spec["low"]), float(spec["high"]), bool(spec.get("log"))
            )
            unit = unit[np.isfinite(unit)]
            if len(unit) >= 2:
                stds.append(float(np.std(unit)))
    return float(np.mean(stds)) if stds else None


def pbt_collapse(facts: SearchFacts) -> list[Finding]:
    trials = facts.trials
    if (
        shape_of(facts.algorithm) != POPULATION
        or trials.empty
        or not {"pbt_parent", "pbt_generation", "trial"} <= set(trials)
    ):
        return []
    generations, interval = generations_of(facts)
    total = min(int(facts.config.get("budget", {}).get("max", 1)), generations * interval)
    origin = founders(trials)
    first_collapse, share, founder, members = None, 0.0, None, trials.iloc[:0]
    for g in range(generations):
        alive = alive_at(trials, g, interval, total)
        if len(alive) < MIN_POPULATION:
            continue
        counts = pd.Series([origin.get(int(t)) for t in alive["trial"]]).value_counts()
        founder, share, members = int(counts.index[0]), float(counts.iloc[0]) / len(alive), alive
        if share >= COLLAPSE_SHARE and first_collapse is None:
            first_collapse = g
        elif share < COLLAPSE_SHARE:
            first_collapse = None  # it recovered: count from when it stayed collapsed
    if first_collapse is None or founder is None or share < COLLAPSE_SHARE:
        return []
    initial = alive_at(trials, 0, interval, total)
    before, after = _spread(facts, initial), _spread(facts, members)
    spread = (
        f"; the parameters' spread (std on each one's scale, the range being 1) fell from {before:.2f} to {after:.2f}"
        if before is not None and after is not None
        else ""
    )
    n_from = int(round(share * len(members)))
    quantile = float(facts.setting("quantile", 0.25))
    resample = float(facts.setting("resample_probability", 0.25))
    population = int(facts.setting("population_size", len(initial) or 8))
    new_quantile = max(QUANTILE_FLOOR, 1.0 / population, round(quantile / 2, 2))
    new_resample = min(1.0, round(resample + RESAMPLE_STEP, 2))
    change: dict[str, float] = {}
    if new_quantile < quantile:
        change["algorithm.quantile"] = new_quantile
    if new_resample > resample:
        change["algorithm.resample_probability"] = new_resample
    parts = []
    if "algorithm.quantile" in change:
        parts.append(f"algorithm.quantile {quantile:g} → {new_quantile:g}")
    if "algorithm.resample_probability" in change:
        parts.append(f"algorithm.resample_probability {resample:g} → {new_resample:g}")
    what = " and ".join(parts) or "a larger population (algorithm.population_size)"
    founder_run = trials.loc[trials["trial"] == founder, "run_id"]
    return [
        Finding(
            rule="pbt_collapse",
            search_id=facts.search_id,
            severity="warning",
            title="The PBT population collapsed onto one member's descendants",
            evidence=(
                f"{n_from} of the {len(members)} members at the end descend from trial {founder} of the initial "
                f"population, {share:.0%} since generation {first_collapse} of {generations} (quantile {quantile:g}, "
                f"resample probability {resample:g}){spread}."
            ),
            fix=f"Copy less and explore more: {what}.",
            config_change=change,
            run_ids=tuple(str(r) for r in founder_run),
        )
    ]


PBT_COLLAPSE = Rule("pbt_collapse", "a PBT population descends from one member", pbt_collapse, needs_lineage=True)
