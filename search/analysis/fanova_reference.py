"""The ``fanova`` package (Hutter et al.'s own implementation), kept as the reference our tests and
benchmark compare ``trellis.search.analysis.fanova`` against. It is slow (minutes for pairs) and needs two shims:
numpy 2 removed ``np.float``, which it still uses, and it wants a ConfigSpace for the bounds.
"""

from __future__ import annotations

import numpy as np

from trellis.extras import require


def load_fanova():
    require("the reference fANOVA engine", "fanova")
    if not hasattr(np, "float"):
        np.float = float  # type: ignore[attr-defined]  # removed in numpy 2; fanova 2.0.x still uses it
    from fanova import fANOVA

    return fANOVA


def unit_config_space(names: list[str]):
    """Every parameter on [0, 1]: the same normalised space ``FastFANOVA`` works in."""
    from ConfigSpace import ConfigurationSpace, UniformFloatHyperparameter

    space = ConfigurationSpace()
    space.add([UniformFloatHyperparameter(n, 0.0, 1.0) for n in names])
    return space


def reference_importance(X: np.ndarray, y: np.ndarray, names: list[str], n_trees: int, seed: int, pairs=()):
    """Singles (and the given pairs) from the package: {name or (a, b): individual importance}."""
    fANOVA = load_fanova()
    f = fANOVA(
        np.asarray(X, float), np.asarray(y, float), config_space=unit_config_space(names), n_trees=n_trees, seed=seed
    )
    out = {}
    for i, name in enumerate(names):
        out[name] = float(f.quantify_importance((i,))[(i,)]["individual importance"])
    for a, b in pairs:
        i, j = names.index(a), names.index(b)
        out[(a, b)] = float(f.quantify_importance((i, j))[(i, j)]["individual importance"])
    return out
