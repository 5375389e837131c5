"""Analyses as plugins: one module and one row each.

A row (``Analysis``) names a pure ``process(table, trials)`` that returns plain data (numbers, strings, lists,
dicts: any cache holds it, and reading it back runs no code), ``figures(data)`` that only draws (plain
plotly.js figure dicts), and ``lines(data)`` that say it in words. The Analyses page, the shared cache and
``trellis analysis`` read this table, so a new analysis shows everywhere with no other file touched:

    from trellis.search.analysis.registry import Analysis, register_analysis

    register_analysis(Analysis("my-analysis", "My analysis", process, figures, lines))

Built-in rows are registered at the end of this module (``trellis.search.analysis.outcomes``); a package
adds its own through the ``trellis.plugins`` entry point group (``trellis.search.registry`` loads them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import pandas as pd

from trellis.search.analysis import outcomes
from trellis.tracking.reader import RunTable

PlainData = dict[str, Any]


@dataclass(frozen=True)
class Analysis:
    name: str  # in URLs and on the command line
    label: str  # what the page and the CLI call it
    process: Callable[[RunTable, pd.DataFrame], PlainData]  # pure: the runs in, plain data out
    figures: Callable[[PlainData], list[dict]]  # draws only
    lines: Callable[[PlainData], list[str]]  # the same in words
    description: str = ""


_ANALYSES: dict[str, Analysis] = {}
ANALYSES: Mapping[str, Analysis] = MappingProxyType(_ANALYSES)


def register_analysis(analysis: Analysis) -> Analysis:
    _ANALYSES[analysis.name] = analysis
    return analysis


def unregister_analysis(name: str) -> None:
    _ANALYSES.pop(name, None)


def run_analysis(name: str, table: RunTable, trials: pd.DataFrame) -> PlainData:
    """The plain data of analysis ``name`` over these runs (KeyError for a name no row has)."""
    return ANALYSES[name].process(table, trials)


register_analysis(Analysis("outcomes", "Trial outcomes", outcomes.process, outcomes.figures, outcomes.lines,
                           "how each search's trials ended, and the time the failed ones took"))  # fmt: skip
