"""``trellis rerun RUN_ID``: run one recorded trial again, exactly, from what MLflow holds.

The trial's params (typed by the search's recorded space), its search's config, its seed and its budget are
read back; the rerun is a one-trial search (every parameter fixed at the recorded value) in the same
experiment, named ``<search>-rerun``, whose trial run carries ``trellis.rerun_of`` and the original seed. The
code, package versions and hardware are recorded again, and compared with the original's: what changed is
said as warnings before the run starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mlflow import MlflowClient

from trellis.search.config import ConfigError, SearchConfig, parse_config
from trellis.search.engine import repro
from trellis.search.engine.resume import ResumeError, recorded_config, typed_params
from trellis.tracking import schema

RUN_ID = re.compile(r"^[0-9a-f]{32}$")


class RerunError(ValueError):
    """The run cannot be rerun; the message (one line) says why."""


@dataclass(frozen=True)
class RerunPlan:
    run_id: str  # the trial run to reproduce
    config: SearchConfig  # a one-trial search of exactly its configuration
    seed: int | None  # the seed the original got (None: it recorded none)
    original_value: float | None  # its objective's last value
    warnings: list[str] = field(default_factory=list)


def _trial_run(client: MlflowClient, run_id: str):
    run_id = run_id.strip().lower()
    if not RUN_ID.match(run_id):
        raise RerunError(f"{run_id!r} is not a run id (32 hexadecimal characters, as the app and MLflow show)")
    try:
        run = client.get_run(run_id)
    except Exception as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise RerunError(f"no run {run_id} in {client.tracking_uri} ({first[:200]})") from None
    tags = run.data.tags
    if tags.get(schema.TYPE) != "trial" or not tags.get(schema.SEARCH_ID):
        raise RerunError(f"run {run_id} is not a Trellis trial run (no {schema.TYPE}=trial tag): nothing to rerun")
    return run


def plan_rerun(client: MlflowClient, run_id: str, budget: int | None = None) -> RerunPlan:
    """Everything a rerun needs, read from MLflow; RerunError (one line) when it cannot be done."""
    run = _trial_run(client, run_id)
    tags = run.data.tags
    try:
        original = recorded_config(client, tags[schema.SEARCH_ID])
    except ResumeError as exc:
        raise RerunError(f"the search of run {run.info.run_id}: {' '.join(str(exc).split())}") from None
    params = typed_params(original.space, run.data.params)
    stop = budget or int(float(tags.get(schema.BUDGET_MAX) or original.budget.max))
    experiment = client.get_experiment(run.info.experiment_id).name
    raw = original.to_dict()
    raw.update(
        name=f"{original.name}-rerun",
        space={name: {"type": "fixed", "value": value} for name, value in params.items()},
        algorithm={"name": "random"},
        budget={"resource": original.budget.resource, "min": min(original.budget.min, stop), "max": stop},
        termination={"max_trials": 1},
        executor={**raw["executor"], "workers": 1},
        tracking={"uri": client.tracking_uri, "experiment": experiment},
    )
    for key in ("early_stopping", "relaunched_from", "warm_start"):
        raw.pop(key, None)
    raw["executor"] = {k: v for k, v in raw["executor"].items() if v is not None}
    try:
        config = parse_config(raw, source=original.source)
    except ConfigError as exc:
        reasons = "; ".join(f"{path}: {reason}" for path, reason in exc.problems)
        raise RerunError(f"run {run.info.run_id} cannot run here: {reasons}") from None
    seed_text = tags.get(schema.SEED)
    seed = int(seed_text) if seed_text and seed_text.lstrip("-").isdigit() else None
    warnings = code_changes(tags, repro.code_tags(config.trial), repro.version_tags())
    if tags.get(schema.PBT_PARENT) or tags.get(schema.RESUMED_FROM):
        warnings.append(
            f"run {run.info.run_id} went on from a checkpoint it did not start with (PBT exploit or Stop-and-Go): "
            "the rerun trains its configuration from scratch"
        )
    if seed is None:
        warnings.append(f"run {run.info.run_id} recorded no seed ({schema.SEED}): the rerun gets a new one")
    value = run.data.metrics.get(original.objective.metric)
    return RerunPlan(run.info.run_id, config, seed, value, warnings)


def code_changes(recorded: dict[str, str], code_now: dict[str, str], versions_now: dict[str, str]) -> list[str]:
    """What differs between the code and packages a run recorded and the ones a rerun would use (pure)."""
    out = []
    was_file, now_file = recorded.get(schema.CODE_FILE), code_now.get(schema.CODE_FILE)
    was_hash, now_hash = recorded.get(schema.CODE_SHA256), code_now.get(schema.CODE_SHA256)
    if was_hash and was_hash != now_hash:
        where = now_file or was_file or "the trial's file"
        now = f"{now_hash[:12]}" if now_hash else "not found"
        out.append(f"the trial's code changed: {where} had sha256 {was_hash[:12]}, now {now}")
    was_commit, now_commit = recorded.get(schema.CODE_COMMIT), code_now.get(schema.CODE_COMMIT)
    if was_commit and was_commit != now_commit:
        out.append(f"the code version changed: git commit {was_commit[:12]} then, {(now_commit or 'none')[:12]} now")
    elif was_commit and code_now.get(schema.CODE_DIRTY) == "true" and recorded.get(schema.CODE_DIRTY) != "true":
        out.append(f"the repository {code_now.get(schema.CODE_REPO)} has uncommitted changes (it had none then)")
    for key, now in versions_now.items():
        was = recorded.get(key)
        if was and was != now:
            out.append(f"{key.removeprefix(schema.VERSION_PREFIX)} {was} then, {now} now")
    return out
