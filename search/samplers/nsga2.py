"""NSGA-II through Optuna's ask/tell interface: a genetic algorithm that keeps the trials of best non-dominated
rank (and, among equals, those in the least crowded part of the front). For several objectives; with one it
is a plain genetic algorithm. Everything but Optuna's sampler is TPE's wrapper (``tpe.TPESampler``)."""

from __future__ import annotations

from typing import Any

from trellis.search.samplers.tpe import TPESampler


class NSGA2Sampler(TPESampler):
    name = "nsga2"

    def _optuna_sampler(self, seed: int | None, settings: dict[str, Any]) -> Any:
        import optuna

        return optuna.samplers.NSGAIISampler(seed=seed, population_size=int(settings.get("population_size", 20)))
