"""``import trellis``: what users write against, from a notebook or a script."""

from __future__ import annotations

import copy

import pytest

import trellis
from tests.conftest import BASE


def test_import_trellis_is_light_and_lists_its_api():
    assert set(trellis.__all__) <= set(dir(trellis)) | {"__version__"}
    assert trellis.__version__[0].isdigit()
    with pytest.raises(AttributeError):
        trellis.no_such_name  # noqa: B018


def test_run_a_search_from_python_and_read_its_runs_as_a_frame(store: str):
    raw = copy.deepcopy(BASE)
    raw["tracking"] = {"uri": store, "experiment": "from-python"}
    result = trellis.run_search(raw, {"termination.max_trials": 4})
    assert result.state == "completed" and result.progress.completed == 4
    runs = trellis.read_runs("from-python", tracking_uri=store)
    assert len(runs) == 4 and set(runs["status"]) == {"FINISHED"}
    best = runs["metrics.loss"].min()
    assert best == pytest.approx(result.progress.best_value)
    assert {"params.x", "params.y", "params.shape"} <= set(runs.columns)
    assert len(trellis.read_runs("from-python", tracking_uri=store, trials_only=False)) == 5  # with the search run


def test_config_errors_name_the_key(store: str):
    raw = copy.deepcopy(BASE)
    raw["space"]["x"]["low"] = "low"
    with pytest.raises(trellis.ConfigError, match=r"space\.x\.low"):
        trellis.run_search(raw)
    with pytest.raises(LookupError, match="no experiment 'nope'"):
        trellis.read_runs("nope", tracking_uri=store)


def test_overrides_leave_the_callers_mapping_as_it_was(store: str):
    raw = copy.deepcopy(BASE)
    raw["tracking"] = {"uri": store, "experiment": "untouched"}
    before = copy.deepcopy(raw)
    trellis.run_search(raw, {"termination.max_trials": 2, "tracking.experiment": "overridden"})
    assert raw == before
    assert len(trellis.read_runs("overridden", tracking_uri=store)) == 2
