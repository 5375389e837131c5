"""Agents: each waiting search runs exactly once, a killed agent's search is resumed by another with nothing
lost, and stop / resume / edit / cancel go through the store. On SQLite and on the local PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from mlflow import MlflowClient

from tests.conftest import ROOT, child_runs
from trellis.search.control.agent import Agent
from trellis.search.control.policy import ServerPolicy
from trellis.search.control.queue import cancel_or_stop, request_edit, request_resume, submit_search
from trellis.tracking import schema
from trellis.tracking.claims import claim, search_status

SLOW = "trellis.examples.synthetic:slow"
POLICY = ServerPolicy(extra_trials=frozenset({SLOW}))


@pytest.fixture(params=["sqlite", "postgresql"])
def uri(request, store):
    return store if request.param == "sqlite" else request.getfixturevalue("pg_uri")


def _config(make_config, uri: str, **changes):
    return make_config(tracking__uri=uri, tracking__experiment="agents", executor__workers=1, **changes)


def _drive(agents: list[Agent], client: MlflowClient, ids: list[str], timeout: float = 120) -> None:
    """Step the agents in turn until every search in ``ids`` has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for agent in agents:
            agent.step()
        runs = [client.get_run(i) for i in ids]
        if all(r.info.status not in ("RUNNING", "SCHEDULED") for r in runs) and not any(a.children for a in agents):
            return
        time.sleep(0.2)
    raise AssertionError(f"searches did not end: {[client.get_run(i).info.status for i in ids]}")


def _stop_once_running(agent: Agent, client: MlflowClient, search_id: str) -> None:
    """Step the agent until the search has a trial, stop it as a user would, and drive it to its end."""
    deadline = time.monotonic() + 60
    while not child_runs(client, search_id):
        assert time.monotonic() < deadline
        agent.step()
        time.sleep(0.1)
    assert cancel_or_stop(client, search_id) == "stopping"
    _drive([agent], client, [search_id])


def _agent(uri: str, tmp_path, name: str) -> Agent:
    return Agent(uri, max_searches=2, poll_s=0.2, policy=POLICY, log_dir=tmp_path / name, echo=lambda *_: None)


def test_claim_is_won_by_exactly_one_of_many_racing_agents(uri, make_config):
    search_id = submit_search(_config(make_config, uri), launched_by="t")
    client = MlflowClient(uri)
    wins, start = [], threading.Barrier(8)

    def race(i: int) -> None:
        start.wait()
        wins.append(claim(MlflowClient(uri), search_id, schema.UNCLAIMED, f"agent-{i}"))

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 7 + [True]
    assert client.get_run(search_id).data.tags[schema.CLAIM].startswith("agent-")


def test_two_agents_run_three_waiting_searches_exactly_once(uri, make_config, tmp_path):
    client = MlflowClient(uri)
    ids = [submit_search(_config(make_config, uri, name=f"s{i}", algorithm__seed=i), launched_by="t") for i in range(3)]
    assert {search_status(client.get_run(i).info.status, client.get_run(i).data.tags).label for i in ids} == {
        "scheduled"
    }
    _drive([_agent(uri, tmp_path, "a"), _agent(uri, tmp_path, "b")], client, ids)
    for search_id in ids:
        run = client.get_run(search_id)
        assert run.info.status == "FINISHED" and run.data.tags[schema.SEARCH_STATE] == "completed"
        trials = child_runs(client, search_id)
        assert [int(t.data.tags[schema.TRIAL_NUMBER]) for t in trials] == list(range(6))  # once each, none twice
        assert all(t.info.status == "FINISHED" for t in trials)
        assert run.data.tags[schema.LAUNCHED_BY] == "t" and run.data.tags[schema.AGENT]


def test_a_killed_agents_search_is_resumed_by_another_with_nothing_lost(uri, make_config, tmp_path):
    config = _config(
        make_config,
        uri,
        trial__function=SLOW,
        space__seconds={"type": "fixed", "value": 0.15},
        budget__max=4,
        termination__max_trials=6,
    )
    client = MlflowClient(uri)
    search_id = submit_search(config, launched_by="t")
    cmd = [sys.executable, "-m", "trellis.cli", "agent", "--tracking-uri", uri, "--poll", "0.2", "--allow-trial", SLOW]
    first = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 90
        while sum(t.info.status == "FINISHED" for t in child_runs(client, search_id)) < 2:
            assert time.monotonic() < deadline, "the first agent never ran two trials"
            time.sleep(0.1)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    before = {t.info.run_id: t.info.status for t in child_runs(client, search_id)}
    finished_before = {r for r, s in before.items() if s == "FINISHED"}
    run = client.get_run(search_id)
    assert run.info.status == "RUNNING"  # its runner died with the agent: an orphan, not a clean stop

    _drive([_agent(uri, tmp_path, "second")], client, [search_id])
    run = client.get_run(search_id)
    assert run.data.tags[schema.SEARCH_STATE] == "completed", run.data.tags.get(schema.SEARCH_STOP_REASON)
    trials = child_runs(client, search_id)
    after = {t.info.run_id: t for t in trials}
    for run_id in finished_before:  # finished trials kept as they were, never run again
        assert after[run_id].info.status == "FINISHED"
    assert not any(t.info.status == "RUNNING" for t in trials)
    completed = [t for t in trials if t.data.tags.get(schema.END_REASON) == "completed"]
    assert len(completed) == 6  # every sampled configuration completed once, interrupted ones by a retry
    steps = [m.step for t in completed for m in client.get_metric_history(t.info.run_id, "loss")]
    assert len(steps) == 6 * 4


def test_edit_cancel_stop_and_resume_from_the_store(make_config, store, tmp_path):
    client = MlflowClient(store)
    slow = {"trial__function": SLOW, "space__seconds": {"type": "fixed", "value": 0.1}, "budget__max": 2}
    edited = submit_search(_config(make_config, store, termination__max_trials=40, **slow), launched_by="t")
    request_edit(client, edited, {"max_trials": 3})  # made while it waits: applied as it starts
    cancelled = submit_search(_config(make_config, store, name="never"), launched_by="t")
    assert cancel_or_stop(client, cancelled) == "cancelled"
    agent = _agent(store, tmp_path, "a")
    _drive([agent], client, [edited, cancelled])
    run = client.get_run(edited)
    assert run.data.tags[schema.SEARCH_STOP_REASON] == "max_trials" and run.data.tags[schema.N_TRIALS] == "3"
    assert '"max_trials": 3' in run.data.tags[schema.EDITS]
    assert float(run.data.tags[schema.SEARCH_STARTED]) * 1000 >= run.info.start_time  # started after its submit
    assert client.get_run(cancelled).info.status == "KILLED" and not child_runs(client, cancelled)

    stopped = submit_search(_config(make_config, store, termination__max_trials=8, **slow), launched_by="t")
    _stop_once_running(agent, client, stopped)
    assert client.get_run(stopped).data.tags[schema.SEARCH_STATE] == "killed"
    request_resume(client, stopped, "t")
    _drive([agent], client, [stopped])
    run = client.get_run(stopped)
    assert run.data.tags[schema.SEARCH_STATE] == "completed"
    completed = [t for t in child_runs(client, stopped) if t.data.tags.get(schema.END_REASON) == "completed"]
    assert len(completed) == 8


def test_an_agent_refuses_a_trial_not_on_its_allow_list(make_config, store, tmp_path):
    client = MlflowClient(store)
    search_id = submit_search(_config(make_config, store, trial__function="trellis.examples.synthetic:crashy"), "t")
    agent = Agent(store, policy=ServerPolicy(), log_dir=tmp_path, echo=lambda *_: None)
    assert agent.step() == []
    run = client.get_run(search_id)
    assert run.info.status == "FAILED" and "allow-list" in run.data.tags[schema.ERROR]
    assert not child_runs(client, search_id)


def _plant_script_trial(client: MlflowClient, search_id: str, tmp_path) -> object:
    """Rewrite a search's stored config as someone with write access to the store could: a script trial that
    leaves a marker file if it ever runs."""
    import json

    marker = tmp_path / "planted-ran"
    script = tmp_path / "planted.py"
    script.write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    raw = json.loads(client.get_run(search_id).data.tags[schema.CONFIG_JSON])
    raw["trial"] = {"script": str(script)}
    client.set_tag(search_id, schema.CONFIG_JSON, json.dumps(raw))
    return marker


def test_a_stored_config_rewritten_to_another_trial_is_refused_on_resume_too(make_config, store, tmp_path):
    """The allow-list is checked on every start and resume against the config about to run (issue 25)."""
    client = MlflowClient(store)
    stopped = submit_search(_config(make_config, store, termination__max_trials=8, trial__function=SLOW), "t")
    agent = _agent(store, tmp_path, "a")
    _stop_once_running(agent, client, stopped)
    marker = _plant_script_trial(client, stopped, tmp_path)
    request_resume(client, stopped, "t")
    _drive([agent], client, [stopped])
    run = client.get_run(stopped)
    assert run.info.status == "FAILED" and "is not on this agent's allow-list" in run.data.tags[schema.ERROR]
    assert not marker.exists()


def test_the_agents_child_checks_the_config_it_is_about_to_run(make_config, store, tmp_path):
    """Rewritten between the agent's check and the child's read: the child refuses it (the same list, passed in
    its environment) and ends the search as failed, with nothing run."""
    from trellis.cli import run_claimed

    client = MlflowClient(store)
    search_id = submit_search(_config(make_config, store, trial__function=SLOW), "t")
    marker = _plant_script_trial(client, search_id, tmp_path)
    env = POLICY.as_env()
    cmd = [sys.executable, "-P", "-m", "trellis.cli.run_claimed", store, search_id, "start"]
    done = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2 and "refused" in done.stderr and "allow-list" in done.stderr
    run = client.get_run(search_id)
    assert run.info.status == "FAILED" and run.data.tags[schema.SEARCH_STOP_REASON] == "refused"
    assert not marker.exists() and not child_runs(client, search_id)
    assert run_claimed.__doc__ and "allow-list" in run_claimed.__doc__
