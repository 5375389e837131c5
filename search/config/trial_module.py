"""Where a trial's ``module:function`` comes from, without the user's project shadowing anything.

A trial module is looked up first in the user's project folders (the trial's ``workdir``, the config file's
folder, the working directory), then among installed modules. No folder is ever put first on ``sys.path``:
the project's folders are appended to it, so a project that has its own ``search.py``, ``app.py`` or
``json.py`` hides neither Trellis (all of it lives under ``trellis.``) nor the standard library nor any
installed package, while the trial module still imports its siblings. A trial module named like a
standard-library module is only looked up as installed.

Used by config validation (found, defines the function, its imports are installed), the worker that
imports it, and the reproducibility record (its source file).
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Iterable
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from trellis.extras import EXTRA_OF_MODULE, hint, installed

if TYPE_CHECKING:
    from trellis.search.config.model import TrialSpec

NEVER_FROM_PROJECT = frozenset(sys.stdlib_module_names) | {"trellis"}
# Module names from before everything moved under ``trellis.`` (searches stored then still resume).
LEGACY_PREFIXES = ("examples.",)


def project_dirs(spec: TrialSpec) -> list[str]:
    """The folders a trial module may sit in, first match wins: workdir, the config's folder, the cwd."""
    dirs: list[str] = []
    for folder in (spec.workdir, spec.config_dir, os.getcwd()):
        if folder:
            path = os.path.abspath(folder)
            if path not in dirs and os.path.isdir(path):
                dirs.append(path)
    return dirs


def module_name(spec: TrialSpec) -> str:
    return (spec.function or ":").split(":")[0]


def _in_project(top: str, dirs: Iterable[str]) -> ModuleSpec | None:
    if top in NEVER_FROM_PROJECT:
        return None
    for folder in dirs:
        found = importlib.machinery.PathFinder.find_spec(top, [folder])
        if found is not None and found.origin != "namespace" and (found.origin or found.submodule_search_locations):
            return found
    return None


def _find(name: str, dirs: list[str]) -> ModuleSpec | None:
    top, _, rest = name.partition(".")
    found = _in_project(top, dirs)
    if found is not None:
        parts = rest.split(".") if rest else []
        for i in range(len(parts)):
            locations = found.submodule_search_locations if found else None
            if not locations:
                return None
            fullname = ".".join([top, *parts[: i + 1]])
            found = importlib.machinery.PathFinder.find_spec(fullname, list(locations))
        return found
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None


def find_trial_module(spec: TrialSpec) -> ModuleSpec | None:
    """The trial module's spec (found without running it), or None: a registered entry point's module, or
    the ``module:function``'s."""
    if spec.entry_point:
        return find_entry_point_module(spec.entry_point)
    name = module_name(spec)
    dirs = project_dirs(spec)
    found = _find(name, dirs)
    if found is None and name.startswith(LEGACY_PREFIXES):
        found = _find(f"trellis.{name}", dirs)
    return found


def find_entry_point_module(name: str) -> ModuleSpec | None:
    """The spec of the module a registered trial entry point names (found without running it), or None."""
    import importlib.metadata

    found = importlib.metadata.entry_points(group="trellis.trials", name=name)
    module = next(iter(found)).module if found else None
    if not module:
        return None
    try:
        return importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None


def import_trial_module(spec: TrialSpec) -> ModuleType:
    """Import the trial module: from the project's folders when it is there, else as installed."""
    name = module_name(spec)
    dirs = project_dirs(spec)
    for folder in dirs:  # its own imports of sibling modules: after everything installed
        if folder not in sys.path:
            sys.path.append(folder)
    top = name.partition(".")[0]
    found = None if top in sys.modules else _in_project(top, dirs)
    if found is not None and found.loader is not None:
        module = importlib.util.module_from_spec(found)
        sys.modules[top] = module
        try:
            found.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(top, None)
            raise
    elif found is None and name.startswith(LEGACY_PREFIXES) and _find(name, dirs) is None:
        name = f"trellis.{name}"
    return importlib.import_module(name)


def missing_imports(spec: ModuleSpec, limit: int = 20) -> list[str]:
    """Top-level modules the trial module imports (itself, or the modules of its own folder that it imports)
    that are not installed; read from the sources, nothing is run."""
    origin = spec.origin
    if not origin or not origin.endswith(".py"):
        return []
    home = Path(origin).resolve().parent
    package = spec.name.rpartition(".")[0] if not spec.submodule_search_locations else spec.name
    seen: set[Path] = set()
    todo, absent = [Path(origin)], []
    while todo and len(seen) < limit:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imported(path, package):
            root = name.partition(".")[0]
            local = _local_file(name, home, package)
            if local is not None:
                todo.append(local)
                continue
            if root in NEVER_FROM_PROJECT or root in absent:
                continue
            if not installed(root) and _in_project(root, [str(home)]) is None:
                absent.append(root)
    return absent


def _imported(path: Path, package: str) -> list[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return []
    names = []
    for node in tree.body:  # top level only: an import inside a function or a try may be optional
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                base = node.module
                names += [f"{base}.{alias.name}" if base == package else base for alias in node.names]
            elif node.level == 1:
                names += [
                    f"{package}.{node.module or alias.name}" if package else (node.module or alias.name)
                    for alias in node.names
                ]
    return names


def _local_file(name: str, home: Path, package: str) -> Path | None:
    """The file of an imported module that sits in the trial module's own folder, if it does."""
    last = name[len(package) + 1 :] if package and name.startswith(f"{package}.") else name
    if "." in last:
        return None
    for candidate in (home / f"{last}.py", home / last / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def missing_imports_line(spec: ModuleSpec, label: str) -> str | None:
    """One line for the first import that is not installed: the extra to install, or the module's name."""
    absent = missing_imports(spec)
    if not absent:
        return None
    extra = EXTRA_OF_MODULE.get(absent[0])
    if extra:
        return hint(label, extra)
    return f"{label} imports {absent[0]!r}, which is not installed here"
