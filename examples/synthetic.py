"""Fast synthetic trials for tests and benchmarks (no torch, milliseconds each)."""

from __future__ import annotations

import math
import os
import random
import sys
import time

from trellis.search.trial import TrialContext


def noop(ctx: TrialContext) -> float:
    """Does nothing; returns a constant. Measures the engine's own overhead per trial."""
    return 0.0


def quadratic(ctx: TrialContext) -> dict[str, float]:
    """A known optimum at x=0.3, y=-0.5 (value 0, minimise); each epoch halves the gap to it.

    Categorical ``shape`` scales the loss ("bowl" is best) and the optional conditional ``z`` adds
    its square, so the best configuration is known exactly.
    """
    p = ctx.params
    scale = {"bowl": 1.0, "ridge": 2.0, "flat": 3.0}.get(str(p.get("shape", "bowl")), 1.0)
    base = scale * ((p.get("x", 0.3) - 0.3) ** 2 + (p.get("y", -0.5) + 0.5) ** 2) + p.get("z", 0.0) ** 2
    for epoch in ctx.steps():
        loss = base + 2.0**-epoch
        ctx.report(epoch, loss=loss, accuracy=math.exp(-loss))
    return {"n_params": 10.0 * (1 + int(p.get("units", 1)))}


def noisy_quadratic(ctx: TrialContext) -> dict[str, float]:
    """``quadratic``'s loss plus noise drawn from the trial's own seed (``ctx.seed``): two trials of the same
    configuration differ, a trial run again with its seed (``trellis rerun``) gives exactly its values."""
    rng = random.Random(ctx.seed)
    p = ctx.params
    base = (float(p.get("x", 0.3)) - 0.3) ** 2 + (float(p.get("y", -0.5)) + 0.5) ** 2
    noise = float(p.get("noise", 0.05))
    for epoch in ctx.steps():
        loss = base + 2.0**-epoch + abs(rng.gauss(0.0, noise))
        ctx.report(epoch, loss=loss, accuracy=math.exp(-loss))
    return {"draw": rng.random()}


SPARSE_BOWL_KINDS = {"a": 0.3, "b": 0.15, "c": 0.05, "d": 0.0}


def sparse_bowl(ctx: TrialContext) -> dict[str, float]:
    """Nine parameters, four of which do nothing: a harder known optimum (minimise ``loss``).

    loss = (x1 - 0.7)^2 + (x2 - 0.2)^2 + 0.5 (x3 - 0.55)^2 + (x1 - 0.7)(x3 - 0.55)
           + 0.1 (log10 lr + 2)^2 + penalty[kind]        (penalty: a 0.3, b 0.15, c 0.05, d 0)

    The optimum is loss 0 at x1=0.7, x2=0.2, x3=0.55, lr=1e-2, kind="d", whatever ``u1``..``u4`` are (they
    never enter the loss). x1 and x3 interact. Meant for x1..x3, u1..u4 in [0, 1], lr in [1e-5, 1] (log).
    The same loss is reported at every step.
    """
    p = ctx.params
    d1, d2, d3 = float(p["x1"]) - 0.7, float(p["x2"]) - 0.2, float(p["x3"]) - 0.55
    loss = d1**2 + d2**2 + 0.5 * d3**2 + d1 * d3 + 0.1 * (math.log10(float(p["lr"])) + 2.0) ** 2
    loss += SPARSE_BOWL_KINDS[str(p["kind"])]
    for epoch in ctx.steps():
        ctx.report(epoch, loss=loss)
    return {}


def leaves_a_child(ctx: TrialContext) -> dict[str, float]:
    """Starts a long-lived child process and returns without waiting for it (its pid in ``pidfile``): the
    worker must reap it with the trial."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    with open(str(ctx.params["pidfile"]), "w") as fh:
        fh.write(str(child.pid))
    ctx.report(1, loss=0.5)
    return {}


def zdt1(ctx: TrialContext) -> dict[str, float]:
    """ZDT1, two objectives to minimise over x1..xn in [0, 1]: f1 = x1, f2 = g (1 - sqrt(f1 / g)) with
    g = 1 + 9 mean(x2..xn); the Pareto front is f2 = 1 - sqrt(f1), where x2..xn = 0. Reported at every step."""
    xs = [float(v) for k, v in sorted(ctx.params.items()) if k.startswith("x")]
    f1 = xs[0]
    g = 1.0 + 9.0 * (sum(xs[1:]) / max(len(xs) - 1, 1))
    f2 = g * (1.0 - math.sqrt(f1 / g))
    for epoch in ctx.steps():
        ctx.report(epoch, f1=f1, f2=f2)
    return {}


def zdt1_with_x3(ctx: TrialContext) -> dict[str, float]:
    """ZDT1's two objectives plus a third, ``x3`` itself (to maximise: it fights f2)."""
    zdt1(ctx)
    ctx.report(ctx.budget_stop, x3=float(ctx.params["x3"]))
    return {}


def crashy(ctx: TrialContext) -> float:
    """Raises for x > 0.5 after printing to stderr, so tests see FAILED runs with a stderr tail."""
    x = float(ctx.params["x"])
    ctx.report(1, loss=x)
    if x > 0.5:
        print(f"about to fail for x={x:.3f}", file=sys.stderr)
        raise RuntimeError(f"synthetic failure for x={x:.3f}")
    return {"loss": x}


def flaky(ctx: TrialContext) -> dict[str, float]:
    """``quadratic``'s curves (loss and accuracy every epoch), then raises for x > 0.5 after printing to stderr:
    a failed run with a whole curve and a stderr tail."""
    final = quadratic(ctx)
    x = float(ctx.params["x"])
    if x > 0.5:
        print(f"about to fail for x={x:.3f} after {ctx.budget_stop} epochs", file=sys.stderr)
        raise RuntimeError(f"synthetic failure for x={x:.3f}")
    return final


def hard_exit(ctx: TrialContext) -> float:
    """Kills its own worker process: the runner must record FAILED and replace the worker."""
    os._exit(3)


def slow(ctx: TrialContext) -> dict[str, float]:
    """Sleeps ``seconds`` per epoch (default 0.2): for interruption, timeout and max-time tests."""

    for epoch in ctx.steps():
        time.sleep(float(ctx.params.get("seconds", 0.2)))
        ctx.report(epoch, loss=float(ctx.params.get("x", 0.0)) + 1.0 / epoch)
    return {}


def odd_values(ctx: TrialContext) -> dict[str, float]:
    """Reports NaN, infinities and a repeated step: MLflow's edge cases for the writers to agree on."""
    x = float(ctx.params.get("x", 0.0))
    for epoch in ctx.steps():
        ctx.report(epoch, loss=x * epoch, weird=math.nan if epoch % 2 else math.inf, neg=-math.inf)
    # The same step twice, with a new value (an identical value in the same millisecond is one point in
    # MLflow, in another millisecond two: which one happens is timing, not the writer's doing).
    ctx.report(ctx.budget_stop, loss=x * ctx.budget_stop + 1.0)
    return {"n_params": 7.0}


def resumable(ctx: TrialContext) -> dict[str, float]:
    """Checkpoints its step; a continued job must resume exactly where the last one stopped, else it fails.
    An optional ``seconds`` parameter sleeps after each report.

    loss = (x - 0.3)^2 + 1 / epoch: the best x wins at every budget, so promotions are predictable.
    """
    state = ctx.load_checkpoint() if ctx.budget_start > 0 else None
    done = 0 if state is None else int(state["step"])
    if done != ctx.budget_start:
        raise RuntimeError(f"asked to resume at step {ctx.budget_start} but the checkpoint holds step {done}")
    x = float(ctx.params["x"])
    for epoch in ctx.steps():
        ctx.save_checkpoint({"step": epoch})  # before reporting, so a stop at this step leaves it resumable
        ctx.report(epoch, loss=(x - 0.3) ** 2 + 1.0 / epoch)
        time.sleep(float(ctx.params.get("seconds", 0.0)))  # optional: slow enough to be interrupted
    return {"resumed_from": float(ctx.budget_start)}


def pbt_member(ctx: TrialContext) -> None:
    """A PBT member whose score accumulates over its lineage: score += lr-quality each step.

    The checkpoint holds the step, the accumulated score and the trial that wrote it; a job that does not
    find a checkpoint at exactly its start step fails, and the first report names whose checkpoint it
    continued (``inherited_from``), so tests can check that exploit copied the parent's.
    """
    state = ctx.load_checkpoint() if ctx.budget_start > 0 else None
    step, score, writer = (0, 0.0, -1) if state is None else (int(state["step"]), state["score"], state["trial"])
    if step != ctx.budget_start:
        raise RuntimeError(f"asked to resume at step {ctx.budget_start} but the checkpoint holds step {step}")
    lr = float(ctx.params["lr"])
    for epoch in ctx.steps():
        score += 1.0 - abs(math.log10(lr) + 2.0)  # best at lr = 1e-2
        ctx.save_checkpoint({"step": epoch, "score": score, "trial": ctx.number})
        ctx.report(epoch, score=score, inherited_from=float(writer))
        writer = ctx.number
        time.sleep(float(ctx.params.get("seconds", 0.0)))


BAD_REPORTS = {
    "huge_step": lambda ctx: ctx.report(10**30, loss=2.0),
    "long_key": lambda ctx: ctx.report(1, **{"k" * 1000: 1.0}),
    "path_name": lambda ctx: ctx.report(1, **{"../../etc/passwd": 1.0}),
    "text_value": lambda ctx: ctx.report(1, loss="two"),
}


def bad_reporter(ctx: TrialContext) -> dict[str, float]:
    """For x > 0.5, reports what MLflow refuses (``bad``: one of BAD_REPORTS); otherwise a normal trial."""
    x = float(ctx.params["x"])
    if x > 0.5:
        BAD_REPORTS[str(ctx.params["bad"])](ctx)
    for epoch in ctx.steps():
        ctx.report(epoch, loss=(x - 0.3) ** 2 + 1.0 / epoch)
    return {}


def silent_sleeper(ctx: TrialContext) -> dict[str, float]:
    """Writes its worker's pid beside its checkpoints, then sleeps ``seconds`` without reporting."""
    ctx.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    (ctx.checkpoint_dir / "pid").write_text(str(os.getpid()))
    time.sleep(float(ctx.params.get("seconds", 60.0)))
    return {"loss": 0.0}


def noisy(ctx: TrialContext) -> dict[str, float]:
    """Prints to stdout and stderr; with ``exit_code`` set, then kills its own worker with it."""
    print(f"training x={float(ctx.params['x']):.3f}")
    print("warning: loss is noisy", file=sys.stderr, flush=True)
    code = int(ctx.params.get("exit_code", 0))
    if code:
        os._exit(code)
    ctx.report(1, loss=float(ctx.params["x"]))
    return {}
