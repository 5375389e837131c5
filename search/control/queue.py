"""Searches waiting for an agent, and the requests that steer running ones, all as MLflow records.

A launch (from the app, or ``trellis search submit``) creates the search run at once, status SCHEDULED,
state ``scheduled``, its config stored as a search's always is, claim tag ``none``. An agent claims it
(``trellis.tracking.claims.claim``) and runs it in that run. Stop, resume and edits are tags on the search run, so
they work the same from the CLI, the app and another machine.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass

from mlflow import MlflowClient

from trellis.search.config import SearchConfig
from trellis.search.engine import run_tags
from trellis.search.engine.resume import ResumeError, check_resumable, runner_gone, search_run
from trellis.search.engine.steering import EDITABLE
from trellis.tracking import schema
from trellis.tracking.claims import claim, search_status
from trellis.tracking.links import public_app_url
from trellis.tracking.schema import SearchState
from trellis.tracking.writer import SearchRecorder, ensure_experiment

SEARCH_RUNS = f"tags.`{schema.TYPE}` = 'search'"


def submit_search(config: SearchConfig, launched_by: str) -> str:
    """Record a search for an agent to run; returns its id. Nothing runs here."""
    client = MlflowClient(tracking_uri=config.tracking.uri)
    experiment_id = ensure_experiment(client, config.tracking.experiment, config.tracking.artifact_location)
    recorder = SearchRecorder(client, experiment_id, prefer_sql=False, app_url=public_app_url(config.tracking.app_url))
    tags = {
        **run_tags.search_start_tags(config),
        schema.SEARCH_STATE: SearchState.SCHEDULED,
        schema.LAUNCHED_BY: launched_by,
        schema.CLAIM: schema.UNCLAIMED,
    }
    search_id = recorder.start_search(config.to_dict(), tags)
    client.update_run(search_id, status="SCHEDULED")
    return search_id


@dataclass(frozen=True)
class Work:
    """A search an agent may take: ``mode`` start (never ran), resume (asked for, or orphaned)."""

    search_id: str
    mode: str
    seen_claim: str


def waiting_work(client: MlflowClient, now: float | None = None) -> list[Work]:
    """Searches to run, oldest first: scheduled ones, those whose resume was requested, and orphans that an
    agent ran (a dead agent's searches are taken over; a dead CLI run waits for its user's resume)."""
    now = now or time.time()
    ids = [e.experiment_id for e in client.search_experiments()]
    if not ids:
        return []
    query = f"{SEARCH_RUNS} and tags.`{schema.CLAIM}` != ''"
    runs = client.search_runs(ids, query, max_results=1000, order_by=["attributes.start_time ASC"])
    work = []
    for run in runs:
        tags, status = run.data.tags, run.info.status
        seen = tags.get(schema.CLAIM, "")
        label = search_status(status, tags, now).label
        if label == "scheduled" and seen == schema.UNCLAIMED:
            work.append(Work(run.info.run_id, "start", seen))
        elif _wants_resume(tags, status, label):
            work.append(Work(run.info.run_id, "resume", seen))
    return work


def _wants_resume(tags: dict[str, str], status: str, label: str) -> bool:
    """Resume asked for on a search that is not running, or an agent's search whose runner is gone."""
    if schema.RESUME_REQUESTED in tags and label in ("stopped", "failed", "orphaned"):
        return True
    agents = tags.get(schema.CLAIM) not in (None, schema.UNCLAIMED, "cli")
    return status == "RUNNING" and agents and (label == "orphaned" or runner_gone(tags.get(schema.RUNNER)))


def take(client: MlflowClient, work: Work, token: str) -> bool:
    """Claim ``work`` for the agent ``token``; exactly one agent wins it."""
    if not claim(client, work.search_id, work.seen_claim, token):
        return False
    agent = token.rsplit(":", 1)[0]  # host:pid
    # The agent answers for the search until its runner beats: no other agent takes it for an orphan.
    for key, value in {schema.AGENT: agent, schema.RUNNER: agent, schema.HEARTBEAT: f"{time.time():.0f}"}.items():
        client.set_tag(work.search_id, key, value)
    if work.mode == "resume":
        with contextlib.suppress(Exception):  # already gone: nothing to clear
            client.delete_tag(work.search_id, schema.RESUME_REQUESTED)
    return True


def request_resume(client: MlflowClient, search_id: str, user: str) -> None:
    """Ask the agents to resume a stopped or orphaned search (the same path as ``trellis search resume``)."""
    run = search_run(client, search_id)
    check_resumable(client, search_id)  # not running elsewhere, not completed, not still waiting
    if schema.CLAIM not in run.data.tags:  # a search started from the CLI: agents may take it from now on
        client.set_tag(search_id, schema.CLAIM, "cli")
    client.set_tag(search_id, schema.RESUME_REQUESTED, user)


def cancel_or_stop(client: MlflowClient, search_id: str) -> str:
    """Stop a running search (its runner ends it within seconds) or cancel one still waiting for an agent."""
    from trellis.search.engine.resume import request_stop

    run = search_run(client, search_id)
    if run.info.status == "SCHEDULED" and claim(client, search_id, schema.UNCLAIMED, "cancelled"):
        client.set_tag(search_id, schema.SEARCH_STATE, SearchState.KILLED)
        client.set_tag(search_id, schema.SEARCH_STOP_REASON, "cancelled")
        client.set_terminated(search_id, status="KILLED")
        return "cancelled"
    request_stop(client, search_id)
    return "stopping"


def request_children_order(client: MlflowClient, search_id: str, order: list[str]) -> None:
    """Ask a waiting or running children search (config ``origin``) to train its waiting children in this order
    (their architecture texts); a waiting child left out is cancelled. Its runner applies it within seconds,
    or as it starts. Stored as the children's positions in ``origin.changes`` (short)."""
    from trellis.search.engine.resume import recorded_config

    run = search_run(client, search_id)
    if run.info.status not in ("RUNNING", "SCHEDULED"):
        raise ResumeError(f"search {search_id} is not waiting or running (status {run.info.status})")
    origin = recorded_config(client, search_id).origin
    if origin is None:
        raise ResumeError(f"search {search_id} does not train the children of a model")
    position = {text: i for i, (text, _) in enumerate(origin.changes)}
    if not all(isinstance(t, str) and t in position for t in order) or len(set(order)) != len(order):
        raise ResumeError("the order names architectures that are not this search's children")
    client.set_tag(search_id, schema.ORIGIN_QUEUE, json.dumps([position[t] for t in order], separators=(",", ":")))


def request_edit(client: MlflowClient, search_id: str, limits: dict) -> None:
    """Ask a running search to change its max_trials, max_time_s or workers (validated by the caller)."""
    run = search_run(client, search_id)
    if run.info.status not in ("RUNNING", "SCHEDULED"):
        raise ResumeError(f"search {search_id} is not running (status {run.info.status})")
    unknown = set(limits) - set(EDITABLE)
    if unknown:
        raise ResumeError(f"cannot edit {', '.join(sorted(unknown))} (editable: {', '.join(EDITABLE)})")
    client.set_tag(search_id, schema.EDIT_REQUESTED, json.dumps({**limits, "requested_at": time.time()}))
