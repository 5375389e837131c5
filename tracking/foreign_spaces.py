"""Search spaces other tools record beside their runs, read without running anything.

Optuna's MLflow callback tags each run ``<param>_distribution`` with the distribution's repr, e.g.
``FloatDistribution(high=0.1, log=True, low=1e-05, step=None)``: the bounds and the scale the user chose,
which the analysis must keep (a refined space must not turn a log parameter linear).
"""

from __future__ import annotations

import ast
import math
import re

import numpy as np

SUFFIX = "_distribution"
LOG_EVIDENCE = 1.0  # nats by which a log-uniform must explain a parameter's values better to call it log
_CALL = re.compile(r"^(FloatDistribution|IntDistribution|CategoricalDistribution)\((.*)\)$", re.S)


def parse_optuna_distribution(text: str) -> dict | None:
    """A Trellis space entry from Optuna's repr of a distribution, or None when it is not one."""
    match = _CALL.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        return None
    kind, args = match.groups()
    try:
        call = ast.parse(f"f({args})", mode="eval").body
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}  # literals only: nothing runs
    except (SyntaxError, ValueError):
        return None
    if kind == "CategoricalDistribution":
        choices = kwargs.get("choices")
        return {"type": "categorical", "choices": list(choices)} if isinstance(choices, tuple | list) else None
    low, high = kwargs.get("low"), kwargs.get("high")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)):
        return None
    return {"type": "int" if kind == "IntDistribution" else "float", "low": low, "high": high,
            "log": bool(kwargs.get("log", False))}  # fmt: skip


def declared_spaces(wide_tags: dict[str, np.ndarray]) -> dict[str, dict]:
    """Per parameter, the union of the distributions its runs declare (widest bounds, log if any is)."""
    spaces: dict[str, dict] = {}
    for key, values in wide_tags.items():
        if not key.endswith(SUFFIX):
            continue
        name = key[: -len(SUFFIX)]
        for text in {v for v in values if isinstance(v, str)}:
            spec = parse_optuna_distribution(text)
            if spec is None:
                continue
            have = spaces.setdefault(name, spec)
            if have is not spec:
                widen(have, spec)
    return spaces


def widen(have: dict, spec: dict) -> None:
    """Make the distribution ``have`` cover ``spec`` too, when both are of one type: all choices, the widest
    bounds, log if either is."""
    if have["type"] == spec["type"] == "categorical":
        have["choices"] = list(dict.fromkeys([*have["choices"], *spec["choices"]]))
    elif have["type"] == spec["type"]:
        have["low"], have["high"] = min(have["low"], spec["low"]), max(have["high"], spec["high"])
        have["log"] = have["log"] or spec["log"]


# -- the scale of a parameter no tool recorded a space for: read from the samples themselves -------------


def uniform_distance(values: np.ndarray) -> float:
    """Kolmogorov–Smirnov distance of the sample to a uniform on [min, max] (0: evenly spread, ~1: bunched)."""
    v = np.sort(np.asarray(values, dtype=float))
    n = len(v)
    if n < 2 or v[-1] <= v[0]:
        return 0.0
    u = (v - v[0]) / (v[-1] - v[0])
    ranks = np.arange(1, n + 1) / n
    return float(max(np.max(ranks - u), np.max(u - (ranks - 1.0 / n))))


def looks_log_uniform(values: np.ndarray) -> bool:
    """Whether the values were sampled on a log scale: all positive, and uniform on [min, max] in log space
    explains them better than uniform in linear space, by a likelihood ratio of at least e (``LOG_EVIDENCE``
    nats; below that, linear). Not their span: uniform samples near zero span decades (0.0008 .. 0.7 is a
    linear dropout), and a grid 1, 10, 100 fills two decades evenly in log space.

    The two densities on [a, b]: 1 / (b - a), and 1 / (x ln(b / a)); both with the sample's ends."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    distinct = np.unique(v)
    if len(distinct) < 3 or v.min() <= 0:
        return False  # two values sit at both ends on either scale: nothing says log
    if len(distinct) <= len(v) / 2:
        v = distinct  # a grid (or a few repeated values): how its values are spaced, not how often each came
    low, high = float(v.min()), float(v.max())
    linear = -len(v) * math.log(high - low)
    log = -float(np.log(v).sum()) - len(v) * math.log(math.log(high / low))
    return log - linear > LOG_EVIDENCE


def written_as_integers(texts) -> bool:
    """Whether every value was logged as an integer literal ("32", not "32.0" or "3e1")."""
    return all(str(text).strip().lstrip("+-").isdigit() for text in texts)  # a float column stops at its first


def low_end(low: float, high: float, n: int) -> float:
    """The low end of a linear parameter's sampled range seen from ``n`` values in [low, high]: 0 when the
    values are non-negative and the smallest lies within two average gaps of 0 (a dropout sampled on
    [0, 0.7] rarely logs 0 itself, yet 0 was possible), else the smallest value seen."""
    if n >= 2 and 0 < low <= 2 * (high - low) / (n - 1):
        return 0.0
    return low
