"""A dry run of a trial that records what it reads and reports (``trellis init``'s probe).

Run in its own process, so a trial that exits or crashes cannot take the command down:

    python -m trellis.search.engine.trial_probe RESULT.json function module:function [WORKDIR]
    python -m trellis.search.engine.trial_probe RESULT.json script SCRIPT.py PARAMS.json [WORKDIR]

A function trial gets a ``TrialContext`` whose ``params`` is a ``RecordingParams``; a Python script runs under
``runpy`` with ``json.load``/``json.loads`` handing it a ``RecordingParams`` as the config's ``params``. Both
run one budget unit. RESULT.json says which keys were read (with the default given to ``.get``, and how a
key without a default was converted: ``float()``, ``int()``, ``str()``), the metrics reported per step and at
the end, and the error if the dry run failed (what was seen until then still counts).
"""

from __future__ import annotations

import io
import json
import os
import runpy
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

MISSING_GUESS = 0.5  # what a key without a default reads as during the dry run


class _Unknown(float):
    """The value of a key read without a default: behaves as 0.5 and notes how the trial converts it."""

    def __new__(cls, name: str, uses: dict[str, Any]) -> _Unknown:
        obj = super().__new__(cls, MISSING_GUESS)
        obj._name, obj._uses = name, uses
        return obj

    def _note(self, kind: str) -> None:
        use = self._uses[self._name]
        if use.get("kind") in (None, "float"):
            use["kind"] = kind

    def __float__(self) -> float:
        self._note("float")
        return MISSING_GUESS

    def __int__(self) -> int:
        self._note("int")
        return 1

    def __index__(self) -> int:
        self._note("int")
        return 1

    def __str__(self) -> str:
        self._note("str")
        return ""

    def __bool__(self) -> bool:
        self._note("bool")
        return True


class RecordingParams(dict):
    """A trial's params that remember every key read, the default ``.get`` gave it, and its order."""

    def __init__(self, given: dict[str, Any] | None = None) -> None:
        super().__init__(given or {})
        self.uses: dict[str, dict[str, Any]] = {}

    def _use(self, key: str) -> dict[str, Any]:
        return self.uses.setdefault(str(key), {"name": str(key)})

    def get(self, key: Any, default: Any = None) -> Any:
        use = self._use(key)
        if dict.__contains__(self, key):
            use.setdefault("default", dict.__getitem__(self, key))
            return dict.__getitem__(self, key)
        if default is not None:
            use.setdefault("default", default)
        return default

    def __getitem__(self, key: Any) -> Any:
        use = self._use(key)
        if dict.__contains__(self, key):
            use.setdefault("default", dict.__getitem__(self, key))
            return dict.__getitem__(self, key)
        use["required"] = True
        return _Unknown(str(key), self.uses)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        value = self.get(key, default)
        dict.__setitem__(self, key, value)
        return value


def _plain(value: Any) -> Any:
    if isinstance(value, _Unknown):
        return None
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)


def _finish(result_path: str, params: RecordingParams, metrics: dict, error: str | None, tail: str) -> None:
    used = []
    for use in params.uses.values():
        entry = {k: _plain(v) for k, v in use.items()}
        used.append(entry)
    out = {"params": used, "metrics": metrics, "error": error, "tail": tail[-4000:]}
    Path(result_path).write_text(json.dumps(out, indent=1))


def probe_function(result_path: str, function: str, workdir: str | None) -> None:
    from trellis.search.config import TrialSpec
    from trellis.search.trial import TrialContext, TrialJob, resolve_function

    params = RecordingParams()
    metrics: dict[str, list[str]] = {"step": [], "final": []}

    def reporter(step: int, values: dict[str, float]) -> str:
        metrics["step"] += [k for k in values if k not in metrics["step"]]
        return "go"

    error, captured = None, io.StringIO()
    with tempfile.TemporaryDirectory(prefix="trellis-init-") as folder:
        spec = TrialSpec(function=function, workdir=workdir)
        job = TrialJob("probe.0", 0, {}, spec, 0, 1, "epochs", folder, "value", seed=0)
        ctx = TrialContext(job, reporter)
        ctx.params = params
        real_out = sys.stdout
        try:
            sys.stdout = captured
            result = resolve_function(spec)(ctx)
            if isinstance(result, dict):
                metrics["final"] = [str(k) for k in result]
            elif isinstance(result, int | float) and not isinstance(result, bool):
                metrics["returned_value"] = True
        except BaseException as exc:  # the trial's own failure: what was seen until then still counts
            error = f"{type(exc).__name__}: {exc}"[:300]
            captured.write(traceback.format_exc())
        finally:
            sys.stdout = real_out
    _finish(result_path, params, metrics, error, captured.getvalue())


class _ReportLines(io.TextIOBase):
    """The script's stdout: ``TRELLIS {...}`` lines are parsed for metric names, everything kept for the tail."""

    def __init__(self, metrics: dict[str, list[str]]) -> None:
        self.metrics, self.text, self._partial = metrics, io.StringIO(), ""

    def write(self, s: str) -> int:
        from trellis.search.trial import REPORT_PREFIX

        self.text.write(s)
        self._partial += s
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            if not line.startswith(REPORT_PREFIX):
                continue
            try:
                payload = json.loads(line[len(REPORT_PREFIX) :])
            except ValueError:
                continue
            if isinstance(payload, dict):
                where = "final" if "step" not in payload else "step"
                self.metrics[where] += [k for k in payload if k != "step" and k not in self.metrics[where]]
        return len(s)


def probe_script(result_path: str, script: str, params_file: str, workdir: str | None) -> None:
    from trellis.search.trial import script_config

    given = json.loads(Path(params_file).read_text()) if params_file else {}
    params = RecordingParams(given)
    metrics: dict[str, list[str]] = {"step": [], "final": []}
    real_load, real_loads = json.load, json.loads

    def wrap(value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("params"), dict):
            value["params"] = params
        return value

    json.load = lambda *a, **k: wrap(real_load(*a, **k))  # type: ignore[assignment]
    json.loads = lambda *a, **k: wrap(real_loads(*a, **k))  # type: ignore[assignment]
    error, out = None, _ReportLines(metrics)
    with tempfile.TemporaryDirectory(prefix="trellis-init-") as folder:
        from trellis.search.config import TrialSpec
        from trellis.search.trial import TrialJob

        job = TrialJob("probe.0", 0, dict(given), TrialSpec(script=script), 0, 1, "epochs", folder, "value", seed=0)
        config_path = Path(folder) / "config.json"
        config_path.write_text(json.dumps(script_config(job)))
        real_out, real_argv = sys.stdout, sys.argv
        sys.argv = [script, str(config_path)]
        sys.path.insert(0, str(Path(script).resolve().parent))
        if workdir:
            os.chdir(workdir)
        try:
            sys.stdout = out
            runpy.run_path(script, run_name="__main__")
        except SystemExit as exc:
            if exc.code not in (None, 0):
                error = f"the script exited with code {exc.code}"
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
            out.text.write(traceback.format_exc())
        finally:
            sys.stdout, sys.argv = real_out, real_argv
            json.load, json.loads = real_load, real_loads
    out.write("\n")
    _finish(result_path, params, metrics, error, out.text.getvalue())


def main(argv: list[str]) -> int:
    result_path, mode, target, *rest = argv
    if mode == "function":
        probe_function(result_path, target, rest[0] if rest else None)
    else:
        probe_script(result_path, target, rest[0] if rest else "", rest[1] if len(rest) > 1 else None)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
