"""The shipped torch examples run as real trials (CPU here, CUDA where present) and log what they claim."""

from pathlib import Path

from tests.conftest import ROOT, child_runs
from trellis.search.config import load_config
from trellis.search.engine.runner import run_search
from trellis.tracking import schema

CONFIGS = ROOT / "examples" / "configs"


def test_digits_mlp_function_trials(store, client):
    config = load_config(
        CONFIGS / "digits_mlp_random.yaml",
        {
            "tracking.uri": store,
            "termination.max_trials": 2,
            "budget.max": 3,
            "space": {"lr": 0.01, "hidden": {"choices": [16, 32]}, "layers": 1, "optimizer": "adam", "dropout": 0.0},
        },
    )
    result = run_search(config)
    trials = child_runs(client, result.search_id)
    assert [r.info.status for r in trials] == ["FINISHED", "FINISHED"]
    for run in trials:
        h = int(run.data.params["hidden"])
        assert run.data.metrics["n_params"] == 64 * h + h + h * 10 + 10  # Linear(64,h) + Linear(h,10)
        assert run.data.metrics["latency_ms"] > 0
        for key in ("val_accuracy", "val_loss", "train_loss"):
            assert sorted(m.step for m in client.get_metric_history(run.info.run_id, key)) == [1, 2, 3]
        losses = sorted(client.get_metric_history(run.info.run_id, "train_loss"), key=lambda m: m.step)
        assert losses[-1].value < losses[0].value  # it learns
        assert run.data.metrics["val_accuracy"] > 0.8  # digits with Adam at 1e-2: well above chance (0.1)
        assert (Path(run.data.tags[schema.CHECKPOINT]) / "step-000003.pt").is_file()  # the last epoch's


def test_digits_mlp_script_trial(store, client):
    config = load_config(
        CONFIGS / "digits_mlp_script.yaml",
        {"tracking.uri": store, "termination.max_trials": 1, "budget.max": 2, "executor.workers": 1},
    )
    result = run_search(config)
    (run,) = child_runs(client, result.search_id)
    assert run.info.status == "FINISHED", run.data.tags.get(schema.ERROR)
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "val_accuracy")) == [1, 2]
    assert run.data.metrics["n_params"] > 0


def test_digits_cnn_trial(store, client):
    config = load_config(
        CONFIGS / "digits_cnn_random.yaml",
        {"tracking.uri": store, "termination.max_trials": 1, "budget.max": 2, "executor.workers": 1},
    )
    result = run_search(config)
    (run,) = child_runs(client, result.search_id)
    assert run.info.status == "FINISHED", run.data.tags.get(schema.ERROR)
    assert 0.0 <= run.data.metrics["val_accuracy"] <= 1.0
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "val_loss")) == [1, 2]


def test_digits_mlp_pbt_members_continue_from_copied_checkpoints(store, client):
    config = load_config(
        CONFIGS / "digits_mlp_pbt.yaml",
        {"tracking.uri": store, "algorithm.population_size": 4, "algorithm.interval": 1, "budget.max": 2},
    )
    result = run_search(config)
    runs = child_runs(client, result.search_id)
    assert all(r.info.status == "FINISHED" for r in runs), [r.data.tags.get(schema.ERROR) for r in runs]
    (child,) = [r for r in runs if schema.PBT_PARENT in r.data.tags]  # 4 members, a quarter exploited once
    history = client.get_metric_history(child.info.run_id, "val_accuracy")
    assert [m.step for m in history] == [2]  # it went on from its parent's epoch-1 checkpoint (else it fails)
    parent = next(r for r in runs if r.data.tags[schema.TRIAL_NUMBER] == child.data.tags[schema.PBT_PARENT])
    assert child.data.params["lr"] != parent.data.params["lr"] or child.data.params != parent.data.params


def test_every_example_config_validates():
    from trellis.search.config import load_config as load

    for path in sorted(CONFIGS.glob("*.yaml")):
        load(path)  # raises ConfigError with the reason
