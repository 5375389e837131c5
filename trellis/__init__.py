"""Trellis: hyperparameter searches logged to MLflow, and a Dash app to understand them.

The Python API (``import trellis``; each name is imported on first use, so ``import trellis`` stays light):

- ``TrialContext``: what a trial function receives: ``def train(ctx: trellis.TrialContext): ...``
- ``load_config(path, overrides=None)`` / ``parse_config(mapping)``: a validated ``SearchConfig``
  (``ConfigError`` lists every problem as ``key.path: reason``)
- ``run_search(config, overrides=None, on_progress=None)``: run a search in this process (a notebook, a
  script); ``config`` is a ``SearchConfig``, a path to a YAML/JSON file or a mapping; returns a ``SearchResult``
- ``read_runs(experiment, tracking_uri=...)``: an experiment's runs as a pandas DataFrame
- ``create_app(tracking_uri, ...)``: the Dash app, for WSGI embedding (``create_app(uri).server``)
- ``register_algorithm(AlgorithmSpec(...))`` / ``register_executor(ExecutorSpec(...))``: plugins

Trial functions run in worker processes, so they must live in a module (``mymodule:train``), not in a
notebook cell. The repository's folders install as ``trellis.app``, ``trellis.search``, ``trellis.tracking``,
``trellis.layouts`` and ``trellis.examples``; the command line is ``trellis.cli``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# name -> "module:attribute", imported on first use (PEP 562)
_API = {
    "TrialContext": "trellis.search.trial:TrialContext",
    "TrialStopped": "trellis.search.trial:TrialStopped",
    "SearchConfig": "trellis.search.config:SearchConfig",
    "ConfigError": "trellis.search.config:ConfigError",
    "load_config": "trellis.search.config:load_config",
    "parse_config": "trellis.search.config:parse_config",
    "SearchResult": "trellis.search.engine.records:SearchResult",
    "run_search": "trellis.api:run_search",
    "read_runs": "trellis.api:read_runs",
    "create_app": "trellis.app.factory:create_app",
    "AlgorithmSpec": "trellis.search.registry:AlgorithmSpec",
    "ExecutorSpec": "trellis.search.registry:ExecutorSpec",
    "register_algorithm": "trellis.search.registry:register_algorithm",
    "register_executor": "trellis.search.registry:register_executor",
    "MissingExtra": "trellis.extras:MissingExtra",
}

__all__ = [
    "AlgorithmSpec",
    "ConfigError",
    "ExecutorSpec",
    "MissingExtra",
    "SearchConfig",
    "SearchResult",
    "TrialContext",
    "TrialStopped",
    "__version__",
    "create_app",
    "load_config",
    "parse_config",
    "read_runs",
    "register_algorithm",
    "register_executor",
    "run_search",
]

if TYPE_CHECKING:  # pragma: no cover - for editors and type checkers
    from trellis.api import read_runs, run_search
    from trellis.app.factory import create_app
    from trellis.extras import MissingExtra
    from trellis.search.config import ConfigError, SearchConfig, load_config, parse_config
    from trellis.search.engine.records import SearchResult
    from trellis.search.registry import AlgorithmSpec, ExecutorSpec, register_algorithm, register_executor
    from trellis.search.trial import TrialContext, TrialStopped


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("trellis-hpo")
        except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
            return "0+unknown"
    target = _API.get(name)
    if target is None:
        raise AttributeError(f"module 'trellis' has no attribute {name!r}")
    module, attribute = target.split(":")
    value = getattr(import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
