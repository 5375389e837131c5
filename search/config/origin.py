"""``origin``: where an architecture search's models come from (an ablation or variation of one model).

``origin: {model: RUN_ID, kind: ablation, param: architecture, changes: {ARCH_TEXT: "removed dense(64) at 2"}}``
tags the search with the model it started from and each trial with the change that made its architecture, so
the model overview can show children under their parent. Written by the model overview's launch; a user may
write it too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trellis.search.config.problems import Problems

KINDS = ("ablation", "variation")
MAX_CHANGES = 64
MAX_DESCRIPTION = 200


@dataclass(frozen=True)
class Origin:
    model: str  # the run id of the model the children come from
    kind: str  # ablation | variation
    param: str  # the architecture parameter the changes apply to
    changes: tuple[tuple[str, str], ...]  # (child architecture text, what changed)

    def change_of(self, params: Mapping[str, Any]) -> str | None:
        """The change that made this trial's architecture, or None (not one of the listed children)."""
        value = params.get(self.param)
        return next((what for text, what in self.changes if text == value), None)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "kind": self.kind, "param": self.param, "changes": dict(self.changes)}


def parse_origin(raw: Any, space_names: list[str] | None, problems: Problems) -> Origin | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        problems.add("origin", f"must be a mapping, got {type(raw).__name__}")
        return None
    before = len(problems.items)
    for unknown in sorted(set(raw) - {"model", "kind", "param", "changes"}):
        problems.add(f"origin.{unknown}", "unknown key (allowed: changes, kind, model, param)")
    model, kind, param = raw.get("model"), raw.get("kind"), raw.get("param", "architecture")
    if not isinstance(model, str) or not model.strip():
        problems.add("origin.model", "required: the run id of the model the children come from")
    if kind not in KINDS:
        problems.add("origin.kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
    if not isinstance(param, str) or (space_names is not None and param not in space_names):
        problems.add("origin.param", f"{param!r} is not a parameter of the space")
    changes = raw.get("changes", {})
    if not isinstance(changes, Mapping) or not changes:
        problems.add("origin.changes", "must be a non-empty mapping of child architecture to what changed")
        changes = {}
    elif len(changes) > MAX_CHANGES:
        problems.add("origin.changes", f"at most {MAX_CHANGES} children, got {len(changes)}")
    for text, what in changes.items():
        if not isinstance(text, str) or not isinstance(what, str) or len(what) > MAX_DESCRIPTION:
            problems.add(
                "origin.changes",
                f"each entry maps an architecture text to a description of at most "
                f"{MAX_DESCRIPTION} characters, got {str(text)[:40]!r}",
            )
            break
    if len(problems.items) > before:
        return None
    return Origin(model.strip(), kind, param, tuple((str(t), str(w)) for t, w in changes.items()))


def parse_queue(text: object, n_children: int) -> list[int] | None:
    """A children search's queue (``trellis.origin.queue``: JSON positions in ``origin.changes``, in training
    order) as that list, or None when it is not one."""
    if not isinstance(text, str) or not text:
        return None
    try:
        raw = json.loads(text)
    except ValueError:
        return None
    if not isinstance(raw, list) or not all(type(v) is int and 0 <= v < n_children for v in raw):
        return None
    return raw
