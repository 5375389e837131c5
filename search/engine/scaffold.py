"""``trellis init``: a working search config from the trial itself.

A dry run (``trellis.search.engine.trial_probe``, in its own process) finds the params the trial reads, their
defaults and types, and the metrics it reports; ``propose`` turns each default into a range (pure), and
``config_for`` writes the whole config around them.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROBE_TIMEOUT_S = 600
# Names of parameters whose scale matters more than their value: searched on a log scale.
SCALE_LIKE = re.compile(r"(^|_)(lr|learning_rate|weight_decay|wd|eps|epsilon|l1|l2|alpha|lambda|reg|decay)($|_)")
LOSS_LIKE = re.compile(r"loss|error|err$|mse|mae|rmse|perplexity|latency|time")


class ScaffoldError(ValueError):
    """The trial could not be probed at all; the message says why."""


@dataclass(frozen=True)
class ParamFound:
    name: str
    default: Any = None  # None: read without a default (``params[key]``) or ``.get(key)`` alone
    kind: str | None = None  # how a key without a default was converted: float, int, str, bool
    required: bool = False  # read as ``params[key]`` with no value given (not ``.get``)


@dataclass(frozen=True)
class ProbeResult:
    params: list[ParamFound]
    step_metrics: list[str]
    final_metrics: list[str]
    returned_value: bool = False  # the function returned a bare number (the objective)
    error: str | None = None
    tail: str = ""

    @property
    def metrics(self) -> list[str]:
        return self.step_metrics + [m for m in self.final_metrics if m not in self.step_metrics]


def run_probe(
    function: str | None = None, script: str | None = None, sample: dict[str, Any] | None = None, workdir: str = "."
) -> ProbeResult:
    """Dry-run the trial in a child process (one budget unit) and read what it recorded."""
    with tempfile.TemporaryDirectory(prefix="trellis-init-") as folder:
        result = Path(folder) / "probe.json"
        cmd = [sys.executable, "-P", "-m", "trellis.search.engine.trial_probe", str(result)]
        if function:
            cmd += ["function", function, workdir]
        else:
            params_file = Path(folder) / "sample.json"
            params_file.write_text(json.dumps(sample or {}))
            cmd += ["script", str(Path(script or "").resolve()), str(params_file), workdir]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, cwd=workdir)
        except subprocess.TimeoutExpired:
            raise ScaffoldError(f"the dry run did not end within {PROBE_TIMEOUT_S} s") from None
        if not result.exists():
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
            raise ScaffoldError(f"the dry run ended before recording anything (exit {done.returncode}): {tail}")
        raw = json.loads(result.read_text())
    found = [ParamFound(p["name"], p.get("default"), p.get("kind"), bool(p.get("required"))) for p in raw["params"]]
    metrics = raw["metrics"]
    return ProbeResult(
        found,
        list(metrics.get("step", [])),
        list(metrics.get("final", [])),
        bool(metrics.get("returned_value")),
        raw.get("error"),
        raw.get("tail", ""),
    )


def _nice(value: float) -> float:
    """A bound rounded to 3 significant digits, so the file reads well."""
    return float(f"{value:.3g}")


def propose(param: ParamFound) -> dict[str, Any] | None:
    """A search range for one parameter from its default (pure). None: nothing to propose (no default and
    no known type)."""
    value, name = param.default, param.name.lower()
    if value is None:
        kind = param.kind or "float"
        if not param.required or kind in ("str", "bool"):
            return None  # `.get(key)` alone (an optional setting), or a value of unknown choices
        if kind == "int":
            return {"type": "int", "low": 1, "high": 8}
        if SCALE_LIKE.search(name):
            return {"type": "float", "low": 1.0e-5, "high": 1.0, "log": True}
        return {"type": "float", "low": 0.0, "high": 1.0}
    if isinstance(value, bool):
        return {"type": "categorical", "choices": [value, not value]}
    if isinstance(value, int):
        if value > 0:
            low, high = max(1, value // 4), value * 4
            return {"type": "int", "low": low, "high": high, **({"log": True} if high / low >= 8 else {})}
        if value == 0:
            return {"type": "int", "low": 0, "high": 4}
        return {"type": "int", "low": value * 4, "high": value // 4 if value // 4 < 0 else 0}
    if isinstance(value, float) and math.isfinite(value):
        if value > 0 and (SCALE_LIKE.search(name) or value < 0.1):
            return {"type": "float", "low": _nice(value / 10), "high": _nice(value * 10), "log": True}
        if value == 0 and SCALE_LIKE.search(name):  # weight_decay 0.0: off by default, searched on a log scale
            return {"type": "float", "low": 1.0e-6, "high": 1.0e-2, "log": True}
        if value == 0:
            return {"type": "float", "low": 0.0, "high": 0.5 if "dropout" in name else 1.0}
        if 0 < value < 1:
            return {"type": "float", "low": _nice(value / 2), "high": _nice(min(value * 2, 0.99))}
        if value >= 1:
            return {"type": "float", "low": _nice(value / 2), "high": _nice(value * 2)}
        width = max(1.0, abs(value))
        return {"type": "float", "low": _nice(value - width), "high": _nice(value + width)}
    if isinstance(value, str):  # its other choices are unknown: a constant to turn into choices by hand
        return {"type": "fixed", "value": value}
    return None


def pick_objective(result: ProbeResult, given: str | None, direction: str | None) -> tuple[str, str]:
    """The objective metric and direction: as given, else the first validation-like metric the trial reported
    (``val_*``), else its first step metric; ``min`` for losses, errors and times, else ``max``."""
    metrics = result.metrics
    if given:
        metric = given
    elif metrics:
        metric = next((m for m in result.step_metrics if m.startswith("val")), None) or metrics[0]
    else:
        metric = "value"  # a bare number returned is logged under the objective's name
    return metric, direction or ("min" if LOSS_LIKE.search(metric.lower()) else "max")


@dataclass
class Scaffold:
    """What ``trellis init`` writes, before the interactive edits."""

    name: str
    trial: dict[str, Any]
    space: dict[str, Any]
    objective: tuple[str, str]
    record: list[str]
    budgeted: bool
    skipped: list[str] = field(default_factory=list)  # params read with nothing to propose


def scaffold(result: ProbeResult, name: str, trial: dict[str, Any], objective: str | None, direction: str | None):
    space, skipped = {}, []
    for param in result.params:
        proposal = propose(param)
        if proposal is None:
            skipped.append(param.name)
        else:
            space[param.name] = proposal
    metric, way = pick_objective(result, objective, direction)
    record = [m for m in result.metrics if m != metric]
    return Scaffold(name, trial, space, (metric, way), record, budgeted=bool(result.step_metrics), skipped=skipped)


def config_for(s: Scaffold, budget: int, max_trials: int, workers: int, tracking_uri: str) -> dict[str, Any]:
    """The config file's contents (plain data, in the order docs/config.md shows)."""
    return {
        "name": s.name,
        "objective": {"metric": s.objective[0], "direction": s.objective[1]},
        **({"record": s.record} if s.record else {}),
        "space": s.space,
        "algorithm": {"name": "random", "seed": 0},
        "budget": {"resource": "epochs", "min": 1, "max": budget if s.budgeted else 1},
        "termination": {"max_trials": max_trials},
        "executor": {"kind": "local", "workers": workers},
        "trial": s.trial,
        "tracking": {"uri": tracking_uri, "experiment": s.name},
    }


def parse_answer(text: str, current: dict[str, Any]) -> dict[str, Any] | None:
    """One interactive answer for a parameter (pure): empty keeps ``current``; ``-`` drops it (None);
    ``LOW HIGH [log]`` a range (int when both are whole numbers and the current one is int); ``fixed VALUE``
    a constant; ``a,b,c`` choices. ValueError for anything else."""
    text = text.strip()
    if not text:
        return current
    if text == "-":
        return None
    if text.startswith("fixed "):
        return {"type": "fixed", "value": _scalar(text[6:].strip())}
    if "," in text:
        return {"type": "categorical", "choices": [_scalar(c.strip()) for c in text.split(",") if c.strip()]}
    parts = text.split()
    if len(parts) in (2, 3) and (len(parts) == 2 or parts[2] == "log"):
        low, high = float(parts[0]), float(parts[1])
        if low >= high:
            raise ValueError("low must be below high")
        is_int = current.get("type") == "int" and low.is_integer() and high.is_integer()
        out: dict[str, Any] = {"type": "int" if is_int else "float"}
        out.update(low=int(low) if is_int else low, high=int(high) if is_int else high)
        if len(parts) == 3:
            out["log"] = True
        return out
    raise ValueError("answer with LOW HIGH [log], a,b,c, 'fixed VALUE', '-' to drop, or Enter to keep")


def _scalar(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)
