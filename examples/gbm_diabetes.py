"""Gradient-boosted trees on scikit-learn's bundled diabetes data (442 patients, 10 features; no download), as a
Trellis function trial: a second real workload that trains in well under a second and where the
hyperparameters matter without saturating. Each budget unit is ``ROUNDS`` more boosting rounds; the objective is
the validation R² (maximise) on a fixed quarter of the data.

A trial resumed past its start retrains the earlier rounds (seconds at most, the same trees: the fit is seeded)
rather than keeping a checkpoint.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from trellis.search.trial import TrialContext

ROUNDS = 40  # boosting rounds per budget unit


@lru_cache(maxsize=1)
def split(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split

    x, y = load_diabetes(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.25, random_state=seed)
    return x_train, x_val, y_train, y_val


def train(ctx: TrialContext) -> dict[str, float]:
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.metrics import r2_score

    p = ctx.params
    x_train, x_val, y_train, y_val = split()
    model = HistGradientBoostingRegressor(
        learning_rate=float(p.get("learning_rate", 0.1)),
        max_leaf_nodes=int(p.get("max_leaf_nodes", 31)),
        min_samples_leaf=int(p.get("min_samples_leaf", 20)),
        l2_regularization=float(p.get("l2_regularization", 0.0)),
        max_features=float(p.get("max_features", 1.0)),
        max_bins=int(p.get("max_bins", 255)),
        early_stopping=False,
        warm_start=True,
        random_state=0 if ctx.seed is None else ctx.seed % 2**31,
    )
    r2 = math.nan
    for step in range(1, ctx.budget_stop + 1):
        model.set_params(max_iter=ROUNDS * step)
        model.fit(x_train, y_train)
        if step > ctx.budget_start:
            r2 = float(r2_score(y_val, model.predict(x_val)))
            ctx.report(step, val_r2=r2)
    return {"rounds": float(ROUNDS * ctx.budget_stop)}
