"""The ``executor:`` section's resource keys: ``gpus``, ``per_gpu`` and ``cpus_per_trial``.

``gpus`` is a list of GPU ids (``[0, 1]``, UUIDs such as ``GPU-5d2c...`` or ``MIG-...``, or the string
``"0,1"`` as ``CUDA_VISIBLE_DEVICES`` writes it) or ``auto``: the ids are found when the search starts
(``trellis.search.executors.resources``), never while a config is read, so the app can validate a config for a GPU
machine it does not run on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trellis.search.config.problems import Problems, number
from trellis.search.registry import EXECUTORS

RESOURCE_KEYS = {"gpus", "per_gpu", "cpus_per_trial"}
UUID_PREFIXES = ("GPU-", "MIG-")
MAX_PER_GPU = 64


def _gpu_id(value: Any) -> str | None:
    """One GPU id as ``CUDA_VISIBLE_DEVICES`` takes it, or None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if value >= 0 else None
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit() or (text.startswith(UUID_PREFIXES) and len(text) > 4 and "," not in text):
            return text
    return None


def parse_gpus(raw: Any, problems: Problems) -> tuple[str, ...] | str | None:
    if raw is None:
        return None
    if raw == "auto":
        return "auto"
    if isinstance(raw, str):
        raw = [piece for piece in raw.split(",") if piece.strip()]
    if not isinstance(raw, list):
        problems.add("executor.gpus", f"must be a list of GPU ids such as [0, 1], or auto; got {raw!r}")
        return None
    ids: list[str] = []
    for i, value in enumerate(raw):
        gpu = _gpu_id(value)
        if gpu is None:
            problems.add("executor.gpus", f"item {i}: {value!r} is not a GPU id (a number from 0, or a GPU-/MIG- UUID)")
        elif gpu in ids:
            problems.add("executor.gpus", f"GPU {gpu} is listed twice")
        else:
            ids.append(gpu)
    return tuple(ids)


def parse_resources(
    exe: Mapping[str, Any], kind: str, address: str | None, problems: Problems
) -> tuple[tuple[str, ...] | str | None, int, int | None]:
    """``(gpus, per_gpu, cpus_per_trial)`` of an ``executor:`` mapping; problems as ``executor.KEY: reason``."""
    gpus = parse_gpus(exe.get("gpus"), problems)
    per_gpu = number(exe, "per_gpu", "executor", problems, integer=True, positive=True, default=1)
    if per_gpu > MAX_PER_GPU:
        problems.add("executor.per_gpu", f"must be at most {MAX_PER_GPU} trials on one GPU, got {per_gpu}")
        per_gpu = 1
    if "per_gpu" in exe and exe["per_gpu"] is not None and gpus is None:
        problems.add("executor.per_gpu", "needs executor.gpus (a list of GPU ids, or auto)")
    cpus = number(exe, "cpus_per_trial", "executor", problems, integer=True, positive=True)
    if cpus is not None and "cpus" not in EXECUTORS[kind].provides:
        pinning = ", ".join(name for name, spec in EXECUTORS.items() if "cpus" in spec.provides)
        problems.add("executor.cpus_per_trial", f"is for kind: {pinning} (this executor does not pin CPUs per trial)")
        cpus = None
    if address is not None and isinstance(gpus, tuple) and gpus:
        problems.add(
            "executor.gpus",
            "with executor.address the cluster's workers declare their GPUs (dask worker --resources GPU=1): "
            "write gpus: auto",
        )
        gpus = "auto"
    return gpus, per_gpu, cpus
