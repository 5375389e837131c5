import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric

from trellis.tracking.histories import read_histories, reservoir_indices


def test_reservoir_keeps_ends_size_and_is_uniform():
    rng = np.random.default_rng(0)
    idx = reservoir_indices(10_000, 100, rng)
    assert len(idx) == 100 and idx[0] == 0 and idx[-1] == 9_999 and np.all(np.diff(idx) > 0)
    counts = np.zeros(10, dtype=int)  # over many draws every interior decile is kept equally often
    for seed in range(200):
        counts += np.histogram(
            reservoir_indices(10_000, 52, np.random.default_rng(seed))[1:-1], bins=10, range=(1, 9999)
        )[0]
    assert counts.min() > 0.85 * counts.mean() and counts.max() < 1.15 * counts.mean()
    assert list(reservoir_indices(5, 10, rng)) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("use_sql", [True, False])
def test_histories_capped_per_curve(store, use_sql):
    client = MlflowClient(tracking_uri=store)
    exp = client.create_experiment("h")
    run = client.create_run(exp).info.run_id
    short = client.create_run(exp).info.run_id
    client.log_batch(run, metrics=[Metric("loss", 1.0 / (s + 1), 1000 + s, s) for s in range(5000)])
    client.log_batch(short, metrics=[Metric("loss", float("nan"), 5, 0), Metric("loss", 2.0, 6, 1)])
    df = read_histories(store, [run, short], ["loss"], max_points=300, use_sql=use_sql)
    long_curve = df[df.run_id == run]
    assert len(long_curve) == 300
    assert long_curve.step.iloc[0] == 0 and long_curve.step.iloc[-1] == 4999
    assert np.allclose(long_curve.value, 1.0 / (long_curve.step + 1))
    short_curve = df[df.run_id == short]
    assert len(short_curve) == 2 and np.isnan(short_curve.value.iloc[0])
    again = read_histories(store, [run, short], ["loss"], max_points=300, use_sql=use_sql)
    assert again.equals(df)  # seeded: a redraw shows the same points
