"""Reading a config file or mapping into a ``SearchConfig``, every problem listed with its key path."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from trellis.extras import hint, missing
from trellis.search.config.algorithm import check_across_sections, parse_algorithm
from trellis.search.config.model import (
    Budget,
    ConfigError,
    ExecutorConfig,
    Objective,
    SearchConfig,
    Termination,
    TrackingConfig,
)
from trellis.search.config.origin import parse_origin
from trellis.search.config.prior_section import parse_prior
from trellis.search.config.problems import Problems, number, section
from trellis.search.config.resources import RESOURCE_KEYS, parse_resources
from trellis.search.config.sections import check_trial_target, parse_early_stopping, parse_trial
from trellis.search.config.space_parse import parse_space
from trellis.search.config.yaml_text import MAX_BYTES, ConfigTextError, load_text
from trellis.search.registry import ALGORITHMS, EXECUTORS
from trellis.tracking.limits import experiment_name_problem, metric_problem
from trellis.tracking.links import app_url_problem
from trellis.tracking.uris import DEFAULT_TRACKING_URI, driver_problem

TOP_KEYS = {
    "name",
    "objective",
    "record",
    "space",
    "algorithm",
    "budget",
    "termination",
    "executor",
    "trial",
    "tracking",
    "relaunched_from",
    "early_stopping",
    "warm_start",
    "origin",
    "prior",
    "source",  # the file the config was read from (written by Trellis): its folder may hold the trial module
}
MAX_WORKERS = 1024  # beyond any one machine or sensible cluster share: a typo
MAX_BUDGET = 10**9  # budget units (steps) a trial may reach
DIRECTION_ALIASES = {"maximize": "max", "minimize": "min", "descending": "max", "ascending": "min"}


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> SearchConfig:
    """Read a YAML/JSON file and validate it. ``overrides`` are dotted keys (``tracking.uri``)."""
    path = Path(path)
    try:
        if not path.is_file():  # a folder, /dev/zero, a pipe: never read without end
            what = "a folder" if path.is_dir() else "missing" if not path.exists() else "not a regular file"
            raise ConfigError([("<file>", f"{path}: {what}: give the config file")])
        if path.stat().st_size > MAX_BYTES:
            raise ConfigError([("<file>", f"{path}: {path.stat().st_size} bytes: more than a config's {MAX_BYTES}")])
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([("<file>", f"cannot read {path}: {exc.strerror or exc}")]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([("<file>", f"{path} is not UTF-8 text (byte {exc.start}): is it the config file?")]) from exc
    try:
        raw = load_text(text, as_json=path.suffix == ".json")
    except ConfigTextError as exc:
        raise ConfigError([("<file>", str(exc))]) from None
    if not isinstance(raw, dict):
        raise ConfigError([("<root>", "must be a mapping of keys to values")])
    raw.setdefault("name", path.stem)
    for dotted, value in (overrides or {}).items():
        set_dotted(raw, dotted, value)
    trial = raw.get("trial")
    # A relative script path is relative to the config file, wherever the command is run from.
    if isinstance(trial, dict) and isinstance(trial.get("script"), str) and not Path(trial["script"]).is_absolute():
        trial["script"] = str((path.parent / trial["script"]).resolve())
    return parse_config(raw, source=str(path.resolve()))


def set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``raw``'s value at a dotted key (``tracking.uri``), making the sections on the way."""
    node = raw
    *parents, last = dotted.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value


def parse_config(raw: Mapping[str, Any], source: str | None = None, check_target: bool = True) -> SearchConfig:
    """Validate a config mapping; raise ConfigError listing every problem found.

    With ``check_target`` the trial's script must exist and its module or entry point be findable,
    so a typo is refused before a search run is created.
    """
    problems = Problems()
    if source is None and isinstance(raw.get("source"), str):
        source = raw["source"]
    for unknown in sorted(set(raw) - TOP_KEYS):
        problems.add(unknown, f"unknown key (allowed: {', '.join(sorted(TOP_KEYS))})")
    name = raw.get("name") or "search"
    if not isinstance(name, str):
        problems.add("name", "must be a string")
        name = "search"
    objectives = _parse_objectives(raw, problems)
    objective = objectives[0]
    record = raw.get("record", []) or []
    if not isinstance(record, list) or not all(isinstance(m, str) for m in record):
        problems.add("record", "must be a list of metric names")
        record = []
    for i, metric in enumerate(record):
        reason = metric_problem(metric, 0.0, 0)
        if reason:
            problems.add(f"record[{i}]", reason)
    space = parse_space(raw.get("space"), problems)
    algorithm = parse_algorithm(raw.get("algorithm", {"name": "random"}), problems)
    budget = _parse_budget(raw, problems)
    termination = _parse_termination(raw, problems)
    check_across_sections(algorithm, space, budget, termination, problems)
    _check_objectives_fit(objectives, algorithm.name, raw, problems)
    executor = _parse_executor(raw, problems)
    trial = parse_trial(raw.get("trial"), problems)
    if source and Path(source).parent.is_dir():
        trial = replace(trial, config_dir=str(Path(source).parent))
    tracking = _parse_tracking(raw, name, problems)
    early = parse_early_stopping(raw.get("early_stopping"), algorithm.name, problems)
    relaunched_from = raw.get("relaunched_from")
    if relaunched_from is not None and not isinstance(relaunched_from, str):
        problems.add("relaunched_from", "must be a search id (string)")
    warm_start = _parse_warm_start(raw, algorithm.name, relaunched_from, problems)
    origin = parse_origin(raw.get("origin"), None if space is None else space.names, problems)
    prior = parse_prior(raw.get("prior"), space, algorithm.name, termination.max_trials, problems)
    if not problems.items and check_target:
        check_trial_target(trial, problems)
    if problems.items:
        raise ConfigError(problems.items)
    assert space is not None
    return SearchConfig(
        name=name,
        objective=objective,
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
        warm_start=warm_start,
        origin=origin,
        objectives=tuple(objectives),
        prior=prior,
    )


def _parse_warm_start(raw: Mapping[str, Any], algorithm: str, relaunched_from: Any, problems: Problems) -> bool:
    value = raw.get("warm_start", False)
    if not isinstance(value, bool):
        problems.add("warm_start", f"must be true or false, got {value!r}")
        return False
    if not value:
        return False
    if not relaunched_from:
        problems.add("warm_start", "needs relaunched_from: the search whose trials to learn from")
    spec = ALGORITHMS.get(algorithm)
    if spec is not None and not spec.learns_from_past:
        learners = ", ".join(sorted(n for n, s in ALGORITHMS.items() if s.learns_from_past))
        problems.add("warm_start", f"{algorithm} does not learn from past trials (only {learners} do)")
    return True


MAX_OBJECTIVES = 6


def _parse_objectives(raw: Mapping[str, Any], problems: Problems) -> list[Objective]:
    """``objective``: one mapping (one objective), or a list of them in the user's order of priority."""
    value = raw.get("objective")
    if not isinstance(value, list):
        return [_parse_objective(raw, problems)]
    if not value or len(value) > MAX_OBJECTIVES:
        problems.add("objective", f"a list of 1 to {MAX_OBJECTIVES} objectives, got {len(value)}")
        return [Objective("objective")]
    out = []
    for i, item in enumerate(value):
        before = len(problems.items)
        one = _parse_objective({"objective": item}, problems)
        problems.items[before:] = [
            (p.replace("objective", f"objective[{i}]", 1), r) for p, r in problems.items[before:]
        ]
        out.append(one)
    seen = [o.metric for o in out]
    for i, metric in enumerate(seen):
        if metric in seen[:i]:
            problems.add(f"objective[{i}].metric", f"{metric!r} is already objective[{seen.index(metric)}]")
    return out


def _check_objectives_fit(
    objectives: list[Objective], algorithm: str, raw: Mapping[str, Any], problems: Problems
) -> None:
    """Several objectives need an algorithm whose sampler takes them all; early stopping ranks by one value."""
    if len(objectives) < 2:
        threshold = (
            (raw.get("termination") or {}).get("threshold") if isinstance(raw.get("termination"), dict) else None
        )
        if isinstance(threshold, list):
            problems.add("termination.threshold", "one number for one objective (a list is for several)")
        return
    spec = ALGORITHMS.get(algorithm)
    if spec is not None and spec.objectives != "several":
        takers = ", ".join(n for n, s in ALGORITHMS.items() if s.objectives == "several")
        problems.add("algorithm.name", f"{algorithm} ranks trials by one value, so it optimises one objective: "
                     f"with {len(objectives)} objectives use {takers}")  # fmt: skip
    if raw.get("early_stopping"):
        problems.add("early_stopping", "stops trials by one objective's value: not with several objectives")
    threshold = (raw.get("termination") or {}).get("threshold") if isinstance(raw.get("termination"), dict) else None
    if threshold is not None and (not isinstance(threshold, list) or len(threshold) != len(objectives)):
        problems.add("termination.threshold", f"one value per objective ({len(objectives)}), as a list: the search "
                     "stops once one trial meets them all")  # fmt: skip


def _parse_objective(raw: Mapping[str, Any], problems: Problems) -> Objective:
    obj = section(raw, "objective", problems, {"metric", "direction"})
    metric = obj.get("metric")
    if metric is None or metric == "":
        problems.add("objective.metric", "is required: the name of the metric to optimise")
        metric = "objective"
    elif not isinstance(metric, str):
        problems.add("objective.metric", f"must be the metric's name (text), got {type(metric).__name__} {metric!r}")
        metric = "objective"
    elif metric_problem(metric, 0.0, 0):
        problems.add("objective.metric", str(metric_problem(metric, 0.0, 0)))
    direction = obj.get("direction", "max")
    direction = DIRECTION_ALIASES.get(direction, direction) if isinstance(direction, str) else direction
    if direction not in ("max", "min"):
        problems.add("objective.direction", f"must be 'max' or 'min', got {obj.get('direction')!r}")
        direction = "max"
    return Objective(metric=metric, direction=direction)


def _parse_budget(raw: Mapping[str, Any], problems: Problems) -> Budget:
    bud = section(raw, "budget", problems, {"resource", "min", "max"})
    b_min = number(bud, "min", "budget", problems, integer=True, positive=True, default=1)
    b_max = number(bud, "max", "budget", problems, integer=True, positive=True, default=max(b_min, 1))
    if b_max is not None and b_max > MAX_BUDGET:
        problems.add("budget.max", f"at most {MAX_BUDGET:,} (a step MLflow and the schedulers count), got {b_max:g}")
        b_max = MAX_BUDGET
    if b_min > b_max:
        problems.add("budget.min", f"must be <= budget.max ({b_max}), got {b_min}")
    resource = bud.get("resource", "epochs")
    if not isinstance(resource, str):
        problems.add("budget.resource", "must be a string such as 'epochs'")
        resource = "epochs"
    return Budget(resource=resource, min=b_min, max=b_max)


def _parse_termination(raw: Mapping[str, Any], problems: Problems) -> Termination:
    term = section(raw, "termination", problems, {"max_trials", "max_time_s", "threshold"})
    return Termination(
        max_trials=number(term, "max_trials", "termination", problems, integer=True, positive=True),
        max_time_s=number(term, "max_time_s", "termination", problems, positive=True),
        threshold=_threshold(term, problems),
    )


def _threshold(term: Mapping[str, Any], problems: Problems) -> float | tuple[float, ...] | None:
    """A number, or a list of numbers (one per objective: the search stops once one trial meets them all)."""
    value = term.get("threshold")
    if not isinstance(value, list):
        return number(term, "threshold", "termination", problems)
    ok = [v for v in value if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)]
    if len(ok) != len(value) or not value:
        problems.add("termination.threshold", "a list of finite numbers, one per objective")
        return None
    return tuple(float(v) for v in value)


def _parse_tracking(raw: Mapping[str, Any], name: str, problems: Problems) -> TrackingConfig:
    trk = section(raw, "tracking", problems, {"uri", "experiment", "artifact_location", "app_url"})
    for key in ("uri", "experiment", "artifact_location", "app_url"):
        if trk.get(key) is not None and (not isinstance(trk[key], str) or not trk[key].strip()):
            problems.add(f"tracking.{key}", f"must be a non-empty string, got {trk[key]!r}")
    experiment = trk.get("experiment") if isinstance(trk.get("experiment"), str) else name
    reason = experiment_name_problem(experiment)
    if reason:
        problems.add("tracking.experiment", reason)
    uri = trk.get("uri") if isinstance(trk.get("uri"), str) else DEFAULT_TRACKING_URI
    if uri and (no_driver := driver_problem(uri)):
        problems.add("tracking.uri", no_driver)
    location = trk.get("artifact_location") if isinstance(trk.get("artifact_location"), str) else None
    app_url = trk.get("app_url") if isinstance(trk.get("app_url"), str) and trk["app_url"].strip() else None
    if app_url and app_url_problem(app_url):
        problems.add("tracking.app_url", app_url_problem(app_url))
    return TrackingConfig(
        uri=uri or DEFAULT_TRACKING_URI, experiment=experiment, artifact_location=location, app_url=app_url
    )


def _parse_executor(raw: Mapping[str, Any], problems: Problems) -> ExecutorConfig:
    exe = section(raw, "executor", problems, {"kind", "workers", "address", *RESOURCE_KEYS})
    kind = exe.get("kind", "local")
    spec = EXECUTORS.get(kind) if isinstance(kind, str) else None
    if spec is None:
        problems.add("executor.kind", f"must be one of {', '.join(EXECUTORS)}, got {kind!r}")
    elif spec.extra and missing(spec.extra):
        problems.add("executor.kind", hint(kind, spec.extra))
    workers = number(exe, "workers", "executor", problems, integer=True, positive=True, default=1)
    if workers > MAX_WORKERS:
        problems.add("executor.workers", f"must be at most {MAX_WORKERS}, got {workers}")
        workers = 1
    address = exe.get("address")
    if address is not None and (spec is None or not spec.takes_address or not isinstance(address, str)):
        takers = ", ".join(name for name, s in EXECUTORS.items() if s.takes_address)
        problems.add("executor.address", f"is a scheduler address (tcp://host:8786), for kind: {takers} only")
        address = None
    elif address is not None and not _is_scheduler_address(address):
        problems.add("executor.address", f"must be a scheduler address such as tcp://host:8786, got {address!r}")
        address = None
    kind = kind if spec else "local"
    gpus, per_gpu, cpus = parse_resources(exe, kind, address, problems)
    return ExecutorConfig(kind, workers, address, gpus=gpus, per_gpu=per_gpu, cpus_per_trial=cpus)


def _is_scheduler_address(address: str) -> bool:
    """``[protocol://]host:port`` with a port in range (what a Dask client connects to)."""
    import re

    found = re.fullmatch(r"(?:(tcp|tls|inproc|ucx|ws|wss)://)?(\[[0-9a-fA-F:]+\]|[\w.-]+):(\d{1,5})", address.strip())
    return bool(found) and 0 < int(found.group(3)) < 65536
