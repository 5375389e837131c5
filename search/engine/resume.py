"""Continue an interrupted search, and ask a running one to stop, through MLflow alone.

``trellis search stop ID`` sets a tag on the search run; the runner looks for it every few seconds,
kills its running trials (marked killed, checkpoints kept) and ends the search as ``stopped``.
``trellis search resume ID`` rebuilds the config from the search run, reads its trials back, and runs
on in the same parent run. Random, grid and TPE: finished trials (completed, failed, early-stopped,
pruned) are told to the sampler and never run again; each interrupted one (killed, or left RUNNING by a
crash) runs again as a new trial tagged with the number it retries.

Hyperband, BOHB and PBT decide from results, so their scheduler is rebuilt by replaying the search:
each job it asks for is matched with the recorded trials (new trials in number order), a job whose trial
reported the objective at the job's last step counts as done with that value, and a job that was cut off
continues live in its own run from the last step it reported (trials save their checkpoint before each
report, as the examples do). The first job beyond the record is where the search goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlflow import MlflowClient

from trellis.search.config import ConfigError, SearchConfig, parse_config
from trellis.search.config.yaml_text import MAX_BYTES, ConfigTextError, load_text
from trellis.search.schedulers.base import JobRequest, Scheduler
from trellis.search.space import Categorical, Fixed, Float, Int, SearchSpace, Value
from trellis.tracking import schema
from trellis.tracking.schema import EndReason
from trellis.tracking.writer import param_text

FINISHED = (EndReason.COMPLETED, EndReason.FAILED, EndReason.EARLY_STOPPED, EndReason.PRUNED)
INTERRUPTED = (EndReason.KILLED, "running")


class ResumeError(ValueError):
    """The search cannot be resumed; the message says why."""


@dataclass(frozen=True)
class PastTrial:
    number: int
    run_id: str
    params: dict[str, Value]
    end_reason: str
    value: float | None
    sampled: bool  # proposed by the sampler (not a retry of an interrupted trial, not a PBT exploit)
    reached: int = 0  # the last step it reported
    target: int = 0  # where its latest job was to stop (a trial killed as a job starts has reached < target)
    values: tuple[float | None, ...] = ()  # every objective's value (several objectives), in their order

    @property
    def finished(self) -> bool:
        return self.end_reason in FINISHED


def resolve_search_id(client: MlflowClient, given: str) -> str:
    """A full search id from any unique prefix of one (the app shows short ids); ResumeError when no search or
    several searches start with it."""
    given = given.strip().lower()
    if len(given) == 32:
        return given
    if not given or any(c not in "0123456789abcdef" for c in given):
        raise ResumeError(
            f"{given!r} is not a search id (ids are hexadecimal, e.g. the one `trellis search run` printed)"
        )
    query = f"tags.`{schema.TYPE}` = 'search'"
    ids = [e.experiment_id for e in client.search_experiments()]
    found, token = [], None
    while ids:
        page = client.search_runs(ids, query, max_results=1000, page_token=token)
        found += [r.info.run_id for r in page if r.info.run_id.startswith(given)]
        token = page.token
        if not token:
            break
    if not found:
        raise ResumeError(f"no search id starts with {given!r} in {client.tracking_uri}")
    if len(found) > 1:
        raise ResumeError(f"{given!r} is ambiguous: {len(found)} searches start with it ({', '.join(found[:4])}...)")
    return found[0]


def check_resumable(client: MlflowClient, search_id: str, now: float | None = None) -> None:
    """Refuse to resume a search another process is still running, or one that already completed."""
    import time

    from trellis.tracking.claims import HEARTBEAT_STALE_S

    run = client.get_run(search_id)
    tags = run.data.tags
    if run.info.status == "FINISHED" and tags.get(schema.SEARCH_STATE) == "completed":
        raise ResumeError(f"search {search_id} already completed: there is nothing to resume")
    if run.info.status == "SCHEDULED":
        raise ResumeError(f"search {search_id} has not started yet: an agent will start it (trellis agent)")
    beat = float(tags.get(schema.HEARTBEAT, 0) or 0)
    silent = (now or time.time()) - beat
    if run.info.status == "RUNNING" and silent < HEARTBEAT_STALE_S and not runner_gone(tags.get(schema.RUNNER)):
        runner = tags.get(schema.RUNNER, "another process")
        raise ResumeError(
            f"search {search_id} is running ({runner}, last seen {silent:.0f} s ago): stop it first "
            f"(trellis search stop {search_id[:8]}), or wait {HEARTBEAT_STALE_S:.0f} s if its process died"
        )


def runner_gone(runner: str | None) -> bool:
    """Whether the recorded runner (``host:pid``) is known dead: on this host, no such process."""
    import os
    import socket

    host, _, pid = (runner or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:  # a zombie (dead, not yet reaped by its parent) is gone too
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def search_run(client: MlflowClient, search_id: str):
    """The search (parent) run, or ResumeError saying there is none by that id."""
    try:
        run = client.get_run(search_id)
    except Exception as exc:
        raise ResumeError(f"no run {search_id} in {client.tracking_uri}: {str(exc).splitlines()[0]}") from exc
    if run.data.tags.get(schema.TYPE) != "search":
        raise ResumeError(f"run {search_id} is not a Trellis search run")
    return run


def request_stop(client: MlflowClient, search_id: str) -> None:
    run = search_run(client, search_id)
    if run.info.status != "RUNNING":
        raise ResumeError(f"search {search_id} is not running (status {run.info.status})")
    client.set_tag(search_id, schema.STOP_REQUESTED, "1")


def recorded_config(client: MlflowClient, search_id: str) -> SearchConfig:
    """The config a search ran with, from its tag (or its YAML artifact when the tag was too long)."""
    tags = search_run(client, search_id).data.tags
    try:  # read from the store, so untrusted: plain values only, bounded, one line when it is not a config
        if schema.CONFIG_JSON in tags:
            raw = load_text(tags[schema.CONFIG_JSON], as_json=True)
        else:
            with open(client.download_artifacts(search_id, schema.CONFIG_ARTIFACT), encoding="utf-8") as fh:
                raw = load_text(fh.read(MAX_BYTES + 1))
    except (ConfigTextError, OSError, UnicodeDecodeError) as exc:
        raise ResumeError(f"the recorded config cannot be read: {str(exc).splitlines()[0][:200]}") from None
    if not isinstance(raw, dict):
        raise ResumeError("the recorded config is not a mapping of keys to values")
    raw = _as_source_config(raw)
    try:
        config = parse_config(raw, source=raw.get("source"))
    except ConfigError as exc:
        raise ResumeError(f"the recorded config no longer validates:\n{exc}") from exc
    return config


def _as_source_config(normalised: dict[str, Any]) -> dict[str, Any]:
    """``SearchConfig.to_dict()`` is loadable as it is, but for the values it writes as null."""
    raw = dict(normalised)
    raw["algorithm"] = {k: v for k, v in raw.get("algorithm", {}).items() if v is not None}
    raw["executor"] = {k: v for k, v in raw.get("executor", {}).items() if v is not None}
    return raw


def past_trials(client: MlflowClient, search_id: str, config: SearchConfig) -> list[PastTrial]:
    run = client.get_run(search_id)
    query = f"tags.`{schema.SEARCH_ID}` = '{search_id}' and tags.`{schema.TYPE}` = 'trial'"
    trials, token = [], None
    while True:
        page = client.search_runs([run.info.experiment_id], query, max_results=1000, page_token=token)
        for r in page:
            tags = r.data.tags
            if tags.get(schema.RETRIED_BY) == tags.get(schema.TRIAL_NUMBER):
                continue  # an attempt its own trial superseded (a lost Dask worker): the newer run holds the trial
            value = r.data.metrics.get(config.objective.metric)
            trials.append(
                PastTrial(
                    number=int(tags[schema.TRIAL_NUMBER]),
                    run_id=r.info.run_id,
                    params=typed_params(config.space, r.data.params),
                    end_reason=tags.get(schema.END_REASON, "running"),
                    value=value,
                    sampled=tags.get(schema.RETRY_OF, tags[schema.TRIAL_NUMBER]) == tags[schema.TRIAL_NUMBER]
                    and schema.PBT_PARENT not in tags,
                    reached=int(float(tags.get(schema.BUDGET_REACHED, 0))),
                    target=int(float(tags.get(schema.BUDGET_MAX, 0))),
                    values=tuple(r.data.metrics.get(o.metric) for o in config.objectives),
                )
            )
        token = page.token
        if not token:
            return sorted(trials, key=lambda t: t.number)


def typed_params(space: SearchSpace, recorded: dict[str, str]) -> dict[str, Value]:
    """MLflow keeps params as strings; give each back its type from the space."""
    out: dict[str, Value] = {}
    for p in space:
        if p.name not in recorded:
            continue
        text = recorded[p.name]
        if isinstance(p, Float):
            out[p.name] = float(text)
        elif isinstance(p, Int):
            out[p.name] = int(float(text))
        elif isinstance(p, Categorical | Fixed):
            options = p.choices if isinstance(p, Categorical) else (p.value,)
            out[p.name] = next((c for c in options if param_text(c) == text), text)
        else:  # kinds whose values are texts (architectures)
            out[p.name] = text
    return out


def retries(past: list[PastTrial]) -> list[tuple[int, dict[str, Value]]]:
    """Random, grid, TPE: the interrupted trials to run again, once each, in number order. An interrupted
    trial whose configuration also finished (it was already retried) is not run a third time."""
    finished = [p.params for p in past if p.finished]
    return [(t.number, t.params) for t in past if not t.finished and t.params not in finished]


@dataclass(frozen=True)
class ReplayedJob:
    trial: int
    step: int
    value: float | None
    state: str  # completed | failed


def replay(
    scheduler: Scheduler, past: dict[int, PastTrial], objective_at: dict[int, dict[int, float]]
) -> tuple[list[ReplayedJob], list[JobRequest]]:
    """Bring a fresh budgeted scheduler to where the recorded search stopped (pure: no MLflow, no runner).

    ``objective_at[trial][step]`` is the objective a trial reported at each step. Returns the jobs that
    had ended (to tell the sampler) and the requests to start first: the cut-off jobs, continued from
    their last reported step, then the first job the record does not hold.
    """
    done: list[ReplayedJob] = []
    pending: list[JobRequest] = []
    new_numbers = iter(sorted(past))
    while True:
        request = scheduler.next_job()
        if request is None:
            break
        if request.trial is None:
            number = next(new_numbers, None)
            if number is None:
                pending.append(request)
                break
        else:
            number = request.trial
        trial = past[number]
        scheduler.on_job_started(number, trial.params)
        value = objective_at.get(number, {}).get(request.budget_stop)
        # An interrupted trial was cut off in its latest job only: the runner records where each job is to
        # stop as it starts, so a trial killed just as its next job began still has its earlier job done.
        # A latest job that reported every step but never returned continues with no steps left, to finish.
        latest = max(trial.target, trial.reached)
        cut_off = trial.end_reason in INTERRUPTED and request.budget_stop >= latest
        if value is not None and not cut_off:
            done.append(ReplayedJob(number, request.budget_stop, value, EndReason.COMPLETED))
            scheduler.on_trial_end(number, request.budget_stop, value, EndReason.COMPLETED)
        elif trial.end_reason == EndReason.FAILED:
            done.append(ReplayedJob(number, trial.reached, None, EndReason.FAILED))
            scheduler.on_trial_end(number, trial.reached, None, EndReason.FAILED)
        else:  # cut off by the interruption: continue it in its own run
            start = min(max(request.budget_start, trial.reached), request.budget_stop)
            pending.append(JobRequest(request.budget_stop, start, trial=number, tags=request.tags))
        scheduler.drain_updates()  # those decisions are in MLflow already
    return done, pending
