"""The validated search configuration: frozen dataclasses, built only by ``trellis.search.config.parse``."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from trellis.search.config.origin import Origin
from trellis.search.prior import Prior
from trellis.search.space import SearchSpace
from trellis.tracking.uris import DEFAULT_TRACKING_URI


class ConfigError(ValueError):
    """The configuration is refused; ``problems`` lists (key path, reason) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {path}: {reason}" for path, reason in problems)
        super().__init__(f"invalid search config ({len(problems)} problem(s)):\n{lines}")


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: str = "max"

    @property
    def sign(self) -> int:
        """+1 when larger is better; multiply a value by it to compare as 'larger is better'."""
        return 1 if self.direction == "max" else -1

    def better(self, a: float, b: float | None) -> bool:
        if b is None or (isinstance(b, float) and math.isnan(b)):
            return not math.isnan(a)
        return a * self.sign > b * self.sign


@dataclass(frozen=True)
class Budget:
    resource: str = "epochs"
    min: int = 1
    max: int = 1


@dataclass(frozen=True)
class Termination:
    max_trials: int | None = None
    max_time_s: float | None = None
    threshold: float | tuple[float, ...] | None = None  # several objectives: one value each, met by one trial


@dataclass(frozen=True)
class AlgorithmConfig:
    name: str = "random"
    seed: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EarlyStopping:
    rule: str = "median"
    step: int = 1  # check every `step` budget units; -1 disables (CHOPT)
    min_trials: int = 5
    eta: int = 3
    resume: bool = False  # Stop-and-Go: resume a stopped trial that turns out promising when a worker is free


@dataclass(frozen=True)
class ExecutorConfig:
    kind: str = "local"
    workers: int = 1
    address: str | None = None  # dask: scheduler address; None starts a LocalCluster
    gpus: tuple[str, ...] | str | None = None  # GPU ids trials share out, "auto" (found at start), None: no GPUs
    per_gpu: int = 1  # trials at once on one GPU
    cpus_per_trial: int | None = None  # local: CPUs each trial is pinned to (disjoint sets)

    def to_dict(self) -> dict[str, Any]:
        """The section as written; resource keys only when set (older stored configs stay as they were)."""
        out: dict[str, Any] = {"kind": self.kind, "workers": self.workers, "address": self.address}
        if self.gpus is not None:
            out["gpus"] = self.gpus if isinstance(self.gpus, str) else list(self.gpus)
        if self.gpus is not None or self.per_gpu != 1:
            out["per_gpu"] = self.per_gpu
        if self.cpus_per_trial is not None:
            out["cpus_per_trial"] = self.cpus_per_trial
        return out


@dataclass(frozen=True)
class TrialSpec:
    """What a trial runs: a ``module:function``, a registered entry point, or a script."""

    function: str | None = None
    entry_point: str | None = None
    script: str | None = None
    python: str | None = None
    args: tuple[str, ...] = ()
    timeout_s: float | None = None
    workdir: str | None = None
    # The config file's folder, where a trial module may sit (``trellis.search.config.trial_module``); set from the
    # config's source, not written back by ``to_dict``.
    config_dir: str | None = field(default=None, compare=False)

    @property
    def mode(self) -> str:
        return "script" if self.script else "function"


@dataclass(frozen=True)
class TrackingConfig:
    uri: str = DEFAULT_TRACKING_URI
    experiment: str = "trellis"
    artifact_location: str | None = None
    app_url: str | None = None  # the Trellis app's public URL: each run's MLflow description links to it


@dataclass(frozen=True)
class SearchConfig:
    name: str
    objective: Objective
    space: SearchSpace
    algorithm: AlgorithmConfig
    budget: Budget
    termination: Termination
    executor: ExecutorConfig
    trial: TrialSpec
    tracking: TrackingConfig
    record: tuple[str, ...] = ()
    relaunched_from: str | None = None
    source: str | None = None
    early_stopping: EarlyStopping | None = None
    warm_start: bool = False  # a relaunch: the sampler first learns from the parent's trials inside the space
    origin: Origin | None = None  # an ablation's or variation's children: their model and changes
    objectives: tuple[Objective, ...] = ()  # every objective, the first is ``objective``; one unless a list was given
    prior: Prior | None = None  # a relaunch's prior from its parent's analysis (``trellis.search.prior``)

    def __post_init__(self) -> None:
        if not self.objectives:
            object.__setattr__(self, "objectives", (self.objective,))

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    def to_dict(self) -> dict[str, Any]:
        """The normalised config, loadable again by ``parse_config`` (stored with every search)."""
        trial = {k: v for k, v in asdict(self.trial).items() if v not in (None, ()) and k != "config_dir"}
        if "args" in trial:
            trial["args"] = list(trial["args"])
        out: dict[str, Any] = {
            "name": self.name,
            "objective": asdict(self.objective) if len(self.objectives) < 2 else [asdict(o) for o in self.objectives],
            "record": list(self.record),
            "space": self.space.to_dict(),
            "algorithm": {
                "name": self.algorithm.name,
                "seed": self.algorithm.seed,
                **self.algorithm.settings,
            },
            "budget": asdict(self.budget),
            "termination": {
                k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.termination).items() if v is not None
            },  # fmt: skip
            "executor": self.executor.to_dict(),
            "trial": trial,
            "tracking": {k: v for k, v in asdict(self.tracking).items() if v is not None},
        }
        if self.relaunched_from:
            out["relaunched_from"] = self.relaunched_from
        if self.early_stopping:
            out["early_stopping"] = asdict(self.early_stopping)
        if self.warm_start:
            out["warm_start"] = True
        if self.origin:
            out["origin"] = self.origin.to_dict()
        if self.prior is not None:
            out["prior"] = self.prior.to_plain()
        if self.source:
            out["source"] = self.source
        return out

    def replace(self, **changes: Any) -> SearchConfig:
        return replace(self, **changes)
