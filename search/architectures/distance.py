"""A structural distance between architectures: an edit distance over their layer sequences.

Inserting or deleting a layer costs 1. Substituting a layer costs by type (``TYPE_COST``, below 1 for
related types such as conv and pool) or, between layers of the same type, by how far their values are
apart (at most ``SAME_TYPE_MAX``: log2 ratios of widths, differences of kernels and rates). The costs are
symmetric and zero only between equal layers, so the distance is zero on identical architectures,
symmetric, and grows with the number of layers edited. A simplification of OTMANN (REMAP §5.3), cheap
enough for all pairs of a few hundred models.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from trellis.search.architectures.layers import Activation, Architecture, Conv, Dense, Dropout, Layer, Pool

INDEL_COST = 1.0
SAME_TYPE_MAX = 0.5
TYPE_COST: dict[frozenset[str], float] = {
    frozenset({"conv", "pool"}): 0.8,
    frozenset({"conv", "dense"}): 0.8,  # both learn weights
    frozenset({"act", "bn"}): 0.6,
    frozenset({"act", "dropout"}): 0.7,
    frozenset({"bn", "dropout"}): 0.6,
}


def _log_gap(a: int, b: int, octaves: float = 4.0) -> float:
    return min(abs(math.log2(a / b)) / octaves, 1.0)


def layer_cost(a: Layer, b: Layer) -> float:
    """Cost of substituting ``a`` by ``b`` (symmetric, 0 only when equal, at most 1)."""
    if a == b:
        return 0.0
    if a.kind != b.kind:
        return TYPE_COST.get(frozenset({a.kind, b.kind}), 1.0)
    if isinstance(a, Conv) and isinstance(b, Conv):
        gap = 0.5 * _log_gap(a.channels, b.channels) + 0.5 * abs(a.kernel - b.kernel) / 6
    elif isinstance(a, Dense) and isinstance(b, Dense):
        gap = _log_gap(a.units, b.units)
    elif isinstance(a, Dropout) and isinstance(b, Dropout):
        gap = abs(a.rate - b.rate)
    elif isinstance(a, Pool) and isinstance(b, Pool):
        gap = abs(a.size - b.size) / 2
    elif isinstance(a, Activation) and isinstance(b, Activation):
        gap = 0.6
    else:
        gap = 1.0
    return SAME_TYPE_MAX * min(max(gap, 0.05), 1.0)


def structural_distance(a: Architecture, b: Architecture) -> float:
    """Edit distance between the layer sequences (Wagner-Fischer with the costs above)."""
    x, y = a.layers, b.layers
    prev = [j * INDEL_COST for j in range(len(y) + 1)]
    for i in range(1, len(x) + 1):
        row = [i * INDEL_COST] + [0.0] * len(y)
        for j in range(1, len(y) + 1):
            row[j] = min(
                prev[j] + INDEL_COST,
                row[j - 1] + INDEL_COST,
                prev[j - 1] + layer_cost(x[i - 1], y[j - 1]),
            )
        prev = row
    return float(prev[-1])


def distance_matrix(archs: Sequence[Architecture]) -> np.ndarray:
    """All pairwise distances (symmetric, zero diagonal): the input of an MDS projection."""
    n = len(archs)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = out[j, i] = structural_distance(archs[i], archs[j])
    return out
