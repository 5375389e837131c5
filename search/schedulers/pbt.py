"""Population Based Training (Jaderberg et al. 2017) on the Scheduler seam, synchronous variant.

A population of ``population_size`` members trains in generations of ``interval`` budget units. When
every member has finished a generation they are ranked on the objective: each member in the bottom
``quantile`` is replaced (exploit) by a copy of a random top-``quantile`` member: its checkpoint and its
configuration, which is then perturbed (explore). The copy is a new trial, so a new MLflow run, that
names its parent trial and generation; the replaced member's run ends as ``exploited``. The others
continue their own run from their checkpoint. Training stops after ``max_generations`` generations
(0: until the maximum budget).

Explore moves each parameter by ``perturb`` of its range *on its own scale*: log parameters in log
space, so a learning rate is as likely to be halved as doubled; a linear perturbation there would
drift towards small values. With probability ``resample_probability`` a parameter is instead drawn
afresh from its prior (categorical parameters are only ever resampled).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from trellis.search.architectures.param import ArchitectureParam
from trellis.search.config import Budget, Objective, SearchConfig
from trellis.search.schedulers.base import JobRequest, Scheduler
from trellis.search.space import Categorical, Fixed, Float, Int, SearchSpace, Value
from trellis.tracking import schema
from trellis.tracking.schema import EndReason


def explore(
    space: SearchSpace,
    params: dict[str, Value],
    rng: np.random.Generator,
    perturb: float = 0.1,
    resample_probability: float = 0.25,
) -> dict[str, Value]:
    """A perturbed copy of ``params``, every value still inside the space (pure, seeded by ``rng``)."""
    out: dict[str, Value] = {}
    for p in space:
        if not p.is_active(out):
            continue
        if isinstance(p, Fixed):
            out[p.name] = p.value
        elif isinstance(p, ArchitectureParam) and p.name in params:  # a checkpoint loads into its own model only
            out[p.name] = params[p.name]
        elif p.name not in params or rng.random() < resample_probability:  # newly active, or redrawn
            out[p.name] = p.sample(rng)
        elif isinstance(p, Categorical):
            out[p.name] = params[p.name]
        else:
            out[p.name] = _perturbed(p, params[p.name], rng, perturb)
    space.validate(out)
    return out


def _perturbed(p: Float | Int, value: Any, rng: np.random.Generator, perturb: float) -> Value:
    as_float = Float(p.name, low=float(p.low), high=float(p.high), log=p.log)
    if as_float.high == as_float.low:
        return value
    unit = as_float.to_unit(float(value)) + (perturb if rng.random() < 0.5 else -perturb)
    moved = as_float.to_unit_inverse(unit)  # clipped to the range
    if isinstance(p, Int):
        return int(min(max(round(moved), p.low), p.high))
    return moved


@dataclass
class _Member:
    trial: int | None = None  # the trial now holding this slot
    params: dict[str, Value] | None = None
    value: float | None = None
    done: bool = False


class PBTScheduler(Scheduler):
    needs_decisions = False

    @classmethod
    def from_config(cls, config: SearchConfig) -> PBTScheduler:
        a = config.algorithm
        return cls(config.budget, config.objective, **a.settings, seed=a.seed, space=config.space)

    def __init__(
        self,
        budget: Budget,
        objective: Objective,
        population_size: int = 8,
        interval: int = 1,
        max_generations: int = 0,
        quantile: float = 0.25,
        perturb: float = 0.1,
        resample_probability: float = 0.25,
        seed: int | None = None,
        space: SearchSpace | None = None,
    ) -> None:
        super().__init__(budget, objective)
        if space is None:
            raise ValueError("PBT needs the search space to explore")
        self.space = space
        self.population_size, self.interval = population_size, interval
        total = budget.max if max_generations <= 0 else min(budget.max, interval * max_generations)
        self.generations = max(1, math.ceil(total / interval))
        self.total = total
        self.quantile, self.perturb, self.resample_probability = quantile, perturb, resample_probability
        self._rng = np.random.default_rng(seed)
        self._members = [_Member() for _ in range(population_size)]
        self._generation = 0
        self._queue: list[tuple[int, JobRequest]] = [  # (slot, request) still to start this generation
            (i, JobRequest(budget_stop=self._stop(0), tags=self._tags(0))) for i in range(population_size)
        ]
        self._pending_slot: int | None = None
        self._slot_of: dict[int, int] = {}  # trial -> slot
        self._updates: list[tuple[int, dict[str, str]]] = []
        self._finished = False

    def _stop(self, generation: int) -> int:
        return min(self.total, (generation + 1) * self.interval)

    @staticmethod
    def _tags(generation: int, parent: int | None = None) -> dict[str, str]:
        tags = {schema.PBT_GENERATION: str(generation)}
        if parent is not None:
            tags[schema.PBT_PARENT] = str(parent)
        return tags

    def size(self) -> int:
        """The population plus one new member per exploit (failed members are replaced too, so at least)."""
        n_cut = max(1, int(self.population_size * self.quantile))
        return self.population_size + n_cut * (self.generations - 1)

    @property
    def finished(self) -> bool:
        return self._finished

    def next_job(self) -> JobRequest | None:
        if self._finished or not self._queue:
            return None
        slot, request = self._queue.pop(0)
        self._pending_slot = slot
        return request

    def on_job_started(self, trial: int, params: dict[str, Any] | None = None) -> None:
        slot = self._slot_of.get(trial)
        if slot is None:  # a new member: the slot next_job handed out
            slot, self._pending_slot = self._pending_slot, None
        assert slot is not None, "a job started that PBT did not ask for"
        member = self._members[slot]
        member.trial = trial
        if params is not None:
            member.params = dict(params)
        member.done, member.value = False, None
        self._slot_of[trial] = slot

    def on_trial_end(self, trial: int, step: int, value: float | None, state: str) -> None:
        slot = self._slot_of.get(trial)
        if slot is None or self._finished:
            return
        member = self._members[slot]
        member.done = True
        member.value = value if state == EndReason.COMPLETED and value is not None and math.isfinite(value) else None
        if not self._queue and all(m.done for m in self._members):
            self._next_generation()

    def _next_generation(self) -> None:
        generation = self._generation + 1
        if generation >= self.generations:
            self._finished = True
            return
        ranked = sorted(
            range(self.population_size),
            key=lambda i: -math.inf if self._members[i].value is None else self._members[i].value * self.objective.sign,
        )  # worst first
        alive = [i for i in ranked if self._members[i].value is not None]
        if not alive:
            self._finished = True
            return
        n_cut = max(1, int(self.population_size * self.quantile)) if self.population_size > 1 else 0
        failed = [i for i in ranked if self._members[i].value is None]
        bottom = sorted(set(failed) | set(ranked[:n_cut]), key=ranked.index)
        top = [i for i in reversed(alive) if i not in bottom][: max(1, n_cut)]
        start, stop = self._stop(generation - 1), self._stop(generation)
        self._generation = generation
        self._queue = []
        for slot in range(self.population_size):
            member = self._members[slot]
            if slot in bottom and top:
                source = self._members[top[int(self._rng.integers(len(top)))]]
                assert source.trial is not None and source.params is not None
                params = explore(self.space, source.params, self._rng, self.perturb, self.resample_probability)
                tags = self._tags(generation, parent=source.trial)
                if member.trial is not None:
                    tags[schema.PBT_REPLACED] = str(member.trial)
                    self._updates.append((member.trial, {schema.END_REASON: EndReason.EXPLOITED.value}))
                    self._slot_of.pop(member.trial, None)
                request = JobRequest(
                    budget_stop=stop, budget_start=start, params=params, copy_checkpoint_from=source.trial, tags=tags
                )
                member.trial = None
            else:  # a run keeps the generation it was born in; continuing is not a new member
                request = JobRequest(budget_stop=stop, budget_start=start, trial=member.trial)
            self._queue.append((slot, request))
        # Exploits first: each copies its source's checkpoint as it starts, before the source trains on.
        self._queue.sort(key=lambda item: item[1].params is None)

    def drain_updates(self) -> list[tuple[int, dict[str, str]]]:
        updates, self._updates = self._updates, []
        return updates


def check_settings(settings: dict[str, Any], *, budget: Budget, termination: Any, **_: Any) -> list[tuple[str, str]]:
    """PBT's checks across config sections (its registry row names this function)."""
    problems = []
    pop = settings["population_size"]
    if termination.max_trials is not None and termination.max_trials < pop:
        problems.append(("termination.max_trials", f"must be >= algorithm.population_size ({pop}) for PBT"))
    if settings["interval"] > budget.max:
        problems.append(("algorithm.interval", f"must be <= budget.max ({budget.max}), got {settings['interval']}"))
    return problems
