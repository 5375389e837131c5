"""What a server lets a form launch: the trial allow-list and the caps on workers, trials and time.

A form never names code. The trial of a relaunch comes from its parent's stored config, and must be on
the allow-list: the trials registered under the ``trellis.trials`` entry point group, the targets the
operator lists (``--allow-trial module:function``), and, when the operator says so
(``--allow-store-trials``), any trial a search already in the store ran.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib.metadata import entry_points

from trellis.search.config import TrialSpec

TRIALS_GROUP = "trellis.trials"


def trial_target(spec: TrialSpec) -> str:
    """What a trial runs, as one comparable string."""
    if spec.entry_point:
        return f"entry_point:{spec.entry_point}"
    if spec.function:
        return spec.function
    return f"script:{spec.script}"


def registered_trials() -> dict[str, str]:
    """``trellis.trials`` entry points: name -> ``module:function``."""
    return {ep.name: ep.value for ep in entry_points(group=TRIALS_GROUP)}


@dataclass(frozen=True)
class ServerPolicy:
    """The server settings that bound a launch. ``extra_trials``: targets the operator allows beyond the
    registered ones; ``store_trials``: allow the trial of any search already in the store."""

    max_workers: int = 4
    max_trials: int = 500
    max_time_s: float = 24 * 3600.0
    extra_trials: frozenset[str] = field(default_factory=frozenset)
    store_trials: bool = False

    @classmethod
    def from_env(cls, **overrides) -> ServerPolicy:
        """``TRELLIS_MAX_WORKERS``, ``TRELLIS_MAX_TRIALS``, ``TRELLIS_MAX_TIME_S``, ``TRELLIS_ALLOWED_TRIALS``
        (comma-separated targets), ``TRELLIS_ALLOW_STORE_TRIALS=1``; keyword overrides win."""
        env = os.environ
        values = {
            "max_workers": int(env.get("TRELLIS_MAX_WORKERS", cls.max_workers)),
            "max_trials": int(env.get("TRELLIS_MAX_TRIALS", cls.max_trials)),
            "max_time_s": float(env.get("TRELLIS_MAX_TIME_S", cls.max_time_s)),
            "extra_trials": frozenset(t for t in env.get("TRELLIS_ALLOWED_TRIALS", "").split(",") if t),
            "store_trials": env.get("TRELLIS_ALLOW_STORE_TRIALS", "") in ("1", "true", "yes"),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def as_env(self) -> dict[str, str]:
        """The allow-list as the environment ``from_env`` reads (for a child process that checks it again)."""
        return {
            "TRELLIS_ALLOWED_TRIALS": ",".join(sorted(self.extra_trials)),
            "TRELLIS_ALLOW_STORE_TRIALS": "1" if self.store_trials else "",
        }

    def allowed(self, spec: TrialSpec, ran_in_store: bool) -> bool:
        target = trial_target(spec)
        registered = registered_trials()
        if spec.entry_point and spec.entry_point in registered:
            return True
        if spec.function and spec.function in registered.values():
            return True
        return target in self.extra_trials or (self.store_trials and ran_in_store)

    def problems(self, raw: dict, parent_trial: str) -> list[tuple[str, str]]:
        """``(key.path, reason)`` for each way a raw config asks for more than this server allows (checked on
        the raw mapping, so they are listed beside the parser's problems). ``parent_trial``: the target of
        the parent search's trial, which ran in this store."""
        out = []
        trial = raw.get("trial") if isinstance(raw.get("trial"), dict) else {}
        fields = {k: v for k, v in trial.items() if k in ("function", "entry_point", "script") and isinstance(v, str)}
        spec = TrialSpec(**fields)
        if not self.allowed(spec, ran_in_store=trial_target(spec) == parent_trial):
            out.append(("trial", f"{trial_target(spec)} is not on this server's allow-list of trials"))
        caps = (
            ("executor.workers", (raw.get("executor") or {}).get("workers"), self.max_workers),
            ("termination.max_trials", (raw.get("termination") or {}).get("max_trials"), self.max_trials),
            ("termination.max_time_s", (raw.get("termination") or {}).get("max_time_s"), self.max_time_s),
        )
        algorithm = (raw.get("algorithm") or {}).get("name")
        if caps[1][1] is None and not _self_ending(algorithm):
            out.append(("termination.max_trials", f"set it: at most {self.max_trials} on this server"))
        for path, value, cap in caps:
            if isinstance(value, int | float) and not isinstance(value, bool) and value > cap:
                out.append((path, f"at most {cap:g} on this server, got {value:g}"))
        return out

    def edit_problems(self, limits: dict) -> list[tuple[str, str]]:
        """The same caps on an edit of a running search's limits."""
        out = []
        caps = {"max_trials": self.max_trials, "max_time_s": self.max_time_s, "workers": self.max_workers}
        for key, value in limits.items():
            if key not in caps:
                out.append((key, "not editable (max_trials, max_time_s, workers are)"))
            elif isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                out.append((key, f"must be a positive number, got {value!r}"))
            elif key != "max_time_s" and value != int(value):
                out.append((key, f"must be a whole number, got {value!r}"))
            elif value > caps[key]:
                out.append((key, f"at most {caps[key]:g} on this server"))
        return out


def _self_ending(algorithm) -> bool:
    """Grid, Hyperband, BOHB and PBT size themselves: they need no trial limit."""
    from trellis.search.registry import ALGORITHMS

    spec = ALGORITHMS.get(str(algorithm))
    return bool(spec and spec.self_ending)
