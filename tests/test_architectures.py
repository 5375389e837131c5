"""Architecture searches end to end: real torch trials on scikit-learn data through the engine, each run
rebuilt from its MLflow params."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import ROOT, child_runs
from trellis.examples.arch_training import load_predictions, model_for
from trellis.search.architectures.layers import count_parameters, parse_architecture
from trellis.search.config import load_config
from trellis.search.engine.runner import run_search
from trellis.tracking import schema

CONFIG = ROOT / "examples" / "configs" / "arch_digits.yaml"


def test_an_architecture_search_on_digits_records_rebuildable_models(store, client, tmp_path):
    config = load_config(
        CONFIG, {"tracking.uri": store, "termination.max_trials": 3, "budget.max": 2, "executor.workers": 1}
    )
    result = run_search(config)
    runs = child_runs(client, result.search_id)
    assert [r.info.status for r in runs] == ["FINISHED"] * 3, [r.data.tags.get(schema.ERROR) for r in runs]
    texts = [r.data.params["architecture"] for r in runs]
    assert len(set(texts)) == 3  # three draws of the chain
    for run in runs:
        model = model_for(run.data.params, "digits")  # rebuilt from what MLflow holds, nothing else
        assert sum(p.numel() for p in model.parameters()) == run.data.metrics["n_params"]
        assert run.data.metrics["n_layers"] == len(parse_architecture(run.data.params["architecture"]))
        model.eval()
        assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
        history = client.get_metric_history(run.info.run_id, "val_accuracy")
        assert sorted(m.step for m in history) == [1, 2]
        folder = client.download_artifacts(run.info.run_id, schema.TRIAL_ARTIFACTS, str(tmp_path / run.info.run_id))
        predicted, labels = load_predictions(Path(folder))  # the run's artifact, as the app will read it
        assert len(labels) == 449  # the fixed held-out quarter of the 1797 digits
        assert np.mean(predicted == labels) == pytest.approx(run.data.metrics["val_accuracy"])


def test_an_architecture_trial_on_a_table(store, client):
    config = load_config(
        CONFIG,
        {
            "tracking.uri": store,
            "termination.max_trials": 1,
            "budget.max": 2,
            "executor.workers": 1,
            "trial.function": "trellis.examples.arch_tabular:train",
            "space.architecture": {"type": "architecture", "input": "breast_cancer", "max_layers": 4},
        },
    )
    (run,) = child_runs(client, run_search(config).search_id)
    assert run.info.status == "FINISHED", run.data.tags.get(schema.ERROR)
    assert (
        sum(p.numel() for p in model_for(run.data.params, "breast_cancer").parameters()) == run.data.metrics["n_params"]
    )
    assert run.data.metrics["val_accuracy"] > 0.6  # two classes, 63% benign: a trained MLP beats chance


def size_trial(ctx):
    """No training: a score that favours small architectures, with checkpoints so Hyperband continues it."""
    text = ctx.params["architecture"]
    n = count_parameters(parse_architecture(text), (1, 8, 8), 10)
    if ctx.budget_start > 0:
        assert ctx.load_checkpoint()["architecture"] == text  # a continuation runs the same model
    for step in ctx.steps():
        ctx.save_checkpoint({"architecture": text, "step": step})
        ctx.report(step, score=-math.log(n) + 0.01 * step)
    return {"n_params": float(n)}


def test_hyperband_continues_architectures_and_promotes_small_ones(make_config, client):
    config = make_config(
        objective={"metric": "score", "direction": "max"},
        space={"architecture": {"type": "architecture", "max_layers": 6, "max_params": 50_000}},
        algorithm={"name": "hyperband", "seed": 1, "eta": 3},
        trial={"function": "tests.test_architectures:size_trial"},
        executor={"kind": "local", "workers": 1},
    )
    runs = child_runs(client, run_search(config).search_id)
    assert len(runs) >= 4 and all(r.info.status == "FINISHED" for r in runs), [r.data.tags for r in runs]
    reached = {r.info.run_id: int(r.data.tags[schema.BUDGET_REACHED]) for r in runs}
    assert sorted(set(reached.values())) == [1, 3]  # some stopped at the first rung, some continued to 3
    smallest = min(runs, key=lambda r: r.data.metrics["n_params"])
    assert reached[smallest.info.run_id] == 3  # the best of its bracket is always promoted
    continued = [r for r in runs if reached[r.info.run_id] == 3]
    for run in continued:
        steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "score"))
        assert steps == [1, 2, 3]
