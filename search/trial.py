"""What a trial sees, and how one job is run inside a worker.

A function trial is ``def train(ctx: TrialContext) -> dict | float | None``: it reads ``ctx.params``,
loops over ``ctx.steps()`` (budget units, e.g. epochs), calls ``ctx.report(step, metric=value, ...)``
after each, and may return final metrics (model size, latency). A script trial is any program run as
``python script.py CONFIG.json``: it reads the JSON file and prints one line per report,
``TRELLIS {"step": 3, "val_accuracy": 0.91}`` (a line without ``step`` gives final metrics).

Over 400 lines: function and script jobs share the context, the output tee and the report protocol: the trial API.
"""

from __future__ import annotations

import collections
import contextlib
import importlib
import importlib.metadata
import io
import json
import math
import os
import pickle
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trellis.search.config import TrialSpec
from trellis.search.config.trial_module import import_trial_module
from trellis.search.processes import is_subreaper, reap_children
from trellis.tracking.limits import report_problem
from trellis.tracking.schema import EndReason

REPORT_PREFIX = "TRELLIS "
TAIL_LINES = 60
ENTRY_POINT_GROUP = "trellis.trials"
ARTIFACTS_FOLDER = "artifacts"  # in a trial's checkpoint folder: files stored with its MLflow run


class TrialStopped(Exception):
    """Raised by ``ctx.report`` when the scheduler stops the trial; the worker records it as such."""


class ReportRefused(ValueError):
    """Raised by ``ctx.report`` for a value MLflow would refuse: the trial fails with the reason."""


@dataclass(frozen=True)
class TrialJob:
    """Everything a worker needs to run one job; plain data so it crosses process boundaries."""

    key: str  # unique per job: "<trial number>.<segment>"
    number: int
    params: dict[str, Any]
    spec: TrialSpec
    budget_start: int
    budget_stop: int
    resource: str
    checkpoint_dir: str
    objective: str
    wants_decisions: bool = False
    search_id: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    seed: int | None = None  # derived from the search seed and the trial number (search.engine.repro)


@dataclass
class TrialOutcome:
    """How a job ended, as the worker saw it."""

    state: str  # completed | early_stopped | failed
    metrics: dict[str, float] = field(default_factory=dict)
    step: int = 0
    error: str | None = None
    tail: str | None = None


Reporter = Callable[[int, dict[str, float]], str]


class TrialContext:
    """Handed to a function trial. ``report`` sends metrics to the runner and may stop the trial."""

    def __init__(self, job: TrialJob, reporter: Reporter) -> None:
        self.params = dict(job.params)
        self.number = job.number
        self.seed = job.seed  # this trial's seed: the same on a resume or a `trellis rerun`
        self.budget_start = job.budget_start
        self.budget_stop = job.budget_stop
        self.resource = job.resource
        self.checkpoint_dir = Path(job.checkpoint_dir)
        self.last_step = job.budget_start
        self._step = job.budget_start
        self._reporter = reporter

    def steps(self) -> Iterator[int]:
        """Budget units still to run: budget_start + 1 ... budget_stop."""
        for step in range(self.budget_start + 1, self.budget_stop + 1):
            self._step = step
            yield step

    def report(self, step: int, **metrics: float) -> None:
        problem = report_problem(step, metrics)
        if problem:
            raise ReportRefused(problem)
        clean = {k: _as_float(v) for k, v in metrics.items()}
        self.last_step = max(self.last_step, int(step))
        if self._reporter(int(step), clean) == "stop":
            raise TrialStopped(f"stopped by the scheduler at step {step}")

    # -- checkpoints ------------------------------------------------------------------------------
    # One file per step. A trial saves step e before it reports e, so a trial killed between the two has
    # reported e - 1 only; resuming loads exactly the step MLflow recorded (budget_start) instead of a newer
    # state whose metrics were never logged. The runner deletes the files older than the last step that is
    # durably in MLflow (``CheckpointFolders.prune``), never the trial: a report still in the write buffer
    # when the runner dies must not cost the checkpoint a resumed job needs.

    def checkpoint_file(self, step: int) -> Path:
        return self.checkpoint_dir / f"step-{int(step):06d}.pt"

    @property
    def artifact_dir(self) -> Path:
        """A folder for files to keep with the trial's MLflow run (held-out predictions, a plot): what it holds
        when the job ends is stored under the run's ``trial/`` artifacts (a continued trial's files replace
        those of its earlier segment). Script trials find it as ``artifacts/`` in their checkpoint folder."""
        path = self.checkpoint_dir / ARTIFACTS_FOLDER
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def checkpoint_path(self) -> Path:
        """The checkpoint this job starts from: the one saved at ``budget_start``."""
        return self.checkpoint_file(self.budget_start)

    def save_checkpoint(self, state: dict[str, Any], step: int | None = None) -> Path:
        """Save ``state`` (with torch if it is importable, else pickle) as the checkpoint of ``step``.

        ``step`` defaults to the step ``steps()`` last gave (or the last reported one, if later)."""
        step = max(self._step, self.last_step) if step is None else int(step)
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        target = self.checkpoint_file(step)
        tmp = target.with_suffix(".tmp")
        try:
            import torch

            torch.save(state, tmp)
        except ImportError:
            with open(tmp, "wb") as fh:
                pickle.dump(state, fh)
        os.replace(tmp, target)
        return target

    def load_checkpoint(self, step: int | None = None) -> dict[str, Any] | None:
        """The state saved at ``step`` (default: ``budget_start``, where this job goes on), or None."""
        path = self.checkpoint_file(self.budget_start if step is None else step)
        if not path.exists():
            return None
        try:
            import torch

            return torch.load(path, weights_only=False)
        except ImportError:
            with open(path, "rb") as fh:
                return pickle.load(fh)


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Linux: this process gets ``sig`` (SIGKILL) when its parent dies (a runner killed with SIGKILL leaves no
    worker behind, and a dead worker no script). Elsewhere nothing happens; the runner's own kills still apply."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, sig, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the request took effect
        os._exit(1)


def _default_signals() -> None:
    """In a script trial's process before exec: default signal handling (the worker ignores some)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def _script_child_setup() -> None:
    """Also gone when its worker is. Only for a child started from the worker's main thread: the kernel
    ties the parent-death signal to the thread that forked, and a pool thread may end on its own."""
    _default_signals()
    die_with_parent()


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def resolve_function(spec: TrialSpec) -> Callable[[TrialContext], Any]:
    """Import the trial function named by ``module:function`` or a registered entry point."""
    if spec.entry_point:
        matches = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=spec.entry_point)
        if not matches:
            known = sorted(ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
            raise LookupError(f"no trial entry point {spec.entry_point!r} (registered: {', '.join(known)})")
        return next(iter(matches)).load()
    assert spec.function
    module_name, func_name = spec.function.split(":")
    module = import_trial_module(spec)
    func = getattr(module, func_name, None)
    if not callable(func):
        raise LookupError(f"{spec.function}: {module_name} has no callable {func_name!r}")
    return func


def _tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def run_function_job(job: TrialJob, reporter: Reporter) -> TrialOutcome:
    ctx = TrialContext(job, reporter)
    captured = io.StringIO()
    try:
        func = resolve_function(job.spec)
        with _trial_output(job, captured):
            result = func(ctx)
    except TrialStopped:
        return TrialOutcome(EndReason.EARLY_STOPPED, step=ctx.last_step)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # any crash of user code, sys.exit included, is a FAILED trial
        tb = traceback.format_exc()
        return TrialOutcome(
            EndReason.FAILED,
            step=ctx.last_step,
            error=f"{type(exc).__name__}: {exc}"[:500],
            tail=_tail(captured.getvalue() + "\n" + tb),
        )
    metrics: dict[str, float] = {}
    problem = report_problem(None, result) if isinstance(result, dict) else None
    if problem:
        return TrialOutcome(EndReason.FAILED, step=ctx.last_step, error=f"the returned metrics: {problem}"[:500])
    if isinstance(result, dict):
        metrics = {k: _as_float(v) for k, v in result.items()}
    elif isinstance(result, int | float) and not isinstance(result, bool):
        metrics = {job.objective: float(result)}
    return TrialOutcome(
        EndReason.COMPLETED, metrics=metrics, step=max(ctx.last_step, job.budget_stop if metrics else 0)
    )


OUTPUT_LOG = "output.log"


def output_log(checkpoint_dir: str | Path) -> Path:
    """Where a trial's stdout and stderr are kept (beside its checkpoints), whatever becomes of its worker."""
    return Path(checkpoint_dir) / OUTPUT_LOG


def log_tail(checkpoint_dir: str | Path, lines: int = TAIL_LINES) -> str:
    """The last lines a trial wrote (empty when it wrote nothing)."""
    try:
        with open(output_log(checkpoint_dir), "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64_000))
            return _tail(fh.read().decode("utf-8", "replace"), lines)
    except OSError:
        return ""


class _Tee(io.TextIOBase):
    """A trial's output: to the runner's terminal with a ``[trial N]`` prefix, to its output log, and to a
    bounded capture for the stderr tail."""

    def __init__(self, capture: io.StringIO, passthrough: Any, prefix: str, log: Any) -> None:
        self._capture, self._through, self._prefix, self._log = capture, passthrough, prefix, log
        self._at_line_start = True

    def write(self, s: str) -> int:
        self._capture.write(s)
        if self._capture.tell() > 200_000:  # keep memory bounded: only the tail matters
            keep = self._capture.getvalue()[-50_000:]
            self._capture.seek(0)
            self._capture.truncate()
            self._capture.write(keep)
        if self._log is not None:
            self._log.write(s)
        self._through.write(self._prefixed(s))
        return len(s)

    def _prefixed(self, s: str) -> str:
        out = []
        for piece in s.splitlines(keepends=True):
            out.append(self._prefix + piece if self._at_line_start else piece)
            self._at_line_start = piece.endswith("\n")
        return "".join(out)

    def flush(self) -> None:
        with contextlib.suppress(Exception):
            self._through.flush()
            if self._log is not None:
                self._log.flush()


@contextlib.contextmanager
def _trial_output(job: TrialJob, captured: io.StringIO) -> Iterator[None]:
    prefix = f"[trial {job.number}] "
    try:
        Path(job.checkpoint_dir).mkdir(parents=True, exist_ok=True)
        log = open(output_log(job.checkpoint_dir), "a", buffering=1, encoding="utf-8")  # noqa: SIM115
    except OSError:
        log = None
    try:
        with (
            redirect_stderr(_Tee(captured, sys.__stderr__ or sys.stderr, prefix, log)),
            redirect_stdout(_Tee(captured, sys.__stdout__ or sys.stdout, prefix, log)),
        ):
            yield
    finally:
        if log is not None:
            log.close()


class _ScriptOutput:
    """A script trial's output lines, as for function trials: prefixed to the terminal, kept in its log."""

    def __init__(self, job: TrialJob) -> None:
        self.prefix = f"[trial {job.number}] "
        self._lock = threading.Lock()
        try:
            self._log = open(output_log(job.checkpoint_dir), "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        except OSError:
            self._log = None

    def line(self, text: str, terminal: Any) -> None:
        with self._lock, contextlib.suppress(Exception):
            terminal.write(self.prefix + text)
            terminal.flush()
            if self._log is not None:
                self._log.write(text)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()


def script_config(job: TrialJob) -> dict[str, Any]:
    """The JSON a script trial reads: its parameters plus where it stands in the search."""
    return {
        "params": job.params,
        "trial": job.number,
        "seed": job.seed,
        "search_id": job.search_id,
        "budget": {"resource": job.resource, "start": job.budget_start, "stop": job.budget_stop},
        "checkpoint_dir": job.checkpoint_dir,
        "objective": job.objective,
        "report_format": REPORT_PREFIX + '{"step": N, "<metric>": value, ...}',
    }


def run_script_job(job: TrialJob, reporter: Reporter) -> TrialOutcome:
    """Run a script trial unmodified: JSON config in, report lines out, stderr tail kept. (Long because the
    process, its two output streams and its early stop share state; split, they would pass it all around.)"""
    spec = job.spec
    assert spec.script
    workdir = Path(spec.workdir or os.getcwd())
    ckpt = Path(job.checkpoint_dir)
    ckpt.mkdir(parents=True, exist_ok=True)
    config_path = ckpt / f"config-{job.key}.json"
    config_path.write_text(json.dumps(script_config(job), indent=1, default=str))
    cmd = [spec.python or sys.executable, str(spec.script), str(config_path), *spec.args]
    env = {**os.environ, "TRELLIS_CONFIG": str(config_path), "PYTHONUNBUFFERED": "1"}
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",  # a stray non-UTF-8 byte is not the trial's end
            bufsize=1,
            preexec_fn=_script_child_setup
            if threading.current_thread() is threading.main_thread()
            else _default_signals,
            process_group=None if is_subreaper() else 0,  # elsewhere (Dask): its own group, killed as one
        )
    except OSError as exc:
        return TrialOutcome(EndReason.FAILED, error=f"cannot start {cmd[0]}: {exc}", tail=str(exc))
    stdout_done = threading.Event()
    threading.Thread(target=_end_leftovers, args=(proc, stdout_done), daemon=True).start()
    out = _ScriptOutput(job)
    stderr_tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)

    def read_stderr() -> None:
        for line in proc.stderr:  # type: ignore[union-attr]
            stderr_tail.append(line)
            out.line(line, sys.__stderr__ or sys.stderr)

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    stdout_tail: collections.deque[str] = collections.deque(maxlen=20)
    last_step, final, stopped = job.budget_start, {}, False
    assert proc.stdout is not None
    refused = None
    for line in proc.stdout:
        if not line.startswith(REPORT_PREFIX):
            stdout_tail.append(line)
            out.line(line, sys.__stdout__ or sys.stdout)
            continue
        try:
            step, values = parse_report_line(line)
        except ReportRefused as exc:
            refused = str(exc)
            proc.send_signal(signal.SIGTERM)
            break
        if step is None:
            final.update(values)
            continue
        last_step = max(last_step, step)
        if reporter(step, values) == "stop":
            stopped = True
            proc.send_signal(signal.SIGTERM)
            break
    stdout_done.set()
    code = proc.wait()
    reader.join(timeout=2)
    out.close()
    if refused:
        return TrialOutcome(EndReason.FAILED, step=last_step, error=refused[:500], tail=refused)
    if stopped:
        return TrialOutcome(EndReason.EARLY_STOPPED, step=last_step)
    if code != 0:
        tail = "".join(stderr_tail) or "".join(stdout_tail)
        return TrialOutcome(EndReason.FAILED, step=last_step, error=f"script exited with code {code}", tail=_tail(tail))
    return TrialOutcome(EndReason.COMPLETED, metrics=final, step=last_step)


def _end_leftovers(proc: subprocess.Popen, stdout_done: threading.Event, grace_s: float = 1.0) -> None:
    """Once the script has exited, what it left running (a background child holding its stdout) is killed
    after ``grace_s``: the trial ends when its script does, not when its last descendant does."""
    proc.wait()
    if stdout_done.wait(grace_s):
        return
    if is_subreaper():
        reap_children()  # its orphans were reparented to this worker
    else:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)


def parse_report_line(line: str) -> tuple[int | None, dict[str, float]]:
    """A script's ``TRELLIS {...}`` line as (step or None for final metrics, metrics); a line that is not a
    JSON object, or holds a value MLflow would refuse, raises ``ReportRefused`` quoting the line."""
    quoted = line.strip()[:300]
    try:
        payload = json.loads(line[len(REPORT_PREFIX) :])
    except ValueError as exc:
        raise ReportRefused(f"malformed report line {quoted!r}: not JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise ReportRefused(f"malformed report line {quoted!r}: not a JSON object")
    step = payload.pop("step", None)
    problem = report_problem(step, payload)
    if problem:
        raise ReportRefused(f"malformed report line {quoted!r}: {problem}")
    return (None if step is None else int(step)), {k: float(v) for k, v in payload.items()}


def run_job(job: TrialJob, reporter: Reporter) -> TrialOutcome:
    if job.spec.mode == "script":
        return run_script_job(job, reporter)
    return run_function_job(job, reporter)
