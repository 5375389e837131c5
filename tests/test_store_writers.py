"""The fast SQL writer and the MlflowClient writer must leave the same runs behind."""

import math

import pytest

from tests.conftest import child_runs
from trellis.search.engine.runner import SearchRunner

VOLATILE = ("trellis.time.", "trellis.worker", "trellis.checkpoint", "trellis.search_id", "mlflow.parentRunId")


def _snapshot(client, search_id):
    out = []
    for run in child_runs(client, search_id):
        tags = {k: v for k, v in run.data.tags.items() if not k.startswith(VOLATILE)}
        histories = {}
        for key in run.data.metrics:
            hist = client.get_metric_history(run.info.run_id, key)
            histories[key] = sorted((m.step, repr(m.value)) for m in hist)
        latest = {k: repr(v) for k, v in run.data.metrics.items()}
        out.append((run.info.status, run.info.run_name, run.data.params, tags, histories, latest))
    return out


@pytest.mark.parametrize("trial", ["trellis.examples.synthetic:quadratic", "trellis.examples.synthetic:odd_values"])
def test_sql_writer_matches_client_writer(make_config, client, trial):
    config = make_config(
        trial={"function": trial},
        space={"x": {"low": 0.0, "high": 1.0}, "shape": "bowl"},
        termination={"max_trials": 5},
        executor={"workers": 1},
        budget={"max": 3},
    )
    via_sql = SearchRunner(config, prefer_sql=True)
    via_client = SearchRunner(config.replace(name="client"), prefer_sql=False)
    assert type(via_sql.recorder.writer).__name__ == "SqlWriter"
    assert type(via_client.recorder.writer).__name__ == "ClientWriter"
    a, b = via_sql.run(), via_client.run()
    snap_a, snap_b = _snapshot(client, a.search_id), _snapshot(client, b.search_id)
    assert len(snap_a) == 5 and snap_a == snap_b
    # The parent runs agree too (best-so-far curve, counts).
    pa, pb = client.get_run(a.search_id), client.get_run(b.search_id)
    assert pa.info.status == pb.info.status == "FINISHED"
    assert pa.data.metrics == pb.data.metrics and pa.data.params == pb.data.params
    if trial.endswith("odd_values"):
        metrics = client.get_run(child_runs(client, a.search_id)[0].info.run_id).data.metrics
        assert math.isinf(metrics["neg"]) or metrics["neg"] < -1e300
        weird = [m.value for m in client.get_metric_history(child_runs(client, a.search_id)[0].info.run_id, "weird")]
        assert any(math.isnan(v) for v in weird)
