"""The ``early_stopping:``, ``trial:`` sections and the trial target check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trellis.search.config.model import EarlyStopping, TrialSpec
from trellis.search.config.problems import Problems, number
from trellis.search.registry import ALGORITHMS

EARLY_STOPPING_RULES = ("median", "successive_halving")


def parse_early_stopping(raw: Any, algorithm: str, problems: Problems) -> EarlyStopping | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.add("early_stopping", "must be a mapping: {rule: median, step: 3, min_trials: 5}")
        return None
    for unknown in sorted(set(raw) - {"rule", "step", "min_trials", "eta", "resume"}):
        problems.add(f"early_stopping.{unknown}", "unknown key (allowed: eta, min_trials, resume, rule, step)")
    resume = raw.get("resume", False)
    if not isinstance(resume, bool):
        problems.add("early_stopping.resume", f"must be true or false, got {resume!r}")
    rule = raw.get("rule", "median")
    if rule not in EARLY_STOPPING_RULES:
        problems.add("early_stopping.rule", f"must be one of {', '.join(EARLY_STOPPING_RULES)}, got {rule!r}")
    step = number(raw, "step", "early_stopping", problems, integer=True, default=1)
    if step == 0 or step < -1:
        problems.add("early_stopping.step", "must be a positive number of budget units, or -1 to disable")
    min_trials = number(raw, "min_trials", "early_stopping", problems, integer=True, positive=True, default=5)
    eta = number(raw, "eta", "early_stopping", problems, integer=True, default=3)
    if eta < 2:
        problems.add("early_stopping.eta", "must be >= 2")
    if ALGORITHMS[algorithm].budgeted:
        problems.add("early_stopping", f"{algorithm} stops trials itself; early stopping is for random, grid and tpe")
    return None if step == -1 else EarlyStopping(rule, step, min_trials, eta, resume is True)


def parse_trial(raw: Any, problems: Problems) -> TrialSpec:
    allowed = {"function", "entry_point", "script", "python", "args", "timeout_s", "workdir"}
    if not isinstance(raw, dict):
        problems.add("trial", "is required: {function: 'module:function'}, {entry_point: name} or {script: path}")
        return TrialSpec(function="missing:missing")
    for unknown in sorted(set(raw) - allowed):
        problems.add(f"trial.{unknown}", f"unknown key (allowed: {', '.join(sorted(allowed))})")
    for key in ("function", "entry_point", "script", "python", "workdir"):
        if raw.get(key) is not None and (not isinstance(raw[key], str) or not raw[key].strip()):
            problems.add(f"trial.{key}", f"must be a non-empty string, got {raw[key]!r}")
    if any(p.startswith("trial.") for p, _ in problems.items):
        return TrialSpec(function="missing:missing")
    given = [k for k in ("function", "entry_point", "script") if raw.get(k)]
    if len(given) != 1:
        problems.add("trial", "give exactly one of 'function', 'entry_point' or 'script'")
        return TrialSpec(function="missing:missing")
    func = raw.get("function")
    if func is not None and (func.count(":") != 1 or not all(func.split(":"))):
        problems.add("trial.function", f"must look like 'package.module:function', got {func!r}")
    args = raw.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str | int | float) for a in args):
        problems.add("trial.args", "must be a list of strings")
        args = []
    timeout = number(raw, "timeout_s", "trial", problems, positive=True)
    if raw.get("python") is not None and not raw.get("script"):
        problems.add("trial.python", "only applies to script trials")
    return TrialSpec(
        function=func,
        entry_point=raw.get("entry_point"),
        script=raw.get("script"),
        python=raw.get("python"),
        args=tuple(str(a) for a in args),
        timeout_s=timeout,
        workdir=raw.get("workdir"),
    )


def check_trial_target(spec: TrialSpec, problems: Problems) -> None:
    """The trial can start: its script and interpreter exist, its entry point is registered, or its module
    is importable and defines the function (read from the source, without running it)."""
    import importlib.metadata
    import shutil

    if spec.workdir and not Path(spec.workdir).is_dir():
        problems.add("trial.workdir", f"no such folder: {spec.workdir}")
        return
    if spec.script:
        if not Path(spec.script).is_file():
            problems.add("trial.script", f"no such file: {spec.script}")
        if spec.python and not (Path(spec.python).is_file() or shutil.which(spec.python)):
            problems.add("trial.python", f"no such interpreter: {spec.python}")
        return
    if spec.entry_point:
        names = {ep.name for ep in importlib.metadata.entry_points(group="trellis.trials")}
        if spec.entry_point not in names:
            problems.add(
                "trial.entry_point", f"{spec.entry_point!r} is not registered (known: {', '.join(sorted(names))})"
            )
            return
        _check_entry_point_imports(spec.entry_point, problems)
        return
    assert spec.function
    _check_function(spec, problems)


def _check_entry_point_imports(name: str, problems: Problems) -> None:
    from trellis.search.config.trial_module import find_entry_point_module, missing_imports_line

    found = find_entry_point_module(name)
    missing = missing_imports_line(found, f"trial {name!r}") if found is not None else None
    if missing:
        problems.add("trial.entry_point", missing)


def _check_function(spec: TrialSpec, problems: Problems) -> None:
    from trellis.search.config.trial_module import find_trial_module, missing_imports_line

    module, name = (spec.function or ":").split(":")
    found = find_trial_module(spec)
    if found is None:
        problems.add(
            "trial.function",
            f"cannot find module {module!r} (is it installed, or in the config's folder or the working directory?)",
        )
        return
    defined = _top_level_names(found.origin)
    if defined is not None and name not in defined:
        problems.add("trial.function", f"module {module!r} defines no {name!r}")
        return
    not_callable = _plain_values(found.origin).get(name)
    if not_callable:
        problems.add("trial.function", f"{name!r} in module {module!r} is {not_callable}, not a function to call")
        return
    missing = missing_imports_line(found, f"module {module!r}")
    if missing:
        problems.add("trial.function", missing)


def _plain_values(origin: str | None) -> dict[str, str]:
    """Top-level names a module binds only to something that cannot be called (an imported module, a
    number, a string, a list or mapping literal): name -> what it is."""
    import ast

    if not origin or not origin.endswith(".py"):
        return {}
    try:
        tree = ast.parse(Path(origin).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return {}
    plain: dict[str, str] = {}
    other: set[str] = set()
    literals = (ast.Constant, ast.List, ast.Dict, ast.Tuple, ast.Set, ast.JoinedStr)
    for node in tree.body:
        if isinstance(node, ast.Import):
            plain.update({(a.asname or a.name).split(".")[0]: "a module" for a in node.names})
        elif isinstance(node, ast.Assign) and isinstance(node.value, literals):
            kind = "a value" if not isinstance(node.value, ast.Constant) else f"a {type(node.value.value).__name__}"
            plain.update({t.id: kind for t in node.targets if isinstance(t, ast.Name)})
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            other.add(node.name)
        else:
            other.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))
            if isinstance(node, ast.ImportFrom):
                other.update((a.asname or a.name) for a in node.names)
    return {name: kind for name, kind in plain.items() if name not in other}


def _top_level_names(origin: str | None) -> set[str] | None:
    """The names a module's source binds at top level, or None when that cannot be told without running it
    (no source, a star import, a module-level ``__getattr__``)."""
    import ast

    if not origin or not origin.endswith(".py"):
        return None
    try:
        tree = ast.parse(Path(origin).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None
    names: set[str] = set()
    statements = list(tree.body)
    while statements:
        node = statements.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    return None
                names.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        else:  # if/try/with/for at top level: what their bodies bind counts too
            for field in ("body", "orelse", "finalbody", "handlers"):
                statements.extend(getattr(node, field, []) or [])
            if isinstance(node, ast.For | ast.With):
                names.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))
    return None if "__getattr__" in names else names
