"""Synthetic trials built to trigger (or not) each search-diagnosis rule: milliseconds each, no torch."""

from __future__ import annotations

import math

from trellis.search.trial import TrialContext


def slow_starter(ctx: TrialContext) -> dict[str, float]:
    """loss = (1 - x) + 2.5x / epoch for x in [0, 1]: the larger x, the worse at epochs 1 and 2 (1 + 1.5x,
    1 + 0.25x) and the better from epoch 3 on (1 - x/6 there, 1 - 0.72x at epoch 9)."""
    x = float(ctx.params["x"])
    for epoch in ctx.steps():
        ctx.report(epoch, loss=(1.0 - x) + 2.5 * x / epoch)
    return {}


def rough(ctx: TrialContext) -> dict[str, float]:
    """A loss with no structure a model can learn: a hash of the parameters, in [0, 1)."""
    x, y = float(ctx.params["x"]), float(ctx.params["y"])
    value = math.sin(x * 12989.8 + y * 78233.0) * 43758.5453
    loss = value - math.floor(value)
    for epoch in ctx.steps():
        ctx.report(epoch, loss=loss)
    return {}


def fragile(ctx: TrialContext) -> dict[str, float]:
    """The quadratic bowl, but raises for x > 0.5 (an out-of-memory error, say) after reporting once."""
    x, y = float(ctx.params["x"]), float(ctx.params["y"])
    ctx.report(1, loss=(x - 0.3) ** 2 + (y + 0.5) ** 2)
    if x > 0.5:
        raise RuntimeError("CUDA out of memory (synthetic)")
    return {}
