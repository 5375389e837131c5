"""Build a search's collaborators from its config through the registries (implementations import lazily)."""

from __future__ import annotations

from trellis.search.config import SearchConfig
from trellis.search.executors.base import Executor
from trellis.search.registry import ALGORITHMS, EARLY_STOPPING, EXECUTORS, resolve
from trellis.search.samplers.base import Sampler
from trellis.search.schedulers.base import Scheduler


def make_sampler(config: SearchConfig) -> Sampler:
    return resolve(ALGORITHMS[config.algorithm.name].sampler).from_config(config)


def make_scheduler(config: SearchConfig) -> Scheduler:
    """The algorithm's scheduler; early stopping replaces FIFO for the algorithms that allow it."""
    ref = EARLY_STOPPING if config.early_stopping is not None else ALGORITHMS[config.algorithm.name].scheduler
    return resolve(ref).from_config(config)


def make_executor(config: SearchConfig) -> Executor:
    return resolve(EXECUTORS[config.executor.kind].executor).from_config(config.executor)
