"""An ablation or a variation of one model, as a search config an agent runs (REMAP §5.4).

The children are the parent's architecture with one change each (``trellis.search.architectures.generators``); every
other parameter is fixed at the model's own value so only the architecture differs; grid search trains each
child once, in order, to the parent search's full budget. The config's ``origin`` names the model and each
child's change, so its trials carry them as tags (``trellis.origin.*``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import numpy as np

from trellis.search.architectures.generators import CHANGES, ablations, variations
from trellis.search.architectures.layers import ArchitectureError, parse_architecture
from trellis.search.architectures.param import ArchitectureParam
from trellis.search.config import SearchConfig
from trellis.search.engine.resume import typed_params

KINDS = ("ablation", "variation")
MAX_VARIATIONS = 32


class ChildrenError(ValueError):
    """Why no children can be made from this model (the message is shown as is)."""


def allowed_changes(changes: Any, layers: Any) -> tuple[Collection[str] | Mapping[int, Collection[str]], str | None]:
    """What a variation may change, from the form: the change types (at least one) and
    the layer indices (``"0, 2"``; empty: every layer); or a message saying what is wrong."""
    if changes is None:
        changes = list(CHANGES)
    if not isinstance(changes, list) or not changes or not set(changes) <= set(CHANGES):
        return CHANGES, f"changes: tick at least one of {', '.join(CHANGES)}"
    text = (layers or "").strip() if isinstance(layers, str | type(None)) else None
    if text is None:
        return CHANGES, "layers: a comma-separated list of layer numbers"
    if not text:
        return tuple(changes), None
    try:
        indices = sorted({int(part) for part in text.replace(" ", "").split(",") if part})
    except ValueError:
        return CHANGES, f"layers: {text[:40]!r} is not a comma-separated list of layer numbers"
    if not indices or min(indices) < 0 or max(indices) > 64:
        return CHANGES, "layers: numbers from 0 (the first layer) up"
    return {i: tuple(changes) for i in indices}, None


def _parses(text: str) -> bool:
    try:
        parse_architecture(text)
    except ArchitectureError:
        return False
    return True


def architecture_param(config: SearchConfig) -> ArchitectureParam:
    """The search's architecture parameter (the first, when several)."""
    found = [p for p in config.space if isinstance(p, ArchitectureParam)]
    if not found:
        raise ChildrenError(f"search {config.name!r} has no architecture parameter")
    return found[0]


def children_config(
    parent: SearchConfig,
    run_id: str,
    recorded_params: dict[str, str],
    kind: str,
    n: int = 8,
    seed: int = 0,
    allowed: Collection[str] | Mapping[int, Collection[str]] = CHANGES,
    exclude: Collection[str] = (),
) -> dict[str, Any]:
    """The raw config of the search that trains the model's children (validate it as any launch). ``exclude``:
    architectures already trained or queued as its children (not made again)."""
    if kind not in KINDS:
        raise ChildrenError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    param = architecture_param(parent)
    text = recorded_params.get(param.name)
    if text is None:
        raise ChildrenError(f"run {run_id[:8]} has no {param.name!r} parameter")
    try:
        arch = parse_architecture(text)
    except ArchitectureError as exc:
        raise ChildrenError(f"run {run_id[:8]}: {exc}") from None
    # The children are the listed choices: drop them from the space while generating (they are not yet valid).
    open_param = ArchitectureParam(
        param.name, input=param.input, classes=param.classes, max_layers=param.max_layers, max_params=param.max_params
    )
    if isinstance(allowed, Mapping) and allowed and max(allowed) >= len(arch):
        last = f"0-{len(arch) - 1}" if len(arch) else "none"
        raise ChildrenError(f"layers: this model has {len(arch)} layers (numbers {last}), got {max(allowed)}")
    skip = {parse_architecture(t) for t in exclude if isinstance(t, str) and _parses(t)}
    if kind == "ablation":
        made = [(child, change) for child, change in ablations(arch, open_param) if child not in skip]
    else:
        count = min(max(int(n), 1), MAX_VARIATIONS)
        drawn = variations(arch, count + len(skip), open_param, np.random.default_rng(seed), allowed or CHANGES)
        made = [(child, change) for child, change in drawn if child not in skip][:count]
    if not made:
        already = " beyond the children it already has" if skip else ""
        raise ChildrenError(f"no valid {kind} of this model ({arch.describe()}){already}: nothing to train")
    values = typed_params(parent.space, recorded_params)
    raw = parent.to_dict()
    space = raw["space"]
    for p in parent.space:
        if p.name == param.name:
            space[p.name] = {**open_param.to_dict(), "choices": [child.to_text() for child, _ in made]}
        elif p.name in values:  # what the model was trained with (no condition: it was active)
            space[p.name] = {"type": "fixed", "value": values[p.name]}
        else:  # inactive for this model: not part of its children
            space.pop(p.name)
    budget_max = raw["budget"]["max"]
    raw.update(
        name=f"{parent.name}-{kind}-{run_id[:8]}",
        algorithm={"name": "grid", "seed": seed},
        budget={**raw["budget"], "min": budget_max},
        termination={"max_trials": len(made)},
        origin={
            "model": run_id,
            "kind": kind,
            "param": param.name,
            "changes": {child.to_text(): change.description for child, change in made},
        },
    )
    raw.pop("relaunched_from", None)
    raw.pop("early_stopping", None)
    raw.pop("warm_start", None)
    return raw
