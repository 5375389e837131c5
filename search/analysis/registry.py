"""Analyses as plugins: one module and one row each.

A row (``Analysis``) names a pure ``process(table, trials, **inputs)`` that returns plain data (numbers,
strings, lists, dicts: any cache holds it, and reading it back runs no code), ``figures(data)`` that only
draws (plain plotly.js figure dicts), and ``lines(data)`` that say it in words; ``inputs`` names what it may
be asked for (``metric``, ...), each optional: left out, the analysis picks (the recorded objective, say).
The Analyses page, the shared cache and ``trellis analysis`` read this table, so a new analysis shows
everywhere with no other file touched:

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

from trellis.search.analysis import outcomes, pareto_analysis, space_summary
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
    inputs: tuple[str, ...] = ()  # keyword inputs ``process`` accepts, each optional


_ANALYSES: dict[str, Analysis] = {}
ANALYSES: Mapping[str, Analysis] = MappingProxyType(_ANALYSES)


def register_analysis(analysis: Analysis) -> Analysis:
    _ANALYSES[analysis.name] = analysis
    return analysis


def unregister_analysis(name: str) -> None:
    _ANALYSES.pop(name, None)


def run_analysis(
    name: str, table: RunTable, trials: pd.DataFrame, inputs: Mapping[str, Any] | None = None
) -> PlainData:
    """The plain data of analysis ``name`` over these runs (KeyError for a name no row has; ValueError for an
    input the row does not take)."""
    analysis = ANALYSES[name]
    given = {k: v for k, v in (inputs or {}).items() if v is not None}
    unknown = sorted(set(given) - set(analysis.inputs))
    if unknown:
        takes = ", ".join(analysis.inputs) or "none"
        raise ValueError(f"analysis {name!r} takes no input {unknown[0]!r} (it takes: {takes})")
    return analysis.process(table, trials, **given)


register_analysis(Analysis("outcomes", "Trial outcomes", outcomes.process, outcomes.figures, outcomes.lines,
                           "how each search's trials ended, and the time the failed ones took"))  # fmt: skip
register_analysis(Analysis("space", "Search space: importance and suggested bounds", space_summary.process,
                           space_summary.figures, space_summary.lines,
                           "which parameters matter (fANOVA, singles and pairs) and where to search next",
                           inputs=("metric", "direction")))  # fmt: skip
register_analysis(Analysis("pareto", "Trade-offs: Pareto front and hypervolume", pareto_analysis.process,
                           pareto_analysis.figures, pareto_analysis.lines,
                           "the non-dominated trials of several objectives, each search's hypervolume as it ran",
                           inputs=("objectives", "reference")))  # fmt: skip
