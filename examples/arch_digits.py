"""A CNN on the 8x8 digits images whose layers are the ``architecture`` parameter, as a Trellis trial."""

from __future__ import annotations

from trellis.examples.arch_training import train_architecture
from trellis.search.trial import TrialContext


def train(ctx: TrialContext) -> dict[str, float]:
    return train_architecture(ctx, "digits")
