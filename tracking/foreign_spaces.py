"""Search spaces other tools record beside their runs, read without running anything.

Optuna's MLflow callback tags each run ``<param>_distribution`` with the distribution's repr, e.g.
``FloatDistribution(high=0.1, log=True, low=1e-05, step=None)``: the bounds and the scale the user chose,
which the analysis must keep (a refined space must not turn a log parameter linear).
"""

from __future__ import annotations

import ast
import re

import numpy as np

SUFFIX = "_distribution"
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
            if have is not spec and have["type"] == spec["type"] == "categorical":
                have["choices"] = list(dict.fromkeys([*have["choices"], *spec["choices"]]))
            elif have is not spec and have["type"] == spec["type"]:
                have["low"], have["high"] = min(have["low"], spec["low"]), max(have["high"], spec["high"])
                have["log"] = have["log"] or spec["log"]
    return spaces
