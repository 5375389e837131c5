"""Trials for tests/test_resources.py: each writes what it saw (GPU ids, CPUs, start and end) beside its
checkpoints, then reports a loss. Standard library only, so a worker imports it quickly."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

SEEN = "seen.json"


def seen_now() -> dict:
    return {
        "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "cpus": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "pid": os.getpid(),
    }


def record(ctx) -> dict:
    """Sleeps ``params.sleep`` seconds (0.4 by default); trial ``params.die_at`` kills its own worker."""
    seen = {**seen_now(), "start": time.time()}
    ctx.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    (ctx.checkpoint_dir / SEEN).write_text(json.dumps(seen))
    if ctx.number == ctx.params.get("die_at", -1):
        os._exit(7)  # the worker process dies with the trial
    time.sleep(float(ctx.params.get("sleep", 0.4)))
    seen["end"] = time.time()
    (ctx.checkpoint_dir / SEEN).write_text(json.dumps(seen))
    ctx.report(1, loss=float(ctx.params.get("x", 0.0)) ** 2)
    return {"loss": float(ctx.params.get("x", 0.0)) ** 2}


def script_main(config_path: str) -> None:
    """A script trial: the same record, written by a separate process the worker started."""
    config = json.loads(Path(config_path).read_text())
    seen = {**seen_now(), "start": time.time()}
    time.sleep(0.2)
    seen["end"] = time.time()
    Path(config["checkpoint_dir"], SEEN).write_text(json.dumps(seen))
    x = float(config["params"].get("x", 0.0))
    print("TRELLIS " + json.dumps({"step": 1, "loss": x * x}), flush=True)


def on_dask(ctx) -> dict:
    """On a Dask worker: what the task saw, plus the worker's own name."""
    from distributed import get_worker

    seen = {**seen_now(), "start": time.time(), "worker": get_worker().name}
    time.sleep(float(ctx.params.get("sleep", 0.3)))
    seen["end"] = time.time()
    ctx.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    (ctx.checkpoint_dir / SEEN).write_text(json.dumps(seen))
    ctx.report(1, loss=1.0)
    return {"loss": 1.0}


if __name__ == "__main__":
    script_main(sys.argv[1])
