"""The registries of the engine's seams: search algorithms and executors, one row each.

A row names its implementation as ``"module:Class"`` and nothing here imports it: ``resolve`` does, on
first use, so validating a config never pays for hpbandster or distributed, and no base module imports
an implementation. Config validation, the runner, resume and the CLI all read these rows.

Adding an algorithm is one module (a ``Sampler`` and/or a ``Scheduler``) plus one ``register_algorithm``
call; adding an executor is one module plus one ``register_executor`` call.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# What an algorithm is, for analysis and diagnosis (which read this, never algorithm names):
SEQUENTIAL = "sequential"  # each trial runs its budget (early stopping may cut it): random, grid, TPE
BRACKETED = "bracketed"  # successive-halving brackets of rungs: Hyperband, BOHB
POPULATION = "population"  # generations of a population that exploit and explore: PBT
SHAPES = (SEQUENTIAL, BRACKETED, POPULATION)

FIFO = "trellis.search.schedulers.fifo:FIFOScheduler"
EARLY_STOPPING = "trellis.search.schedulers.early_stopping:EarlyStoppingScheduler"


@dataclass(frozen=True)
class AlgorithmSpec:
    """One search algorithm.

    ``settings``: the keys ``algorithm:`` accepts beyond name/seed, with their defaults (their types are
    the defaults' types). ``ranges``: ``key -> (low, high or None)`` checked on those settings.
    ``check``: an optional ``"module:function"`` called as ``f(settings, space=, budget=, termination=)``
    that returns ``[(key.path, reason), ...]`` for checks across sections. ``budgeted``: the scheduler
    decides each trial's budget (no early stopping; resume replays the record). ``self_ending``: the
    algorithm ends the search by itself, so no termination limit is required. ``learns_from_past``: its
    sampler's ``observe`` informs later proposals, so a relaunch may warm-start it from the parent's trials.
    ``extra``: the optional install it needs (``trellis.extras``), said at validation when missing.
    ``shape``: sequential, bracketed or population (``SHAPES``): how analysis draws and diagnoses its searches.
    ``objectives``: ``one`` (it ranks trials by one value: Hyperband, BOHB, PBT) or ``several`` (its sampler
    takes every objective: ``Sampler.observe_values``). ``uses_prior``: its sampler draws from (or weighs by) a
    relaunch's ``prior:`` (``trellis.search.prior``).
    """

    name: str
    sampler: str
    scheduler: str = FIFO
    settings: Mapping[str, Any] = field(default_factory=dict)
    ranges: Mapping[str, tuple[float, float | None]] = field(default_factory=dict)
    check: str | None = None
    budgeted: bool = False
    self_ending: bool = False
    learns_from_past: bool = False
    extra: str | None = None
    shape: str = SEQUENTIAL
    objectives: str = "one"
    uses_prior: bool = False


@dataclass(frozen=True)
class ExecutorSpec:
    """One place trials run. ``takes_address``: the executor connects to a scheduler at ``executor.address``.
    ``extra``: the optional install it needs (``trellis.extras``), said at validation when missing.
    ``provides``: what config and checks may count on: ``gpus`` (``executor.gpus``), ``cpus`` (CPUs pinned per
    trial: ``executor.cpus_per_trial``), ``remote`` (trials run on other machines: this one's cores do not bound
    the workers)."""

    name: str
    executor: str
    takes_address: bool = False
    extra: str | None = None
    provides: frozenset[str] = frozenset({"gpus", "cpus"})


_ALGORITHMS: dict[str, AlgorithmSpec] = {}
_EXECUTORS: dict[str, ExecutorSpec] = {}
ALGORITHMS: Mapping[str, AlgorithmSpec] = MappingProxyType(_ALGORITHMS)
EXECUTORS: Mapping[str, ExecutorSpec] = MappingProxyType(_EXECUTORS)


def register_algorithm(spec: AlgorithmSpec) -> AlgorithmSpec:
    if spec.shape not in SHAPES:
        raise ValueError(f"algorithm {spec.name!r}: shape must be one of {', '.join(SHAPES)}, got {spec.shape!r}")
    for key in spec.ranges:
        if key not in spec.settings:
            raise ValueError(f"algorithm {spec.name!r}: range for unknown setting {key!r}")
    _ALGORITHMS[spec.name] = spec
    return spec


def register_executor(spec: ExecutorSpec) -> ExecutorSpec:
    _EXECUTORS[spec.name] = spec
    return spec


def shape_of(name: str | None) -> str | None:
    """The shape of a registered algorithm; None for a name this install does not know (another tool's runs)."""
    spec = _ALGORITHMS.get(name) if isinstance(name, str) else None
    return spec.shape if spec else None


def unregister_algorithm(name: str) -> None:
    """Remove a row (tests that register a toy algorithm clean up with this)."""
    _ALGORITHMS.pop(name, None)


def resolve(ref: str) -> Callable[..., Any]:
    """Import what ``"package.module:Name"`` names."""
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def _eta(low: int = 2) -> dict[str, tuple[float, None]]:
    return {"eta": (low, None)}


register_algorithm(
    AlgorithmSpec(
        "random", sampler="trellis.search.samplers.random:RandomSampler", objectives="several", uses_prior=True
    )
)
register_algorithm(
    AlgorithmSpec(
        "grid",
        sampler="trellis.search.samplers.grid:GridSampler",
        settings={"points": 5, "shuffle": False},
        ranges={"points": (1, None)},
        check="trellis.search.samplers.grid:check_settings",
        self_ending=True,
        objectives="several",
    )
)
register_algorithm(
    AlgorithmSpec(
        "tpe",
        sampler="trellis.search.samplers.tpe:TPESampler",
        settings={"n_startup_trials": 10, "multivariate": True},
        ranges={"n_startup_trials": (0, None)},
        learns_from_past=True,
        objectives="several",  # Optuna's multi-objective TPE
        uses_prior=True,
    )
)
register_algorithm(
    AlgorithmSpec(
        "nsga2",
        sampler="trellis.search.samplers.nsga2:NSGA2Sampler",
        settings={"population_size": 20},
        ranges={"population_size": (2, None)},
        learns_from_past=True,
        objectives="several",  # Optuna's NSGA-II: a genetic algorithm on non-dominated rank and crowding
    )
)
register_algorithm(
    AlgorithmSpec(
        "hyperband",
        sampler="trellis.search.samplers.random:RandomSampler",
        scheduler="trellis.search.schedulers.hyperband:HyperbandScheduler",
        settings={"eta": 3},
        ranges=_eta(),
        budgeted=True,
        self_ending=True,
        shape=BRACKETED,
        uses_prior=True,
    )
)
register_algorithm(
    AlgorithmSpec(
        "bohb",
        sampler="trellis.search.samplers.bohb:BOHBSampler",
        extra="bohb",
        scheduler="trellis.search.schedulers.hyperband:HyperbandScheduler",
        # hpbandster's model settings (min_points_in_model 0: its default, parameters + 1).
        settings={
            "eta": 3,
            "top_n_percent": 15,
            "num_samples": 64,
            "random_fraction": 0.33,
            "bandwidth_factor": 3.0,
            "min_bandwidth": 0.001,
            "min_points_in_model": 0,
        },
        ranges={
            **_eta(),
            "top_n_percent": (1, 99),
            "num_samples": (1, None),
            "random_fraction": (0.0, 1.0),
            "min_points_in_model": (0, None),
        },
        budgeted=True,
        learns_from_past=True,
        self_ending=True,
        shape=BRACKETED,
        uses_prior=True,
    )
)
register_algorithm(
    AlgorithmSpec(
        "pbt",
        sampler="trellis.search.samplers.random:RandomSampler",
        scheduler="trellis.search.schedulers.pbt:PBTScheduler",
        settings={
            "population_size": 8,
            "interval": 1,
            "max_generations": 0,
            "quantile": 0.25,
            "perturb": 0.1,
            "resample_probability": 0.25,
        },
        ranges={
            "population_size": (2, None),
            "interval": (1, None),
            "max_generations": (0, None),
            "quantile": (0.01, 0.5),
            "perturb": (0.0, 1.0),
            "resample_probability": (0.0, 1.0),
        },
        check="trellis.search.schedulers.pbt:check_settings",
        budgeted=True,
        self_ending=True,
        shape=POPULATION,
    )
)

register_executor(ExecutorSpec("local", "trellis.search.executors.local:LocalExecutor"))
# Imported on demand: distributed is heavy and only cluster users need it.
register_executor(
    ExecutorSpec(
        "dask",
        "trellis.search.executors.dask_cluster:DaskExecutor",
        takes_address=True,
        extra="dask",
        provides=frozenset({"gpus", "remote"}),
    )
)


def _load_plugins() -> None:
    """Installed packages register their own rows: an entry point in the ``trellis.plugins`` group names
    a module whose import calls ``register_algorithm`` / ``register_executor``."""
    import logging
    from importlib.metadata import entry_points

    for ep in entry_points(group="trellis.plugins"):
        try:
            ep.load()
        except Exception as exc:  # a broken plugin must not take the built-in algorithms down
            logging.getLogger(__name__).warning("trellis plugin %s could not be loaded: %s", ep.name, exc)


_load_plugins()
