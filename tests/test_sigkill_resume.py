"""SIGKILL the runner mid-search (no cleanup at all, reports still in the write buffer), then resume: for
every algorithm, at several cut points, no run is left RUNNING and no step is logged twice."""

import json
import signal
import time

import pytest
import yaml
from mlflow import MlflowClient

from tests.conftest import BASE, child_runs, duplicate_steps
from tests.test_resume import _cli
from trellis.search.engine.resume import recorded_config
from trellis.search.engine.runner import SearchRunner
from trellis.tracking import schema

SPACE = {"x": {"low": -1.0, "high": 1.0}, "seconds": {"type": "fixed", "value": 0.15}}
CASES = {
    "random": {"algorithm": {"name": "random", "seed": 1}, "termination": {"max_trials": 6}},
    "grid": {"algorithm": {"name": "grid", "points": 12}, "termination": {}},  # 36 steps: work is left at the cut
    "tpe": {"algorithm": {"name": "tpe", "seed": 1, "n_startup_trials": 2}, "termination": {"max_trials": 6}},
    "hyperband": {"algorithm": {"name": "hyperband", "eta": 3, "seed": 6}, "termination": {}},
    "bohb": {"algorithm": {"name": "bohb", "eta": 3, "seed": 6}, "termination": {}},
    "pbt": {"algorithm": {"name": "pbt", "seed": 1, "population_size": 4, "interval": 1}, "termination": {}},
}


def _ended_steps(client, search_id) -> int:
    return sum(len(client.get_metric_history(r.info.run_id, "loss")) for r in child_runs(client, search_id))


@pytest.mark.parametrize("cut_at_steps", [3, 9])
@pytest.mark.parametrize("algorithm", sorted(CASES))
def test_sigkill_then_resume(tmp_path, store, client, algorithm, cut_at_steps):
    raw = {**BASE, **CASES[algorithm], "space": SPACE, "budget": {"min": 1, "max": 6},  # work is left at either cut
           "trial": {"function": "trellis.examples.synthetic:resumable"},
           "tracking": {"uri": store, "experiment": "kill"}}  # fmt: skip
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(json.loads(json.dumps(raw))))
    proc = _cli("search", "run", str(path), "--quiet", cwd=tmp_path)
    deadline, search_id = time.time() + 90, None
    while time.time() < deadline:
        exp = client.get_experiment_by_name("kill")
        found = exp and client.search_runs([exp.experiment_id], f"tags.`{schema.TYPE}` = 'search'")
        if found and _ended_steps(client, (search_id := found[0].info.run_id)) >= cut_at_steps:
            break
        time.sleep(0.1)
    assert search_id is not None, proc.communicate(timeout=5)[0]
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)

    resumed = SearchRunner(recorded_config(client, search_id), resume=search_id).run()
    assert resumed.state == "completed"
    runs = child_runs(MlflowClient(tracking_uri=store), search_id)
    assert all(r.info.status != "RUNNING" for r in runs), "a run was left RUNNING"
    assert client.get_run(search_id).info.status == "FINISHED"
    assert duplicate_steps(store) == []  # every metric of every run, the search run's best too
    for run in runs:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "loss")]
        assert len(steps) == len(set(steps)), f"a step was logged twice: {sorted(steps)}"
        if run.info.status == "FAILED":  # a resumed job that found the wrong checkpoint fails: none may
            pytest.fail(run.data.tags.get(schema.ERROR))
    for run in (r for r in runs if r.info.status == "KILLED"):
        assert schema.ERROR in run.data.tags
        if algorithm in ("random", "grid", "tpe"):  # superseded by a retry that names it
            assert any(r.data.tags.get(schema.RETRY_OF) == run.data.tags[schema.TRIAL_NUMBER] for r in runs)
            assert schema.RETRIED_BY in run.data.tags
