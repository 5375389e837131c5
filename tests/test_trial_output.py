"""A trial's output reaches the runner's terminal, prefixed by its number, and its log outlives its worker."""

from pathlib import Path

from mlflow import MlflowClient

from tests.conftest import child_runs
from trellis.search.engine.runner import run_search
from trellis.search.trial import OUTPUT_LOG
from trellis.tracking import schema


def test_function_trial_output_is_shown_and_kept(make_config, capfd):
    config = make_config(
        trial={"function": "trellis.examples.synthetic:noisy"},
        space={"x": {"type": "float", "low": 0.0, "high": 1.0}},
        termination={"max_trials": 3},
    )
    result = run_search(config)
    out, err = capfd.readouterr()
    for number in range(3):
        assert f"[trial {number}] training x=" in out
        assert f"[trial {number}] warning: loss is noisy" in err
    for run in child_runs(MlflowClient(tracking_uri=result.tracking_uri), result.search_id):
        log = Path(run.data.tags[schema.CHECKPOINT]) / OUTPUT_LOG
        assert "training x=" in log.read_text() and "warning: loss is noisy" in log.read_text()


def test_a_trial_that_kills_its_worker_keeps_its_stderr(make_config):
    config = make_config(
        trial={"function": "trellis.examples.synthetic:noisy"},
        space={"x": {"type": "float", "low": 0.0, "high": 1.0}, "exit_code": 7},
        termination={"max_trials": 2},
    )
    result = run_search(config)
    client = MlflowClient(tracking_uri=result.tracking_uri)
    runs = child_runs(client, result.search_id)
    assert len(runs) == 2 and all(r.info.status == "FAILED" for r in runs)
    for run in runs:
        tail = Path(client.download_artifacts(run.info.run_id, schema.STDERR_ARTIFACT)).read_text()
        assert "warning: loss is noisy" in tail and "exited with code 7" in tail


def test_script_trial_output_is_shown(make_config, tmp_path, capfd):
    script = tmp_path / "chatty.py"
    script.write_text(
        "import json, sys\ncfg = json.load(open(sys.argv[1]))\nprint('epoch one done', flush=True)\n"
        "print('careful', file=sys.stderr, flush=True)\nprint('TRELLIS ' + json.dumps({'step': 1, 'loss': 0.1}))\n"
    )
    run_search(make_config(trial={"script": str(script)}, termination={"max_trials": 1}))
    out, err = capfd.readouterr()
    assert "[trial 0] epoch one done" in out and "[trial 0] careful" in err
