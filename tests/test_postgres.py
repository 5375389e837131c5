"""A search into an MLflow store on the PostgreSQL server (127.0.0.1:5432), through the SQL writer.

Skipped, with the reason printed, when no server answers there.
"""

from mlflow import MlflowClient

from tests.conftest import child_runs
from trellis.search.engine.runner import SearchRunner
from trellis.tracking import schema


def test_search_into_postgres_store(make_config, pg_uri, tmp_path):
    config = make_config(
        tracking={"uri": pg_uri, "experiment": "pg", "artifact_location": (tmp_path / "art").as_uri()},
        trial={"function": "trellis.examples.synthetic:odd_values"},
        space={"x": {"low": 0.0, "high": 1.0}},
        termination={"max_trials": 6},
    )
    runner = SearchRunner(config)
    assert type(runner.recorder.writer).__name__ == "SqlWriter"
    result = runner.run()
    client = MlflowClient(tracking_uri=pg_uri)
    trials = child_runs(client, result.search_id)
    assert len(trials) == 6 and all(r.info.status == "FINISHED" for r in trials)
    for run in trials:
        assert run.data.tags[schema.SEARCH_ID] == result.search_id
        hist = client.get_metric_history(run.info.run_id, "loss")
        assert {m.step for m in hist} == {1, 2, 3}
    assert client.get_run(result.search_id).data.tags[schema.SEARCH_STATE] == "completed"


def test_reader_sql_path_equals_client_path_on_postgres(make_config, pg_uri, tmp_path):
    import pandas as pd

    from tests import foreign
    from trellis.tracking.reader import read_runs

    art = (tmp_path / "art").as_uri()
    search = SearchRunner(
        make_config(
            tracking={"uri": pg_uri, "experiment": "pg", "artifact_location": art}, termination={"max_trials": 4}
        )
    ).run()
    dirty, _ = foreign.dirty(pg_uri)
    flat = foreign.flat_runs(pg_uri)
    ids = [search.experiment_id, dirty, flat]
    fast, slow = read_runs(pg_uri, ids, use_sql=True), read_runs(pg_uri, ids, use_sql=False)
    pd.testing.assert_frame_equal(fast.runs, slow.runs)
    assert fast.skipped == slow.skipped == {"deleted runs": 1, "non-finite acc": 3}
    assert len(fast.runs) == 5 + 5 + 4


def test_the_app_reads_the_fingerprint_again_only_after_a_commit_on_postgres(make_config, tmp_path, monkeypatch):
    """On PostgreSQL the app asks the server's snapshot (one trivial query) and reuses what it read while no
    transaction committed; a logged metric, a new run, shows at the very next request. On a server of the
    test's own: the snapshot is cluster-wide, another client's writes would only cost a fresh read."""
    from tests.own_postgres import own_server
    from trellis.app.factory import create_app
    from trellis.tracking.cache import fingerprint

    with own_server() as server:
        uri = server.uri
        config = make_config(
            tracking={"uri": uri, "experiment": "pg-live", "artifact_location": (tmp_path / "art").as_uri()},
            termination={"max_trials": 3},
        )
        result = SearchRunner(config).run()
        context = create_app(uri, cache=str(tmp_path / "cache")).trellis_context
        asked = []
        real = fingerprint
        monkeypatch.setattr("trellis.app.context.fingerprint", lambda *a: asked.append(1) or real(*a))
        exp = [result.experiment_id]
        first = context.store_state(exp)
        assert context.store_state(exp) == first and context.store_state(exp) == first
        assert len(context.view(exp).trials) == 3
        assert len(asked) == 1  # nothing committed: read once
        client = MlflowClient(tracking_uri=uri)
        run = client.create_run(result.experiment_id)
        client.log_metric(run.info.run_id, "loss", 0.5)
        after = context.store_state(exp)
        assert after != first and len(asked) == 2
        assert run.info.run_id in set(context.view(exp).table.runs["run_id"])  # seen at once, no time to live
