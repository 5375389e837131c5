"""The run reader: SQL path equals the MLflow-client path; foreign and dirty experiments read right."""

import contextlib
import math

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from tests import foreign
from tests.conftest import BASE, module_store
from trellis.search.config import parse_config
from trellis.search.engine.runner import run_search
from trellis.tracking.reader import read_runs


@pytest.fixture(scope="module")
def populated(tmp_path_factory):
    """One SQLite store with a Trellis search and experiments written by other tools."""
    tmp, uri = module_store(tmp_path_factory, "reader")
    with contextlib.chdir(tmp):
        config = parse_config(
            {
                **BASE,
                "space": {**BASE["space"], "lr": {"low": 1e-4, "high": 1e-1, "log": True}},
                "termination": {"max_trials": 6},
                "tracking": {"uri": uri, "experiment": "trellis"},
            }
        )
        search = run_search(config)
        ids = {
            "trellis": search.experiment_id,
            "flat": foreign.flat_runs(uri),
            "optuna": foreign.optuna_callback(uri),
            "sklearn": foreign.sklearn_gridsearch(uri),
        }
        ids["dirty"], made = foreign.dirty(uri)
    return uri, ids, search, made


def test_sql_path_equals_client_path(populated):
    uri, ids, _, _ = populated
    fast = read_runs(uri, list(ids.values()), use_sql=True)
    slow = read_runs(uri, list(ids.values()), use_sql=False)
    pd.testing.assert_frame_equal(fast.runs, slow.runs)
    assert (fast.params, fast.metrics, fast.numeric_params, fast.log_params, fast.skipped) == (
        slow.params,
        slow.metrics,
        slow.numeric_params,
        slow.log_params,
        slow.skipped,
    )
    assert len(fast.runs) == 1 + 6 + 4 + 8 + 1 + 6 + 5


def test_trellis_search_lineage_and_types(populated):
    uri, ids, search, _ = populated
    table = read_runs(uri, [ids["trellis"]])
    runs = table.runs
    assert (runs["kind"] == "search").sum() == 1 and (runs["kind"] == "trial").sum() == 6
    trials = table.trials
    assert set(trials["search_id"]) == {search.search_id}
    assert sorted(trials["trial"].tolist()) == list(range(6))
    assert set(trials["end_reason"]) == {"completed"} and set(trials["algorithm"]) == {"random"}
    assert {"x", "y", "lr"} <= table.numeric_params and "shape" not in table.numeric_params
    assert trials["params.shape"].isin(["bowl", "ridge", "flat"]).all()
    assert "lr" in table.log_params and "x" not in table.log_params  # from the search's own space
    assert set(table.params) == {"x", "y", "shape", "lr"}  # the parent's own params are not hyperparameters
    assert np.allclose(trials["metrics.loss"].min(), search.progress.best_value)


def test_flat_runs_are_grouped_by_experiment_and_log_scale_inferred(populated):
    uri, ids, _, _ = populated
    table = read_runs(uri, [ids["flat"]])
    assert len(table.runs) == 4 and set(table.runs["kind"]) == {"run"}
    assert set(table.runs["search_id"]) == {f"experiment:{ids['flat']}"}
    assert "lr" in table.log_params  # four decades, inferred
    assert "epochs" in table.numeric_params and "model" not in table.numeric_params
    assert sorted(table.runs["metrics.acc"].round(4)) == [0.7, 0.71, 0.72, 0.73]


def test_optuna_callback_runs(populated):
    uri, ids, _, _ = populated
    table = read_runs(uri, [ids["optuna"]])
    assert len(table.runs) == 8 and {"x", "k"} <= set(table.params)
    assert "x" in table.numeric_params and "x" in table.log_params
    assert table.runs["metrics.score"].notna().all()


def test_sklearn_autolog_gridsearch_parent_and_children(populated):
    uri, ids, _, _ = populated
    table = read_runs(uri, [ids["sklearn"]])
    parent = table.runs[table.runs["kind"] == "search"]
    children = table.trials
    assert len(parent) == 1 and len(children) == 6
    assert set(children["search_id"]) == {parent["run_id"].iloc[0]}
    assert sorted(children["params.C"].unique()) == [0.1, 1.0, 10.0]
    assert set(children["params.kernel"]) == {"linear", "rbf"}


def test_dirty_data_is_read_and_what_is_odd_is_counted(populated):
    uri, ids, _, made = populated
    table = read_runs(uri, [ids["dirty"]])
    runs = table.runs.set_index("run_name")
    assert len(runs) == 5  # the deleted run is left out ...
    assert table.skipped["deleted runs"] == 1  # ... and counted
    assert table.skipped["non-finite acc"] == 3  # NaN, +inf, -inf
    assert set(runs["status"]) == {"FINISHED", "FAILED", "RUNNING"}
    assert math.isnan(runs.loc["dirty-1", "metrics.acc"]) and math.isinf(runs.loc["dirty-2", "metrics.acc"])
    assert math.isnan(runs.loc["dirty-1", "params.units"])  # missing param
    assert runs.loc["dirty-0", "params.note"] == made["long_value"][:6000]
    assert runs.loc["dirty-3", "params.note"] == "ünïcødé 3 🚀"
    assert "units" in table.numeric_params and "units" in table.log_params  # 1 .. 256, all positive
    assert "note" not in table.numeric_params


def test_unknown_experiment_list_is_empty(populated):
    uri, _, _, _ = populated
    assert read_runs(uri, []).runs.empty
    assert MlflowClient(tracking_uri=uri).get_experiment_by_name("trellis") is not None


def _same_tables(a, b):
    pd.testing.assert_frame_equal(a.runs, b.runs)
    assert (a.params, a.metrics, a.numeric_params, a.log_params, a.int_params, a.skipped, a.declared_spaces) == (
        b.params,
        b.metrics,
        b.numeric_params,
        b.log_params,
        b.int_params,
        b.skipped,
        b.declared_spaces,
    )


def test_columnar_read_equals_the_row_read(populated, monkeypatch, caplog):
    """SQLite through ADBC (Arrow columns) and through SQLAlchemy's rows: the same table."""
    from trellis.tracking import stores

    uri, ids, _, _ = populated
    assert stores.store_for(uri).adbc_connect() is not None  # the columnar driver is installed: it is used
    columnar = read_runs(uri, list(ids.values()))
    assert "columnar read failed" not in caplog.text
    monkeypatch.setattr(stores.SqliteStore, "adbc_connect", lambda self: None)
    rows = read_runs(uri, list(ids.values()))
    _same_tables(columnar, rows)


def test_postgres_store_reads_columnar_and_by_rows_alike(pg_uri, tmp_path, monkeypatch, caplog):
    from tests.conftest import BASE
    from trellis.tracking import stores

    with contextlib.chdir(tmp_path):
        config = parse_config({**BASE, "termination": {"max_trials": 4}, "tracking": {"uri": pg_uri}})
        search = run_search(config)
        dirty, _ = foreign.dirty(pg_uri)
    exps = [search.experiment_id, dirty]
    assert stores.store_for(pg_uri).adbc_connect() is not None
    columnar = read_runs(pg_uri, exps)
    assert "columnar read failed" not in caplog.text
    monkeypatch.setattr(stores.PostgresStore, "adbc_connect", lambda self: None)
    _same_tables(columnar, read_runs(pg_uri, exps))
    assert len(columnar.trials) == 4 + len(read_runs(pg_uri, [dirty]).trials)
