"""What a trial run records so that it can be run again: code version, code hash, versions, hardware, seed.

Everything here but the seed is the same for every trial of a search, so the runner computes it once as the
search opens (``search_repro_tags``) and adds it to the tags each trial run starts with. Nothing here imports
the trial's module: its file is found with ``importlib.util.find_spec`` and hashed as bytes; git is asked in
a subprocess (``git rev-parse``), and a trial outside any git repository simply has no commit tags.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from trellis.search.config import SearchConfig, TrialSpec
from trellis.search.config.trial_module import find_trial_module
from trellis.tracking import schema

log = logging.getLogger(__name__)
PACKAGES = ("torch", "numpy", "scikit-learn", "mlflow", "trellis-hpo")
GIT_TIMEOUT_S = 10.0
SEED_BITS = 32  # numpy's and torch's seeding both accept any value below 2**32


def trial_seed(search_seed: int | str, number: int) -> int:
    """The seed trial ``number`` gets: a hash of the search seed and the number (stable across Python runs,
    machines and resumes; independent for neighbouring trials)."""
    digest = hashlib.sha256(f"trellis-seed:{search_seed}:{int(number)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (2**SEED_BITS)


def search_seed(config: SearchConfig, search_id: str) -> int | str:
    """``algorithm.seed`` when the config gives one; else the search id (so a resumed search, which keeps its
    id, gives its trials the seeds they had)."""
    return config.algorithm.seed if config.algorithm.seed is not None else search_id


# -- the trial's code -----------------------------------------------------------------------------


def trial_file(spec: TrialSpec) -> Path | None:
    """The file the trial runs: its script, or the source of its function's module (None when not found)."""
    if spec.script:
        path = Path(spec.script)
        if not path.is_absolute():
            path = Path(spec.workdir or os.getcwd()) / path
        return path.resolve() if path.is_file() else None
    found_spec = find_trial_module(spec)
    origin = found_spec.origin if found_spec else None
    if not origin or not Path(origin).is_file():
        return None
    return Path(origin).resolve()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class GitState:
    repo: str
    commit: str
    dirty: bool
    branch: str | None
    remote: str | None


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_state(path: Path) -> GitState | None:
    """The git repository holding ``path`` (a file or folder): commit, dirty flag, branch, remote URL. None when
    git is missing or the path is in no repository (or in one without commits)."""
    if shutil.which("git") is None:
        return None
    folder = path if path.is_dir() else path.parent
    top = _git(folder, "rev-parse", "--show-toplevel")
    commit = _git(folder, "rev-parse", "HEAD") if top else None
    if not top or not commit:
        return None
    status = _git(folder, "status", "--porcelain", "--untracked-files=no")
    branch = _git(folder, "rev-parse", "--abbrev-ref", "HEAD")
    remote = _git(folder, "config", "--get", "remote.origin.url")
    return GitState(
        repo=top,
        commit=commit,
        dirty=bool(status),
        branch=branch if branch and branch != "HEAD" else None,
        remote=remote or None,
    )


def code_tags(spec: TrialSpec) -> dict[str, str]:
    """The code a trial runs: its file and hash, and the git state of the repository it is in."""
    path = trial_file(spec)
    if path is None:
        return {}
    tags = {schema.CODE_FILE: str(path), schema.CODE_SHA256: file_sha256(path)}
    git = git_state(path)
    if git is not None:
        tags.update(
            {
                schema.CODE_COMMIT: git.commit,
                schema.CODE_DIRTY: "true" if git.dirty else "false",
                schema.CODE_REPO: git.repo,
                schema.MLFLOW_GIT_COMMIT: git.commit,
                schema.MLFLOW_GIT_DIRTY: "true" if git.dirty else "false",
            }
        )
        if git.branch:
            tags[schema.MLFLOW_GIT_BRANCH] = git.branch
        if git.remote:
            tags[schema.MLFLOW_GIT_REPO_URL] = git.remote
    return tags


# -- the environment ---------------------------------------------------------------------------------


def version_tags() -> dict[str, str]:
    """Python's version and the key packages' (read from their metadata: nothing is imported)."""
    tags = {schema.VERSION_PREFIX + "python": platform.python_version()}
    for package in PACKAGES:
        try:
            version = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
        name = "trellis" if package == "trellis-hpo" else package
        tags[schema.VERSION_PREFIX + name] = version
    return tags


def gpu_names() -> list[str]:
    """The GPUs CUDA would show this process, by name; empty without CUDA.

    torch is asked only when it is already imported and says CUDA is there (``is_available`` does not start
    CUDA, so worker processes forked later can still use it); the names come from ``nvidia-smi``, restricted
    to ``CUDA_VISIBLE_DEVICES`` when that lists indices."""
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if not torch.cuda.is_available():
                return []
        except Exception:
            return []
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        done = subprocess.run(
            [smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return []
    names = [line.strip() for line in done.stdout.splitlines() if line.strip()] if done.returncode == 0 else []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        wanted = [v.strip() for v in visible.split(",") if v.strip()]
        if all(v.isdigit() for v in wanted):
            names = [names[int(v)] for v in wanted if int(v) < len(names)]
    return names


def hardware_tags() -> dict[str, str]:
    tags = {schema.HW_CPUS: str(os.cpu_count() or 0)}
    gpus = gpu_names()
    if gpus:
        tags[schema.HW_GPU] = ",".join(gpus)
    return tags


def search_repro_tags(config: SearchConfig) -> dict[str, str]:
    """What every trial run of this search records about code, environment and hardware (computed once).
    Finding them never stops a search: what cannot be found (a package ``__init__`` that raises while its
    module is looked up, say) is left out, with a warning in the log."""
    tags: dict[str, str] = {}
    for part in (code_tags, version_tags, hardware_tags):
        try:
            tags.update(part(config.trial) if part is code_tags else part())
        except Exception as exc:  # recording what ran must not cost the search
            log.warning("reproducibility tags: %s failed (%s: %s)", part.__name__, type(exc).__name__, exc)
    return tags
