"""Reading runs: Trellis' reader vs ``mlflow.search_runs`` on the same store, and the overview render.

Builds SQLite MLflow stores of 10k and 100k runs (3 params, 3 metrics, a parent tag each; rows written
into MLflow's own tables by ``trellis.tracking.batch_writers.SqlWriter``, MLflow's client reads them back), then, in one
run, times:
  - ``mlflow.search_runs`` (all runs, the reference) and Trellis' ``read_runs`` (cold: no cache);
  - the overview's server-side render on 10k runs with a warm cache: time and figure JSON size.

    python benchmarks/load_runs.py [--sizes 10000 100000] [--skip-reference-above 100000]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def build_store(path: Path, n_runs: int, seed: int = 0) -> tuple[str, str]:
    from mlflow import MlflowClient

    from trellis.tracking.batch_writers import PendingRun, SqlWriter

    uri = f"sqlite:///{path}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("bench", artifact_location=(path.parent / "art").as_uri())
    writer = SqlWriter(client)
    rng = np.random.default_rng(seed)
    parent = writer.create_run(exp, 0, {}, "search")
    batch: list[PendingRun] = [
        PendingRun(
            parent,
            exp,
            create={"start_time": 1, "name": "search"},
            tags={"mlflow.runName": "search"},
            end=("FINISHED", 2),
        )
    ]
    t0 = 1_700_000_000_000
    for i in range(n_runs):
        lr, units, opt = 10 ** rng.uniform(-5, -1), int(2 ** rng.integers(3, 9)), ["adam", "sgd"][i % 2]
        acc = float(1 - abs(math.log10(lr) + 3) / 4 + rng.normal(0, 0.02))
        run_id = writer.create_run(exp, 0, {}, f"run-{i}")
        batch.append(
            PendingRun(
                run_id,
                exp,
                create={"start_time": t0 + i * 1000, "name": f"run-{i}"},
                params={"lr": repr(lr), "units": str(units), "optimizer": opt},
                tags={"mlflow.runName": f"run-{i}", "mlflow.parentRunId": parent},
                metrics=[
                    ("accuracy", acc, t0 + i * 1000 + 500, 10),
                    ("loss", 1 - acc, t0 + i * 1000 + 500, 10),
                    ("n_params", float(units * 74), t0 + i * 1000 + 500, 10),
                ],
                end=("FINISHED", t0 + i * 1000 + 900),
            )
        )
        if len(batch) >= 5000:
            writer.write(batch)
            batch = []
    if batch:
        writer.write(batch)
    return uri, exp


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def bench_size(tmp: Path, n: int, skip_reference_above: int) -> dict:
    import mlflow

    from trellis.tracking import reader
    from trellis.tracking.sql import engine

    t_build = time.perf_counter()
    uri, exp = build_store(tmp / f"runs{n}.db", n)
    build_s = time.perf_counter() - t_build
    engine.cache_clear()
    ours_s, table = timed(lambda: reader.read_runs(uri, [exp]), repeat=3)
    assert len(table.runs) == n + 1, len(table.runs)
    out = {"n": n, "build_s": build_s, "ours_s": ours_s}
    if n <= skip_reference_above:
        mlflow.set_tracking_uri(uri)
        ref_s, frame = timed(lambda: mlflow.search_runs([exp], max_results=n + 1))
        assert len(frame) == n + 1
        out["ref_s"] = ref_s
    return out


def bench_render(tmp: Path, n: int) -> dict:
    from trellis.app.context import AppContext
    from trellis.app.pages.overview import render_overview
    from trellis.tracking.cache import RunCache

    uri, exp = build_store(tmp / f"render{n}.db", n, seed=1)
    context = AppContext(uri, RunCache(uri))
    context.view([exp])  # warm the cache

    def render():
        view = context.view([exp])
        return render_overview(view, "accuracy", "max", "n_params", "min", "accuracy", "max", "loss", context)

    warm_s, (_, *figures) = timed(render, repeat=5)
    size = sum(len(json.dumps(f)) for f in figures)
    return {"n": n, "warm_ms": warm_s * 1000, "json_mb": size / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--skip-reference-above",
        type=int,
        default=100_000,
        help="skip mlflow.search_runs on stores larger than this (it takes minutes)",
    )
    parser.add_argument("--render-size", type=int, default=10_000)
    args = parser.parse_args()
    logging.getLogger("alembic").setLevel(logging.WARNING)
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    with tempfile.TemporaryDirectory() as tmp:
        results = [bench_size(Path(tmp), n, args.skip_reference_above) for n in args.sizes]
        render = bench_render(Path(tmp), args.render_size)
    print("runs      store build   mlflow.search_runs   Trellis read_runs   ratio (target <= 0.05)")
    for r in results:
        ref = f"{r['ref_s']:8.2f} s" if "ref_s" in r else "  (skipped)"
        ratio = f"{r['ours_s'] / r['ref_s']:.3f}" if "ref_s" in r else "-"
        print(f"{r['n']:>7}   {r['build_s']:8.1f} s   {ref:>18}   {r['ours_s']:14.3f} s   {ratio}")
    big = [r for r in results if r["n"] >= 100_000]
    for r in big:
        print(f"{r['n']} runs read completely in {r['ours_s']:.2f} s (target <= 2 s)")
    print(
        f"overview render, {render['n']} runs, warm cache: {render['warm_ms']:.0f} ms (target <= 150), "
        f"figures {render['json_mb']:.2f} MB (target <= 2)"
    )


if __name__ == "__main__":
    main()
