"""The exploration page on a 10k-trial Hyperband search: server-side render time (warm) and figure bytes.

Builds a SQLite MLflow store holding one Hyperband search of ``--trials`` trials (R=27, eta=3, its brackets
run again and again: 49 trials per round of brackets), written as the engine writes it (tags ``trellis.trial``,
``trellis.bracket``, ``trellis.rung``, ``trellis.end_reason``, ``trellis.stopped_at_rung``, the objective
every epoch and the ``trellis.rung`` metric at each rung's end), rows straight into MLflow's tables
(one ``executemany`` per table with sqlite3: MLflow's own writers take minutes for 10k runs on a busy
machine; ``tests/test_exploration.py`` checks the page on searches the engine really ran). Then, in one run:

  - the reference: the overview page's server-side render of the same runs, warm (``render_overview``);
  - the exploration page cold (its two store reads, the analysis and the projection) and warm (the info
    memoised per store state, every figure built again, as each request does): median of 5.

Targets: warm <= 300 ms, figures <= 3 MB (JSON as sent). Default run: well under two minutes.

    python benchmarks/exploration_page.py [--trials 10000]
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

BRACKETS = [  # (bracket s, [(configurations, budget) per rung]) for R=27, eta=3
    (3, [(27, 1), (9, 3), (3, 9), (1, 27)]),
    (2, [(12, 3), (4, 9), (1, 27)]),
    (1, [(6, 9), (2, 27)]),
    (0, [(4, 27)]),
]


def build_store(path: Path, n_trials: int, seed: int = 0) -> tuple[str, str, str]:
    import sqlite3
    import uuid

    from mlflow import MlflowClient

    from trellis.tracking import schema

    uri = f"sqlite:///{path}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("bench-exploration", artifact_location=(path.parent / "art").as_uri())
    rng = np.random.default_rng(seed)
    config = {
        "name": "hb-bench",
        "objective": {"metric": "loss", "direction": "min"},
        "space": {
            "lr": {"type": "float", "low": 1e-5, "high": 1.0, "log": True},
            "dropout": {"type": "float", "low": 0.0, "high": 0.5},
            "units": {"type": "int", "low": 8, "high": 512, "log": True},
            "optimizer": {"type": "categorical", "choices": ["adam", "sgd", "rmsprop"]},
        },
        "algorithm": {"name": "hyperband", "eta": 3},
        "budget": {"resource": "epochs", "min": 1, "max": 27},
    }
    runs, tags, params, metrics, latest = [], [], [], [], []

    def add_run(name: str, start: int, end: int, run_tags: dict) -> str:
        run_id = uuid.uuid4().hex
        runs.append((run_id, name, "LOCAL", "bench", "", "bench", "FINISHED", start, end, "", "active", "", int(exp)))
        tags.extend((k, v, run_id) for k, v in {**run_tags, "mlflow.runName": name}.items())
        return run_id

    search = uuid.uuid4().hex
    add_run(
        "hb-bench",
        1,
        2,
        {
            schema.TYPE: "search",
            schema.SEARCH_NAME: "hb-bench",
            schema.ALGORITHM: "hyperband",
            schema.OBJECTIVE: "loss",
            schema.DIRECTION: "min",
            schema.CONFIG_JSON: json.dumps(config),
        },
    )
    runs[-1] = (search, *runs[-1][1:])
    tags[:] = [(k, v, search) for k, v, _ in tags]
    tags.append((schema.SEARCH_ID, search, search))
    common = {
        schema.TYPE: "trial",
        schema.SEARCH_ID: search,
        schema.ALGORITHM: "hyperband",
        schema.OBJECTIVE: "loss",
        schema.DIRECTION: "min",
        schema.MLFLOW_PARENT_RUN: search,
    }
    t0, number = 1_700_000_000_000, 0
    while number < n_trials:
        for s, rungs in BRACKETS:
            n0 = min(rungs[0][0], n_trials - number)
            if n0 <= 0:
                break
            trials = list(range(number, number + n0))
            number += n0
            drawn = {
                t: {
                    "lr": 10 ** rng.uniform(-5, 0),
                    "dropout": rng.uniform(0, 0.5),
                    "units": int(2 ** rng.uniform(3, 9)),
                    "optimizer": ["adam", "sgd", "rmsprop"][int(rng.integers(3))],
                }
                for t in trials
            }
            quality = {t: abs(math.log10(p["lr"]) + 2.5) / 3 + p["dropout"] / 2 for t, p in drawn.items()}
            alive, reached = trials, {}
            for r, (_, budget) in enumerate(rungs):
                reached.update({t: (r, budget) for t in alive})
                keep = rungs[r + 1][0] if r + 1 < len(rungs) else 0
                alive = sorted(alive, key=quality.get)[:keep]
            for t in trials:
                rung, budget = reached[t]
                ms = t0 + t * 1000
                last = rung == len(rungs) - 1
                trial_tags = {
                    **common,
                    schema.TRIAL_NUMBER: str(t),
                    schema.BRACKET: str(s),
                    schema.RUNG: str(rung),
                    schema.BUDGET_REACHED: str(budget),
                    schema.END_REASON: "completed" if last else "pruned",
                }
                if not last:
                    trial_tags[schema.STOPPED_AT_RUNG] = str(rung)
                run_id = add_run(f"trial-{t:04d}", ms, ms + 900, trial_tags)
                params.extend((k, str(v), run_id) for k, v in drawn[t].items())
                loss = [quality[t] + 1.0 / e + rng.normal(0, 0.02) for e in range(1, budget + 1)]
                metrics.extend(("loss", v, ms + e, run_id, e, 0) for e, v in enumerate(loss, start=1))
                latest.append(("loss", loss[-1], ms + budget, budget, 0, run_id))
                marks = [(schema.RUNG, float(k), ms + b, run_id, b, 0) for k, (_, b) in enumerate(rungs[: rung + 1])]
                metrics.extend(marks)
                latest.append(marks[-1][:3] + (marks[-1][4], 0, run_id))
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, "
            "start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            runs,
        )
        conn.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)", tags)
        conn.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)", params)
        conn.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, ?)", metrics
        )
        conn.executemany(
            "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?, ?, ?, ?, ?, ?)",
            latest,
        )
    return uri, exp, search


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=10_000)
    args = parser.parse_args()
    logging.getLogger("alembic").setLevel(logging.WARNING)
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    from trellis.app.context import AppContext
    from trellis.app.page_parts import StateMemo
    from trellis.app.pages.exploration import info_loader, render_exploration
    from trellis.app.pages.overview import render_overview
    from trellis.tracking.cache import RunCache

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        uri, exp, search = build_store(Path(tmp) / "runs.db", args.trials)
        build_s = time.perf_counter() - t
        context = AppContext(uri, RunCache(uri))
        context.view([exp])  # the run cache warm, as for every page
        selection = {"experiments": [exp], "searches": []}

        def overview():
            view = context.view([exp])
            return render_overview(view, "loss", "min", "loss", "min", "loss", "min", "loss", context)[1:]

        ref_s, ref_figures = timed(overview, repeat=5)
        memo = StateMemo(info_loader(context))
        cold_s, info = timed(lambda: memo.get(context, selection, "loss", "min"))

        def exploration():
            return render_exploration(memo.get(context, selection, "loss", "min"))

        warm_s, figures = timed(exploration, repeat=5)
    ref_mb = sum(len(json.dumps(f)) for f in ref_figures) / 1e6
    mb = sum(len(json.dumps(f)) for f in figures) / 1e6
    n_eval = len(info.searches[0].evaluations.frame)
    print(f"store: {args.trials} Hyperband trials, {n_eval} rung evaluations, built in {build_s:.1f} s")
    print(f"reference, overview render (warm):   {ref_s * 1000:7.0f} ms, figures {ref_mb:.2f} MB")
    print(f"exploration page, first view (cold): {cold_s * 1000:7.0f} ms (two store reads, analysis, projection)")
    print(
        f"exploration page render (warm):      {warm_s * 1000:7.0f} ms (target <= 300), "
        f"figures {mb:.2f} MB (target <= 3), {warm_s / ref_s:.1f}x the overview"
    )
    print(info.projection.note)


if __name__ == "__main__":
    main()
