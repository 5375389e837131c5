"""Run the shipped torch trials the way a worker does, on CUDA when present, without MLflow.

Each trial runs as Hyperband would run it (epochs 1-3, then a continuation to 6 from its checkpoint) and
as PBT would (a copy of that checkpoint continued with a perturbed learning rate). Prints the device,
the accuracies and seconds per epoch, and exits non-zero when a job fails or does not learn.

    python examples/cuda_check.py            # the default device (cuda if available)
    TRELLIS_DEVICE=cpu python examples/cuda_check.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from trellis.examples import digits
from trellis.search.config import TrialSpec
from trellis.search.trial import TrialJob, run_job

TRIALS = {
    "digits-mlp": ("trellis.examples.digits_mlp:train", {"lr": 0.01, "hidden": 64, "layers": 2, "optimizer": "adam"}),
    "digits-cnn": ("trellis.examples.digits_cnn:train", {"lr": 0.005, "channels": 16, "optimizer": "adam"}),
}


def job(function: str, params: dict, start: int, stop: int, folder: Path, key: str) -> TrialJob:
    return TrialJob(
        key=key,
        number=0,
        params=params,
        spec=TrialSpec(function=function),
        budget_start=start,
        budget_stop=stop,
        resource="epochs",
        checkpoint_dir=str(folder),
        objective="val_accuracy",
    )


def check(name: str, function: str, params: dict, root: Path) -> list[str]:
    problems, seen = [], []

    def reporter(step: int, metrics: dict[str, float]) -> str:
        seen.append((step, metrics["val_accuracy"]))
        return "continue"

    own, copy = root / name / "own", root / name / "copy"
    t0 = time.perf_counter()
    segments = [job(function, params, 0, 3, own, "0.0"), job(function, params, 3, 6, own, "0.1")]
    outcomes = [run_job(j, reporter) for j in segments]
    per_epoch = (time.perf_counter() - t0) / 6
    shutil.copytree(own, copy)
    # PBT: the copy resumes at epoch 6 of its parent with a halved learning rate.
    outcomes.append(run_job(job(function, {**params, "lr": params["lr"] / 2}, 6, 8, copy, "1.0"), reporter))
    for o in outcomes:
        if o.state != "completed":
            problems.append(f"{name}: {o.state}: {o.error}\n{o.tail}")
    steps = [s for s, _ in seen]
    if steps != [1, 2, 3, 4, 5, 6, 7, 8]:
        problems.append(f"{name}: reported steps {steps}, expected 1..8 (a continuation restarted?)")
    final = seen[-1][1] if seen else float("nan")
    if not final > 0.8:
        problems.append(f"{name}: validation accuracy {final:.3f} after 8 epochs")
    print(
        f"{name:11s} device={digits.device()} acc@3={seen[2][1]:.3f} acc@6={seen[5][1]:.3f} acc@8={final:.3f} "
        f"{per_epoch:.3f} s/epoch (incl. start-up)"
    )
    return problems


def main() -> int:
    import torch

    print(
        f"torch {torch.__version__}, cuda available: {torch.cuda.is_available()}"
        + (f" ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "")
    )
    with tempfile.TemporaryDirectory() as tmp:
        problems = [p for name, (fn, params) in TRIALS.items() for p in check(name, fn, params, Path(tmp))]
    for p in problems:
        print("FAIL", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
