"""Ray Tune's MLflow logger, for real (Ray starts a local one-CPU cluster: slow, so a test of its own)."""

import pandas as pd
import pytest

from tests import foreign
from trellis.tracking.reader import read_runs

pytest.importorskip("ray.tune", reason="ray[tune] is not installed (pip install -e '.[dev]' installs it)")


def test_ray_tune_mlflow_logger_runs(store, tmp_path):
    exp = foreign.ray_tune(store, storage=str(tmp_path / "ray-results"))
    fast, slow = read_runs(store, [exp], use_sql=True), read_runs(store, [exp], use_sql=False)
    pd.testing.assert_frame_equal(fast.runs, slow.runs)
    runs = fast.runs
    assert len(runs) == 3 and set(runs["kind"]) == {"run"}
    assert sorted(runs["params.lr"]) == [0.001, 0.01, 0.1] and "lr" in fast.numeric_params
    assert "lr" in fast.log_params  # two decades
    assert (runs["metrics.score"].round(6) == (runs["params.lr"] * 3).round(6)).all()
