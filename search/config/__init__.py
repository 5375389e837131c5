"""Search configuration: one YAML or JSON file that describes a whole search, validated up front.

Every problem is reported with the key path where it sits (``space.lr.low``) and the reason, and
nothing runs until the file is clean. See ``docs/config.md`` for the reference. ``model`` holds the
dataclasses, ``parse`` the entry points; each section has its own parser module.
"""

from trellis.search.config.model import (
    AlgorithmConfig,
    Budget,
    ConfigError,
    EarlyStopping,
    ExecutorConfig,
    Objective,
    SearchConfig,
    Termination,
    TrackingConfig,
    TrialSpec,
)
from trellis.search.config.parse import load_config, parse_config

__all__ = [
    "AlgorithmConfig",
    "Budget",
    "ConfigError",
    "EarlyStopping",
    "ExecutorConfig",
    "Objective",
    "SearchConfig",
    "Termination",
    "TrackingConfig",
    "TrialSpec",
    "load_config",
    "parse_config",
]
