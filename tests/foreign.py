"""Experiments that other tools wrote, made with those tools themselves, plus deliberately dirty data."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import mlflow
from mlflow import MlflowClient


def flat_runs(uri: str, name: str = "flat") -> str:
    """Plain runs with no parent, as a hand-written training script logs them."""
    mlflow.set_tracking_uri(uri)
    exp = mlflow.set_experiment(name)
    for i, lr in enumerate([1e-4, 1e-3, 1e-2, 1e-1]):
        with mlflow.start_run(run_name=f"run-{i}"):
            mlflow.log_params({"lr": lr, "model": "resnet" if i % 2 else "mlp", "epochs": 3})
            for step in range(3):
                mlflow.log_metric("acc", 0.5 + 0.1 * step + 0.01 * i, step=step)
    return exp.experiment_id


def _optuna_objective(trial) -> float:
    x = trial.suggest_float("x", 1e-3, 10.0, log=True)
    k = trial.suggest_categorical("k", ["a", "b"])
    return -((x - 1) ** 2) + (k == "a")


def optuna_callback(uri: str, name: str = "optuna", n_trials: int = 8) -> str:
    import optuna
    from optuna_integration.mlflow import MLflowCallback

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        callback = MLflowCallback(tracking_uri=uri, metric_name="score")
        study = optuna.create_study(
            study_name=name, direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0)
        )  # the callback names the experiment after the study
        study.optimize(_optuna_objective, n_trials=n_trials, callbacks=[callback])
    return MlflowClient(tracking_uri=uri).get_experiment_by_name(name).experiment_id


def sklearn_gridsearch(uri: str, name: str = "sklearn-grid") -> str:
    """scikit-learn autolog of GridSearchCV: a parent run and one child per candidate, params as strings."""
    from sklearn.datasets import load_iris
    from sklearn.model_selection import GridSearchCV
    from sklearn.svm import SVC

    mlflow.set_tracking_uri(uri)
    exp = mlflow.set_experiment(name)
    mlflow.sklearn.autolog(log_models=False, log_datasets=False, silent=True, max_tuning_runs=None)
    try:
        x, y = load_iris(return_X_y=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            GridSearchCV(SVC(), {"C": [0.1, 1.0, 10.0], "kernel": ["linear", "rbf"]}, cv=3).fit(x, y)
    finally:
        mlflow.sklearn.autolog(disable=True)
    return exp.experiment_id


def dirty(uri: str, name: str = "dirty") -> tuple[str, dict]:
    """NaN/inf metrics, missing params, long and unicode params, FAILED/RUNNING/deleted runs."""
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment(name)
    long_value = "λ-" + "x" * 5000
    made: dict = {"long_value": long_value}
    cases = [("FINISHED", 0.9), ("FINISHED", math.nan), ("FAILED", math.inf), ("RUNNING", 0.5), ("FINISHED", -math.inf)]
    for i, (status, metric) in enumerate(cases):
        run = client.create_run(exp, run_name=f"dirty-{i}")
        rid = run.info.run_id
        if i != 1:
            client.log_param(rid, "units", str(4**i))  # 1 .. 256: over two decades, positive
        client.log_param(rid, "note", long_value if i == 0 else f"ünïcødé {i} 🚀")
        client.log_metric(rid, "acc", metric, step=1)
        if status != "RUNNING":
            client.set_terminated(rid, status)
        made[f"dirty-{i}"] = rid
    gone = client.create_run(exp, run_name="deleted")
    client.log_metric(gone.info.run_id, "acc", 0.1)
    client.delete_run(gone.info.run_id)
    return exp, made


def _tune_trainable(config):
    from ray import tune

    for step in range(3):
        tune.report({"score": config["lr"] * (step + 1), "width": config["width"]})


def ray_tune(uri: str, storage: str, name: str = "ray-tune") -> str:
    """Ray Tune with its MLflowLoggerCallback: a flat run per trial, metrics per training iteration."""
    import tempfile

    import ray
    from ray import tune
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    # Ray's socket paths must stay under 107 bytes: a short session folder of its own.
    tmp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    root = str(Path(__file__).resolve().parent.parent)  # Ray's workers import this module's trainable
    ray.init(
        num_cpus=1,
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=tmp_dir,
        configure_logging=False,
        runtime_env={"env_vars": {"PYTHONPATH": root}},
    )
    try:
        tuner = tune.Tuner(
            _tune_trainable,
            param_space={"lr": tune.grid_search([0.001, 0.01, 0.1]), "width": tune.choice([16, 32])},
            run_config=tune.RunConfig(
                name=name,
                storage_path=storage,
                verbose=0,
                callbacks=[MLflowLoggerCallback(tracking_uri=uri, experiment_name=name)],
            ),
        )
        tuner.fit()
    finally:
        ray.shutdown()
    return MlflowClient(tracking_uri=uri).get_experiment_by_name(name).experiment_id
