"""The overview's best value is the CLI's: the best value a completed trial ended with, for a real search."""

import pandas as pd
from mlflow import MlflowClient

from trellis.layouts.overview import counts_info
from trellis.search.analysis.objective import best_final, final_values
from trellis.search.engine.runner import run_search
from trellis.tracking import schema
from trellis.tracking.reader import read_runs


def test_app_best_equals_the_cli_best_when_failed_trials_reported_better_values(make_config, store):
    # crashy reports loss = x, then fails for x > 0.5: maximising loss, the failed trials' last reports beat
    # every completed trial, but the runner never counts them.
    config = make_config(
        objective={"metric": "loss", "direction": "max"},
        trial={"function": "trellis.examples.synthetic:crashy"},
        termination={"max_trials": 10},
        algorithm={"name": "random", "seed": 3},
    )
    result = run_search(config)
    table = read_runs(store, [result.experiment_id])
    trials = table.trials
    assert (trials["metrics.loss"] > 0.5).any() and (trials["status"] == "FAILED").any()  # the case at hand
    info = counts_info(trials, "loss", "max", table.skipped)
    completed = trials[trials["end_reason"] == "completed"]["metrics.loss"]
    assert info.best_value == result.progress.best_value == completed.max()
    assert info.best_value <= 0.5
    # The search run's own record of its best agrees.
    history = MlflowClient(store).get_metric_history(result.search_id, schema.BEST_METRIC_PREFIX + "loss")
    assert max(h.value for h in history) == info.best_value


def test_final_values_count_completed_trials_and_finished_foreign_runs():
    runs = pd.DataFrame(
        {
            "run_id": list("abcdef"),
            "status": ["FINISHED", "FINISHED", "FAILED", "FINISHED", "RUNNING", "FINISHED"],
            "end_reason": ["completed", "pruned", "failed", None, None, "completed"],
            "metrics.acc": [0.5, 0.9, 0.95, 0.7, 0.99, float("inf")],
        }
    )
    assert final_values(runs, "acc").tolist() == [0.5, 0.7]
    assert best_final(runs, "acc", "max") == (0.7, "d") and best_final(runs, "acc", "min") == (0.5, "a")
    assert best_final(runs, "gone", "max") == (None, None)
