"""Collecting config problems as ``(key.path, reason)`` pairs, and the checks every section shares."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

MAX_REASON = 300  # characters of one problem's reason


class Problems:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, path: str, reason: str) -> None:
        """A problem at ``path``; a reason quoting a long value is shortened (one line, never a wall of text)."""
        if len(reason) > MAX_REASON:
            reason = reason[: MAX_REASON - 1] + "…"
        self.items.append((path, reason))


def section(raw: Mapping[str, Any], key: str, problems: Problems, allowed: set[str]) -> dict[str, Any]:
    value = raw.get(key, {})
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.add(key, f"must be a mapping, got {type(value).__name__}")
        return {}
    for unknown in sorted(set(value) - allowed):
        problems.add(f"{key}.{unknown}", f"unknown key (allowed: {', '.join(sorted(allowed))})")
    return value


def number(
    section: Mapping[str, Any],
    key: str,
    path: str,
    problems: Problems,
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
