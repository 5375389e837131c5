"""The search-space page's first look at a large experiment (issue 16's cold speed: 10k runs x 10 parameters,
target <= 2 s): a fresh app context (empty caches) reads the runs and computes the analysis the page shows
(suggested bounds, fANOVA singles and pairs), as the page's background job does. Printed against the
overview's render of the same runs measured in the same run, and against the same analysis on every run
(no sample) to show what the sample saves.

    .venv/bin/python benchmarks/space_cold.py [--runs 10000]
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def build_store(path: Path, n_runs: int, seed: int = 0) -> tuple[str, str]:
    """One search of ``n_runs`` finished trials over 10 parameters (log, linear, int, categorical); the
    accuracy depends on four of them."""
    from mlflow import MlflowClient

    from trellis.tracking.batch_writers import PendingRun, SqlWriter

    uri = f"sqlite:///{path}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("bench", artifact_location=(path.parent / "art").as_uri())
    writer = SqlWriter(client)
    rng = np.random.default_rng(seed)
    parent = writer.create_run(exp, 0, {}, "search")
    batch = [PendingRun(parent, exp, create={"start_time": 1, "name": "search"}, end=("FINISHED", 2))]
    t0 = 1_700_000_000_000
    for i in range(n_runs):
        p = {
            "lr": 10 ** rng.uniform(-5, -1),
            "momentum": rng.uniform(0, 0.99),
            "dropout": rng.uniform(0, 0.7),
            "wd": 10 ** rng.uniform(-6, -2),
            "units": int(rng.integers(8, 513)),
            "layers": int(rng.integers(1, 6)),
            "batch": int(2 ** rng.integers(4, 9)),
            "optimizer": ["adam", "sgd", "rmsprop"][int(rng.integers(3))],
            "act": ["relu", "tanh"][int(rng.integers(2))],
            "warmup": rng.uniform(0, 1),
        }
        acc = 1 - abs(np.log10(p["lr"]) + 3) / 4 - (p["dropout"] - 0.2) ** 2 - 0.05 * (p["optimizer"] == "sgd")
        acc += 0.02 * np.log2(p["units"]) / 9 + rng.normal(0, 0.01)
        run_id = writer.create_run(exp, 0, {}, f"run-{i}")
        batch.append(
            PendingRun(
                run_id,
                exp,
                create={"start_time": t0 + i * 1000, "name": f"run-{i}"},
                params={k: repr(v) if isinstance(v, float) else str(v) for k, v in p.items()},
                tags={"mlflow.runName": f"run-{i}", "mlflow.parentRunId": parent},
                metrics=[("accuracy", float(acc), t0 + i * 1000 + 500, 10)],
                end=("FINISHED", t0 + i * 1000 + 900),
            )
        )
        if len(batch) >= 5000:
            writer.write(batch)
            batch = []
    if batch:
        writer.write(batch)
    return uri, exp


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    args = parser.parse_args()
    logging.getLogger("alembic").setLevel(logging.WARNING)
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    from trellis.app.context import AppContext
    from trellis.app.pages.overview import render_overview
    from trellis.search.analysis.report import analyse
    from trellis.tracking.cache import RunCache

    with tempfile.TemporaryDirectory() as tmp:
        uri, exp = build_store(Path(tmp) / "runs.db", args.runs)
        selection = {"experiments": [exp], "searches": []}
        times = []
        for _ in range(3):  # a fresh context each time: nothing cached in the process
            context = AppContext(uri, RunCache(uri))
            t = time.perf_counter()
            report = context.space_report(selection, "accuracy", "max", None, None)
            times.append(time.perf_counter() - t)
        cold = min(times)
        view = context.view([exp])
        t = time.perf_counter()
        render_overview(view, "accuracy", "max", "accuracy", "max", "accuracy", "max", "accuracy", context)
        overview = time.perf_counter() - t
        t = time.perf_counter()
        analyse(view.table, view.trials, "accuracy", "max", max_runs=10**9)
        every = time.perf_counter() - t
    sample = next(
        (f"{n} runs left out of the forests' sample" for k, n in report.data.notes.items() if "sample" in k), ""
    )
    print(f"store: {args.runs} runs x 10 parameters")
    print(f"reference, overview render (warm):        {overview:6.2f} s")
    print(f"search-space first look (cold, min of 3): {cold:6.2f} s (target <= 2), {cold / overview:.1f}x the overview")
    lr = report.importance.single_mean.get("lr", 0.0)
    print(f"  the page says: {sample or 'every run used'}; importance of lr {lr:.2f}")
    print(f"same analysis on every run:               {every:6.2f} s ({every / cold:.1f}x the sampled first look)")


if __name__ == "__main__":
    main()
