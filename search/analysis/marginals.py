"""What the search-space page draws of the forest: each parameter's marginal and the most important pairs'.

Computed once with the analysis, in one pass over the trees, and kept as plain data (the forests are not):
each parameter on ``POINTS`` (mean and std over trees), and the ``MAX_PAIRS`` most important pairs on
``PAIR_POINTS``. What is kept depends only on the analysis, never on how many rows a figure shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trellis.search.analysis.fanova import FastFANOVA, Importance, decompose_tree
from trellis.search.analysis.plain import array_from_plain, array_to_plain

POINTS = np.linspace(0.0, 1.0, 81)  # where a parameter's marginal is kept
PAIR_POINTS = POINTS[::4]  # and a pair's, on both axes
MAX_PAIRS = 20  # pairs kept: the most important ones (a figure shows at most as many rows)


@dataclass
class Marginals:
    """Each parameter's marginal (mean and std over trees) on ``points`` and each kept pair's on
    ``pair_points``."""

    names: list[str]
    single: dict[str, tuple[np.ndarray, np.ndarray]]
    pairs: dict[tuple[str, str], np.ndarray]
    points: np.ndarray = field(default_factory=lambda: POINTS.copy())
    pair_points: np.ndarray = field(default_factory=lambda: PAIR_POINTS.copy())

    def marginal(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) of the objective over ``points`` of ``name``'s unit range."""
        return self.single[name]

    def has_pair(self, a: str, b: str) -> bool:
        return (a, b) in self.pairs or (b, a) in self.pairs

    def pair_marginal(self, a: str, b: str) -> np.ndarray:
        """The mean objective on ``pair_points`` x ``pair_points`` (rows: ``a``); KeyError for a pair not kept."""
        if (a, b) in self.pairs:
            return self.pairs[(a, b)]
        return self.pairs[(b, a)].T

    def to_plain(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "single": [[n, array_to_plain(m), array_to_plain(s)] for n, (m, s) in self.single.items()],
            "pairs": [[a, b, array_to_plain(g)] for (a, b), g in self.pairs.items()],
            "points": array_to_plain(self.points),
            "pair_points": array_to_plain(self.pair_points),
        }

    @classmethod
    def from_plain(cls, d: dict[str, Any]) -> Marginals:
        return cls(
            [str(n) for n in d["names"]],
            {str(n): (array_from_plain(mean), array_from_plain(std)) for n, mean, std in d["single"]},
            {(str(a), str(b)): array_from_plain(g) for a, b, g in d["pairs"]},
            array_from_plain(d["points"]),
            array_from_plain(d["pair_points"]),
        )


def most_important_pairs(importance: Importance, limit: int = MAX_PAIRS) -> list[tuple[str, str]]:
    return [pair for pair, _ in sorted(importance.pair_mean.items(), key=lambda kv: -kv[1])[:limit]]


def marginals_of(fan: FastFANOVA, pairs: list[tuple[str, str]]) -> Marginals:
    """One pass over the trees: every parameter's marginal, and each of ``pairs``'."""
    names = fan.names
    index = sorted({(min(names.index(a), names.index(b)), max(names.index(a), names.index(b))) for a, b in pairs})
    curves: list[list[np.ndarray]] = [[] for _ in names]
    grids: dict[tuple[int, int], list[np.ndarray]] = {p: [] for p in index}
    for parts in fan.trees:
        dec = decompose_tree(parts, index, keep_pair_marginals=True)
        for i, ax in enumerate(dec.axes):
            k = np.clip(np.searchsorted(ax.edges, POINTS, side="right") - 1, 0, len(ax.widths) - 1)
            curves[i].append(dec.marginals[i][k])
        for i, j in index:
            ax_i, ax_j = dec.axes[i], dec.axes[j]
            ki = np.clip(np.searchsorted(ax_i.edges, PAIR_POINTS, side="right") - 1, 0, len(ax_i.widths) - 1)
            kj = np.clip(np.searchsorted(ax_j.edges, PAIR_POINTS, side="right") - 1, 0, len(ax_j.widths) - 1)
            grids[(i, j)].append(dec.pair_marginals[(i, j)][np.ix_(ki, kj)])
    single = {n: (np.mean(c, axis=0), np.std(c, axis=0)) for n, c in zip(names, curves)}
    return Marginals(list(names), single, {(names[i], names[j]): np.mean(g, axis=0) for (i, j), g in grids.items()})
