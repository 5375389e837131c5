"""Engine overhead: N no-op trials by Trellis vs Optuna + its MLflowCallback, both into SQLite MLflow stores.

Both runs happen here, now, on the same machine, so the ratio is what matters, not the seconds.
Trellis logs more per trial (params, objective, ~12 schema tags, timings, worker, best-so-far curve).

    python benchmarks/engine_overhead.py [--trials 500] [--workers 1] [--executor local|dask]

With ``--executor dask`` the Trellis time includes starting and closing a Dask LocalCluster (seconds).
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path

from mlflow import MlflowClient

SPACE = {
    "x": {"type": "float", "low": -1.0, "high": 1.0},
    "y": {"type": "float", "low": -1.0, "high": 1.0},
    "shape": {"type": "categorical", "choices": ["bowl", "ridge", "flat"]},
}


def _warm_store(uri: str, experiment: str) -> None:
    """Create the tables and the experiment before timing (MLflow's migrations take seconds)."""
    client = MlflowClient(tracking_uri=uri)
    if client.get_experiment_by_name(experiment) is None:
        client.create_experiment(experiment)


def time_trellis(uri: str, trials: int, workers: int, executor: str = "local") -> float:
    from trellis.search.config import parse_config
    from trellis.search.engine.runner import run_search

    config = parse_config(
        {
            "name": "overhead",
            "objective": {"metric": "value", "direction": "min"},
            "space": SPACE,
            "algorithm": {"name": "random", "seed": 0},
            "termination": {"max_trials": trials},
            "executor": {"kind": executor, "workers": workers},
            "trial": {"function": "trellis.examples.synthetic:noop"},
            "tracking": {"uri": uri, "experiment": "bench"},
        }
    )
    _warm_store(uri, "bench")
    t0 = time.perf_counter()
    result = run_search(config)
    elapsed = time.perf_counter() - t0
    assert result.progress.completed == trials, result.progress
    return elapsed


def time_optuna(uri: str, trials: int) -> float:
    import optuna
    from optuna_integration.mlflow import MLflowCallback

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _warm_store(uri, "bench")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        callback = MLflowCallback(tracking_uri=uri, metric_name="value", mlflow_kwargs={"experiment_name": "bench"})

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("x", -1.0, 1.0)
        trial.suggest_float("y", -1.0, 1.0)
        trial.suggest_categorical("shape", ["bowl", "ridge", "flat"])
        return 0.0

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(objective, n_trials=trials, callbacks=[callback])
    return time.perf_counter() - t0


def time_mlflow_floor(uri: str, trials: int) -> float:
    """MLflow's own cost per run: create + log_batch + terminate, nothing else."""
    from mlflow.entities import Metric, Param

    _warm_store(uri, "floor")
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("floor").experiment_id
    t0 = time.perf_counter()
    for i in range(trials):
        run = client.create_run(exp)
        client.log_batch(run.info.run_id, metrics=[Metric("value", 0.0, 0, 0)], params=[Param("x", str(i))])
        client.set_terminated(run.info.run_id)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--executor", choices=["local", "dask"], default="local")
    args = parser.parse_args()
    logging.getLogger("alembic").setLevel(logging.WARNING)
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        uri = lambda name: f"sqlite:///{Path(tmp) / name}.db"  # noqa: E731
        n = args.trials
        optuna_s = time_optuna(uri("optuna"), n)
        trellis_s = time_trellis(uri("trellis"), n, args.workers, args.executor)
        floor_s = time_mlflow_floor(uri("floor"), n)
    print(f"no-op trials: {n}, Trellis workers: {args.workers}, executor: {args.executor}")
    print(f"  Optuna + MLflowCallback : {optuna_s:7.2f} s  ({1000 * optuna_s / n:5.1f} ms/trial)")
    print(f"  Trellis (random, {args.executor:5s}): {trellis_s:7.2f} s  ({1000 * trellis_s / n:5.1f} ms/trial)")
    print(f"  MLflow floor (3 calls)  : {floor_s:7.2f} s  ({1000 * floor_s / n:5.1f} ms/run)")
    print(f"ratio Trellis / Optuna+MLflow = {trellis_s / optuna_s:.2f}  (target <= 0.80)")


if __name__ == "__main__":
    main()
