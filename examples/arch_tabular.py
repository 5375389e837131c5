"""An MLP on scikit-learn's breast-cancer table (30 features, 2 classes) whose layers are the
``architecture`` parameter (``{type: architecture, input: breast_cancer}``), as a Trellis trial."""

from __future__ import annotations

from trellis.examples.arch_training import train_architecture
from trellis.search.trial import TrialContext


def train(ctx: TrialContext) -> dict[str, float]:
    return train_architecture(ctx, "breast_cancer")
