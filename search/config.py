"""Search configuration: one YAML or JSON file that describes a whole search, validated up front.

Every problem is reported with the key path where it sits (``space.lr.low``) and the reason, and
nothing runs until the file is clean. See ``docs/config.md`` for the reference.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from search.space import Categorical, Fixed, Float, Int, Param, SearchSpace, SpaceError, product_size

DEFAULT_TRACKING_URI = "sqlite:///mlruns.db"
EXECUTORS = ("local", "dask")
# Settings each algorithm accepts beyond name/seed, with their defaults.
ALGORITHM_SETTINGS: dict[str, dict[str, Any]] = {
    "random": {},
    "grid": {"points": 5, "shuffle": False},
    "tpe": {"n_startup_trials": 10, "multivariate": True},
    "hyperband": {"eta": 3},
    # BOHB's model settings are hpbandster's (min_points_in_model 0: its default, parameters + 1).
    "bohb": {
        "eta": 3,
        "top_n_percent": 15,
        "num_samples": 64,
        "random_fraction": 0.33,
        "bandwidth_factor": 3.0,
        "min_bandwidth": 0.001,
        "min_points_in_model": 0,
    },
    "pbt": {
        "population_size": 8,
        "interval": 1,
        "max_generations": 0,
        "quantile": 0.25,
        "perturb": 0.1,
        "resample_probability": 0.25,
    },
}
# Algorithms that end on their own (no termination limit needed).
SELF_ENDING = ("grid", "hyperband", "bohb", "pbt")
# Algorithms that decide budgets themselves: early stopping does not apply.
BUDGETED = ("hyperband", "bohb", "pbt")
MAX_GRID = 1_000_000
PARAM_NAME = re.compile(r"[\w\-./ ]{1,250}")


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
    threshold: float | None = None


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

    @property
    def mode(self) -> str:
        return "script" if self.script else "function"


@dataclass(frozen=True)
class TrackingConfig:
    uri: str = DEFAULT_TRACKING_URI
    experiment: str = "trellis"
    artifact_location: str | None = None


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

    def to_dict(self) -> dict[str, Any]:
        """The normalised config, loadable again by ``parse_config`` (stored with every search)."""
        trial = {k: v for k, v in asdict(self.trial).items() if v not in (None, ())}
        if "args" in trial:
            trial["args"] = list(trial["args"])
        out: dict[str, Any] = {
            "name": self.name,
            "objective": asdict(self.objective),
            "record": list(self.record),
            "space": self.space.to_dict(),
            "algorithm": {
                "name": self.algorithm.name,
                "seed": self.algorithm.seed,
                **self.algorithm.settings,
            },
            "budget": asdict(self.budget),
            "termination": {k: v for k, v in asdict(self.termination).items() if v is not None},
            "executor": asdict(self.executor),
            "trial": trial,
            "tracking": {k: v for k, v in asdict(self.tracking).items() if v is not None},
        }
        if self.relaunched_from:
            out["relaunched_from"] = self.relaunched_from
        if self.early_stopping:
            out["early_stopping"] = asdict(self.early_stopping)
        return out

    def replace(self, **changes: Any) -> SearchConfig:
        from dataclasses import replace

        return replace(self, **changes)


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> SearchConfig:
    """Read a YAML/JSON file and validate it. ``overrides`` are dotted keys (``tracking.uri``)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError([("<file>", f"cannot read {path}: {exc.strerror or exc}")]) from exc
    try:
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError([("<file>", f"not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}")]) from exc
    if not isinstance(raw, dict):
        raise ConfigError([("<root>", "must be a mapping of keys to values")])
    raw.setdefault("name", path.stem)
    for dotted, value in (overrides or {}).items():
        _set_dotted(raw, dotted, value)
    trial = raw.get("trial")
    # A relative script path is relative to the config file, wherever the command is run from.
    if isinstance(trial, dict) and isinstance(trial.get("script"), str) and not Path(trial["script"]).is_absolute():
        trial["script"] = str((path.parent / trial["script"]).resolve())
    return parse_config(raw, source=str(path.resolve()))


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    node = raw
    *parents, last = dotted.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value


class _Problems:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, path: str, reason: str) -> None:
        self.items.append((path, reason))


def _section(raw: Mapping[str, Any], key: str, problems: _Problems, allowed: set[str]) -> dict[str, Any]:
    value = raw.get(key, {})
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.add(key, f"must be a mapping, got {type(value).__name__}")
        return {}
    for unknown in sorted(set(value) - allowed):
        problems.add(f"{key}.{unknown}", f"unknown key (allowed: {', '.join(sorted(allowed))})")
    return value


def _number(
    section: Mapping[str, Any],
    key: str,
    path: str,
    problems: _Problems,
    *,
    integer: bool = False,
    positive: bool = False,
    default: Any = None,
) -> Any:
    if key not in section or section[key] is None:
        return default
    value = section[key]
    ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type:
        problems.add(f"{path}.{key}", f"must be {'an integer' if integer else 'a number'}, got {value!r}")
        return default
    if isinstance(value, float) and not math.isfinite(value):
        problems.add(f"{path}.{key}", "must be finite")
        return default
    if positive and value <= 0:
        problems.add(f"{path}.{key}", f"must be > 0, got {value!r}")
        return default
    return value


TOP_KEYS = {
    "name", "objective", "record", "space", "algorithm", "budget", "termination",
    "executor", "trial", "tracking", "relaunched_from", "early_stopping",
}  # fmt: skip
EARLY_STOPPING_RULES = ("median", "successive_halving")


def parse_config(raw: Mapping[str, Any], source: str | None = None, check_target: bool = True) -> SearchConfig:
    """Validate a config mapping; raise ConfigError listing every problem found.

    With ``check_target`` the trial's script must exist and its module or entry point be findable,
    so a typo is refused before a search run is created.
    """
    problems = _Problems()
    for unknown in sorted(set(raw) - TOP_KEYS):
        problems.add(unknown, f"unknown key (allowed: {', '.join(sorted(TOP_KEYS))})")

    name = raw.get("name") or "search"
    if not isinstance(name, str):
        problems.add("name", "must be a string")
        name = "search"

    obj = _section(raw, "objective", problems, {"metric", "direction"})
    metric = obj.get("metric")
    if not isinstance(metric, str) or not metric:
        problems.add("objective.metric", "is required: the name of the metric to optimise")
        metric = "objective"
    direction = obj.get("direction", "max")
    aliases = {"maximize": "max", "minimize": "min", "descending": "max", "ascending": "min"}
    direction = aliases.get(direction, direction)
    if direction not in ("max", "min"):
        problems.add("objective.direction", f"must be 'max' or 'min', got {obj.get('direction')!r}")
        direction = "max"

    record = raw.get("record", []) or []
    if not isinstance(record, list) or not all(isinstance(m, str) for m in record):
        problems.add("record", "must be a list of metric names")
        record = []

    space = _parse_space(raw.get("space"), problems)

    algo_raw = raw.get("algorithm", {"name": "random"})
    if isinstance(algo_raw, str):
        algo_raw = {"name": algo_raw}
    algorithm = _parse_algorithm(algo_raw, problems)

    bud = _section(raw, "budget", problems, {"resource", "min", "max"})
    b_min = _number(bud, "min", "budget", problems, integer=True, positive=True, default=1)
    b_max = _number(bud, "max", "budget", problems, integer=True, positive=True, default=max(b_min, 1))
    if b_min > b_max:
        problems.add("budget.min", f"must be <= budget.max ({b_max}), got {b_min}")
    resource = bud.get("resource", "epochs")
    if not isinstance(resource, str):
        problems.add("budget.resource", "must be a string such as 'epochs'")
        resource = "epochs"
    budget = Budget(resource=resource, min=b_min, max=b_max)

    term = _section(raw, "termination", problems, {"max_trials", "max_time_s", "threshold"})
    termination = Termination(
        max_trials=_number(term, "max_trials", "termination", problems, integer=True, positive=True),
        max_time_s=_number(term, "max_time_s", "termination", problems, positive=True),
        threshold=_number(term, "threshold", "termination", problems),
    )
    if algorithm.name not in SELF_ENDING and termination.max_trials is None and termination.max_time_s is None:
        problems.add("termination", "needs max_trials or max_time_s, or the search would never end")

    pop = algorithm.settings.get("population_size", 0)
    if algorithm.name == "pbt" and termination.max_trials is not None and termination.max_trials < pop:
        problems.add("termination.max_trials", f"must be >= algorithm.population_size ({pop}) for PBT")
    if algorithm.name == "pbt" and algorithm.settings.get("interval", 1) > b_max:
        problems.add("algorithm.interval", f"must be <= budget.max ({b_max}), got {algorithm.settings['interval']}")

    exe = _section(raw, "executor", problems, {"kind", "workers", "address"})
    kind = exe.get("kind", "local")
    if kind not in EXECUTORS:
        problems.add("executor.kind", f"must be one of {', '.join(EXECUTORS)}, got {kind!r}")
    workers = _number(exe, "workers", "executor", problems, integer=True, positive=True, default=1)
    address = exe.get("address")
    if address is not None and (kind != "dask" or not isinstance(address, str)):
        problems.add("executor.address", "is a Dask scheduler address (tcp://host:8786), for kind: dask only")
        address = None
    executor = ExecutorConfig(kind=kind, workers=workers, address=address)

    trial = _parse_trial(raw.get("trial"), problems)

    trk = _section(raw, "tracking", problems, {"uri", "experiment", "artifact_location"})
    tracking = TrackingConfig(
        uri=str(trk.get("uri") or DEFAULT_TRACKING_URI),
        experiment=str(trk.get("experiment") or name),
        artifact_location=trk.get("artifact_location"),
    )

    early = _parse_early_stopping(raw.get("early_stopping"), algorithm.name, problems)

    relaunched_from = raw.get("relaunched_from")
    if relaunched_from is not None and not isinstance(relaunched_from, str):
        problems.add("relaunched_from", "must be a search id (string)")

    if space is not None and algorithm.name == "grid":
        size = product_size(space, algorithm.settings.get("points", 5))
        if size > MAX_GRID:
            problems.add("algorithm.points", f"the grid would have {size} points (limit {MAX_GRID})")

    if not problems.items and check_target:
        _check_trial_target(trial, problems)
    if problems.items:
        raise ConfigError(problems.items)
    assert space is not None
    return SearchConfig(
        name=name,
        objective=Objective(metric=metric, direction=direction),
        space=space,
        algorithm=algorithm,
        budget=budget,
        termination=termination,
        executor=executor,
        trial=trial,
        tracking=tracking,
        record=tuple(record),
        relaunched_from=relaunched_from,
        source=source,
        early_stopping=early,
    )


def _parse_early_stopping(raw: Any, algorithm: str, problems: _Problems) -> EarlyStopping | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.add("early_stopping", "must be a mapping: {rule: median, step: 3, min_trials: 5}")
        return None
    for unknown in sorted(set(raw) - {"rule", "step", "min_trials", "eta", "resume"}):
        problems.add(f"early_stopping.{unknown}", "unknown key (allowed: eta, min_trials, resume, rule, step)")
    resume = raw.get("resume", False)
    if not isinstance(resume, bool):
        problems.add("early_stopping.resume", f"must be true or false, got {resume!r}")
    rule = raw.get("rule", "median")
    if rule not in EARLY_STOPPING_RULES:
        problems.add("early_stopping.rule", f"must be one of {', '.join(EARLY_STOPPING_RULES)}, got {rule!r}")
    step = _number(raw, "step", "early_stopping", problems, integer=True, default=1)
    if step == 0 or step < -1:
        problems.add("early_stopping.step", "must be a positive number of budget units, or -1 to disable")
    min_trials = _number(raw, "min_trials", "early_stopping", problems, integer=True, positive=True, default=5)
    eta = _number(raw, "eta", "early_stopping", problems, integer=True, default=3)
    if eta < 2:
        problems.add("early_stopping.eta", "must be >= 2")
    if algorithm in BUDGETED:
        problems.add("early_stopping", f"{algorithm} stops trials itself; early stopping is for random, grid and tpe")
    return None if step == -1 else EarlyStopping(rule, step, min_trials, eta, resume is True)


def _parse_algorithm(raw: Any, problems: _Problems) -> AlgorithmConfig:
    if not isinstance(raw, dict):
        problems.add("algorithm", "must be a name or a mapping with 'name'")
        return AlgorithmConfig()
    name = raw.get("name", "random")
    if name not in ALGORITHM_SETTINGS:
        problems.add("algorithm.name", f"must be one of {', '.join(ALGORITHM_SETTINGS)}, got {name!r}")
        return AlgorithmConfig()
    seed = _number(raw, "seed", "algorithm", problems, integer=True)
    defaults = ALGORITHM_SETTINGS[name]
    settings = dict(defaults)
    for key, value in raw.items():
        if key in ("name", "seed"):
            continue
        if key not in defaults:
            allowed = ", ".join(["name", "seed", *defaults]) or "name, seed"
            problems.add(f"algorithm.{key}", f"is not a setting of {name!r} (allowed: {allowed})")
            continue
        if isinstance(defaults[key], float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not type(defaults[key]):
            problems.add(f"algorithm.{key}", f"must be {type(defaults[key]).__name__}, got {value!r}")
            continue
        settings[key] = value
    if name == "grid" and settings["points"] < 1:
        problems.add("algorithm.points", "must be >= 1")
    if name == "tpe" and settings["n_startup_trials"] < 0:
        problems.add("algorithm.n_startup_trials", "must be >= 0")
    if name in ("hyperband", "bohb") and settings["eta"] < 2:
        problems.add("algorithm.eta", "must be >= 2")
    if name == "bohb":
        _check_range(settings, "top_n_percent", 1, 99, problems)
        _check_range(settings, "num_samples", 1, None, problems)
        _check_range(settings, "random_fraction", 0.0, 1.0, problems)
        _check_range(settings, "min_points_in_model", 0, None, problems)
    if name == "pbt":
        _check_range(settings, "population_size", 2, None, problems)
        _check_range(settings, "interval", 1, None, problems)
        _check_range(settings, "max_generations", 0, None, problems)
        _check_range(settings, "quantile", 0.01, 0.5, problems)
        _check_range(settings, "perturb", 0.0, 1.0, problems)
        _check_range(settings, "resample_probability", 0.0, 1.0, problems)
    return AlgorithmConfig(name=name, seed=seed, settings=settings)


def _check_range(settings: dict[str, Any], key: str, low: float, high: float | None, problems: _Problems) -> None:
    value = settings[key]
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f">= {low}"
        problems.add(f"algorithm.{key}", f"must be {bounds}, got {value!r}")


def _parse_trial(raw: Any, problems: _Problems) -> TrialSpec:
    allowed = {"function", "entry_point", "script", "python", "args", "timeout_s", "workdir"}
    if not isinstance(raw, dict):
        problems.add("trial", "is required: {function: 'module:function'}, {entry_point: name} or {script: path}")
        return TrialSpec(function="missing:missing")
    for unknown in sorted(set(raw) - allowed):
        problems.add(f"trial.{unknown}", f"unknown key (allowed: {', '.join(sorted(allowed))})")
    given = [k for k in ("function", "entry_point", "script") if raw.get(k)]
    if len(given) != 1:
        problems.add("trial", "give exactly one of 'function', 'entry_point' or 'script'")
        return TrialSpec(function="missing:missing")
    func = raw.get("function")
    if func is not None and (not isinstance(func, str) or func.count(":") != 1 or not all(func.split(":"))):
        problems.add("trial.function", f"must look like 'package.module:function', got {func!r}")
    args = raw.get("args", [])
    if not isinstance(args, list):
        problems.add("trial.args", "must be a list of strings")
        args = []
    timeout = _number(raw, "timeout_s", "trial", problems, positive=True)
    if raw.get("python") is not None and not raw.get("script"):
        problems.add("trial.python", "only applies to script trials")
    return TrialSpec(
        function=func,
        entry_point=raw.get("entry_point"),
        script=raw.get("script"),
        python=raw.get("python"),
        args=tuple(str(a) for a in args),
        timeout_s=timeout,
        workdir=raw.get("workdir"),
    )


def _parse_param(name: str, spec: Any, problems: _Problems) -> Param | None:
    path = f"space.{name}"
    if not isinstance(spec, dict):
        if isinstance(spec, list):
            problems.add(path, "a list is ambiguous: write {type: categorical, choices: [...]}")
            return None
        if isinstance(spec, str | int | float | bool):
            return Fixed(name, value=spec)
        problems.add(path, f"must be a mapping or a constant, got {type(spec).__name__}")
        return None
    when = _parse_when(spec.get("when"), path, problems)
    kind = spec.get("type")
    if kind is None:
        kind = "categorical" if "choices" in spec else "fixed" if "value" in spec else None
        if kind is None and "low" in spec and "high" in spec:
            both_int = all(isinstance(spec[k], int) and not isinstance(spec[k], bool) for k in ("low", "high"))
            kind = "int" if both_int else "float"
    common = {"type", "when"}
    if kind in ("float", "int"):
        for unknown in sorted(set(spec) - common - {"low", "high", "log"}):
            problems.add(f"{path}.{unknown}", f"unknown key for a {kind} parameter")
        low = _number(spec, "low", path, problems, integer=kind == "int")
        high = _number(spec, "high", path, problems, integer=kind == "int")
        log = spec.get("log", False)
        if not isinstance(log, bool):
            problems.add(f"{path}.log", "must be true or false")
            log = False
        if low is None or high is None:
            if "low" not in spec or "high" not in spec:
                problems.add(path, "needs both 'low' and 'high'")
            return None
        if low >= high:
            problems.add(f"{path}.high", f"must be greater than low ({low}), got {high}")
            return None
        if log and low <= 0:
            problems.add(f"{path}.low", f"must be > 0 on a log scale, got {low}")
            return None
        cls = Int if kind == "int" else Float
        return cls(name, when=when, low=low if kind == "int" else float(low),
                   high=high if kind == "int" else float(high), log=log)  # fmt: skip
    if kind == "categorical":
        for unknown in sorted(set(spec) - common - {"choices"}):
            problems.add(f"{path}.{unknown}", "unknown key for a categorical parameter")
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            problems.add(f"{path}.choices", "must be a non-empty list")
            return None
        if not all(isinstance(c, str | int | float | bool) for c in choices):
            problems.add(f"{path}.choices", "choices must be strings, numbers or booleans")
            return None
        if len(set(map(repr, choices))) != len(choices):
            problems.add(f"{path}.choices", "has duplicates")
            return None
        return Categorical(name, when=when, choices=tuple(choices))
    if kind == "fixed":
        value = spec.get("value")
        if not isinstance(value, str | int | float | bool):
            problems.add(f"{path}.value", "a fixed parameter needs a string, number or boolean value")
            return None
        return Fixed(name, when=when, value=value)
    problems.add(f"{path}.type", f"must be float, int, categorical or fixed, got {kind!r}")
    return None


def _parse_when(raw: Any, path: str, problems: _Problems) -> dict[str, tuple[Any, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not raw:
        problems.add(f"{path}.when", "must map a parameter name to a value or a list of values")
        return {}
    return {k: tuple(v) if isinstance(v, list) else (v,) for k, v in raw.items()}


def _parse_space(raw: Any, problems: _Problems) -> SearchSpace | None:
    if not isinstance(raw, dict) or not raw:
        problems.add("space", "is required: a mapping of parameter name to its definition")
        return None
    params = []
    for name, spec in raw.items():
        if not isinstance(name, str) or not PARAM_NAME.fullmatch(name) or name.startswith("trellis."):
            problems.add(
                f"space.{name}",
                "parameter names are letters, digits, '_', '-', '.', '/' or spaces (MLflow's rule), "
                "at most 250 characters, not starting with 'trellis.'",
            )
            continue
        p = _parse_param(name, spec, problems)
        if p is not None:
            params.append(p)
    if problems.items:
        return None
    try:
        return SearchSpace(params)
    except SpaceError as exc:
        problems.add(exc.path, exc.reason)
        return None


def _check_trial_target(spec: TrialSpec, problems: _Problems) -> None:
    import importlib.metadata
    import importlib.util
    import os
    import sys

    if spec.script:
        if not Path(spec.script).is_file():
            problems.add("trial.script", f"no such file: {spec.script}")
        return
    if spec.entry_point:
        names = {ep.name for ep in importlib.metadata.entry_points(group="trellis.trials")}
        if spec.entry_point not in names:
            problems.add(
                "trial.entry_point", f"{spec.entry_point!r} is not registered (known: {', '.join(sorted(names))})"
            )
        return
    assert spec.function
    module = spec.function.split(":")[0]
    for extra in (spec.workdir, os.getcwd()):
        if extra and extra not in sys.path:
            sys.path.insert(0, extra)
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        problems.add("trial.function", f"cannot find module {module!r} (is it installed or in the working directory?)")
