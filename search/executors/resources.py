"""Which GPUs and CPUs a trial gets: ``gpus: auto`` found on this machine, places planned for the workers,
and what a worker process does with its place (``CUDA_VISIBLE_DEVICES``, CPU affinity).

A place is fixed per worker: a local worker is a long-lived process, and CUDA reads ``CUDA_VISIBLE_DEVICES``
once, when a process first touches it; so a worker keeps its GPU for its life, and a worker that dies is
replaced on the same place. At most ``per_gpu`` workers share a GPU, and CPU sets of workers are disjoint.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass

log = logging.getLogger(__name__)

CUDA_VISIBLE = "CUDA_VISIBLE_DEVICES"
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_NVIDIA_SMI_GPU = re.compile(r"^GPU (\d+):")


@dataclass(frozen=True)
class Place:
    """Where one worker runs its trials: its GPU ids (empty: no GPU given) and CPUs (None: not pinned)."""

    gpus: tuple[str, ...] = ()
    cpus: tuple[int, ...] | None = None

    def environment(self) -> dict[str, str]:
        """What the worker sets in its environment (a script trial inherits it)."""
        env = {CUDA_VISIBLE: ",".join(self.gpus)} if self.gpus else {}
        if self.cpus is not None:  # math libraries start one thread per CPU of the machine, not per CPU pinned
            env.update({var: str(len(self.cpus)) for var in THREAD_VARS if var not in os.environ})
        return env


def _visible_list() -> list[str] | None:
    """The runner's own ``CUDA_VISIBLE_DEVICES`` as ids (None when it is not set)."""
    raw = os.environ.get(CUDA_VISIBLE)
    if raw is None:
        return None
    ids = []
    for piece in raw.split(","):
        piece = piece.strip()
        if not piece or piece.startswith("-"):  # CUDA stops at the first entry that is not a device
            break
        ids.append(piece)
    return ids


def _torch_count() -> int | None:
    """GPUs torch sees (0 when it sees no CUDA), or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    try:
        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # a broken driver: as if there were no CUDA
        return 0


def _nvidia_smi_ids() -> list[str]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=20, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [m.group(1) for line in out.splitlines() if (m := _NVIDIA_SMI_GPU.match(line.strip()))]


@functools.cache
def detect_gpus() -> tuple[str, ...]:
    """``gpus: auto``: the GPU ids trials may use here. torch's count when it sees CUDA, else ``nvidia-smi -L``;
    a runner started with ``CUDA_VISIBLE_DEVICES`` shares out those ids. Logged once per process."""
    visible = _visible_list()
    count = _torch_count()
    if count:
        ids = tuple(visible[:count]) if visible is not None else tuple(str(i) for i in range(count))
        how = "torch"
    else:
        found = _nvidia_smi_ids()
        if visible is not None and found:
            found = visible
        ids, how = tuple(found), "nvidia-smi"
    if ids:
        log.info("executor.gpus: auto found %d GPU(s) through %s: %s", len(ids), how, ", ".join(ids))
    else:
        log.warning(
            "executor.gpus: auto found no GPU (%s, and no nvidia-smi lists one): trials run on the CPU",
            "torch sees no CUDA" if count == 0 else "torch is not installed",
        )
    return ids


def resolve_gpus(gpus: tuple[str, ...] | str | None) -> tuple[str, ...]:
    if gpus == "auto":
        return detect_gpus()
    return tuple(gpus or ())


def usable_cpus() -> list[int]:
    """CPUs this process may run on (its affinity where the OS tells it, else all)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def plan_places(
    workers: int, gpus: tuple[str, ...], per_gpu: int, cpus_per_trial: int | None, cpus: list[int] | None = None
) -> list[Place]:
    """One place per worker that may run at once: ``min(workers, len(gpus) * per_gpu, CPUs // cpus_per_trial)``.

    GPUs are dealt round-robin (two GPUs, per_gpu 2: 0, 1, 0, 1), so fewer workers than slots spread over
    the GPUs; CPU sets are consecutive and disjoint."""
    n = workers
    if gpus:
        n = min(n, len(gpus) * per_gpu)
    if cpus_per_trial:
        cpus = usable_cpus() if cpus is None else cpus
        if cpus_per_trial > len(cpus):
            raise ValueError(
                f"executor.cpus_per_trial: {cpus_per_trial} CPUs per trial, but this search may use {len(cpus)}"
            )
        n = min(n, len(cpus) // cpus_per_trial)
    return [
        Place(
            gpus=(gpus[i % len(gpus)],) if gpus else (),
            cpus=tuple(cpus[i * cpus_per_trial : (i + 1) * cpus_per_trial]) if cpus_per_trial and cpus else None,
        )
        for i in range(n)
    ]


def describe_cap(workers: int, places: int, gpus: tuple[str, ...], per_gpu: int, cpus_per_trial: int | None) -> str:
    """Why fewer trials than workers run at once (empty when as many do)."""
    if places >= workers:
        return ""
    parts = []
    if gpus:
        parts.append(f"{len(gpus)} GPU(s) x per_gpu {per_gpu}")
    if cpus_per_trial:
        parts.append(f"{len(usable_cpus())} CPU(s) / cpus_per_trial {cpus_per_trial}")
    return f"executor: {workers} workers, but {' and '.join(parts)} allow {places} trial(s) at once"


_warned_no_affinity = False


def enter_place(place: Place) -> None:
    """In a worker process, before any trial: take the place's environment and CPU affinity."""
    global _warned_no_affinity
    os.environ.update(place.environment())
    if place.cpus is None:
        return
    if not hasattr(os, "sched_setaffinity"):
        if not _warned_no_affinity:
            log.warning("executor.cpus_per_trial: this OS has no CPU affinity: trials are not pinned")
            _warned_no_affinity = True
        return
    try:
        os.sched_setaffinity(0, place.cpus)
    except OSError as exc:
        log.warning("executor.cpus_per_trial: could not pin a worker to CPUs %s (%s)", place.cpus, exc)
