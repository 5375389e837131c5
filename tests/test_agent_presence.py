"""An agent that dies is visible: agents say they are alive in the store, the control page says when none is,
and ``trellis serve`` restarts its own agent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from mlflow import MlflowClient

from tests.browser import free_port
from trellis.app.factory import create_app
from trellis.app.pages.control import agents_line
from trellis.search.control.agent import Agent
from trellis.tracking import agents


def test_presence_follows_an_agent_from_alive_to_silent_to_stopped(store: str):
    client = MlflowClient(tracking_uri=store)
    assert agents.presence(client).alive == ()
    assert agents.presence(client).sentence(time.time()).startswith("No agent has run on this store")
    agent = Agent(store, echo=lambda _line: None)
    agent.beat()
    now = time.time()
    seen = agents.presence(client, now)
    assert [a.name for a in seen.alive] == [agent.token]
    assert seen.sentence(now).startswith("1 agent alive")
    later = now + agents.STALE_S + 1  # nothing said since: as after a SIGKILL
    silent = agents.presence(client, later)
    assert silent.alive == () and silent.last.name == agent.token
    assert "No agent is alive since" in silent.sentence(later) and "went silent" in silent.sentence(later)
    agent.beat("stopped")
    stopped = agents.presence(client)
    assert stopped.alive == () and "stopped" in stopped.sentence(time.time())


def test_old_agents_are_pruned_and_bad_tags_are_skipped(store: str):
    client = MlflowClient(tracking_uri=store)
    client.set_experiment_tag("0", agents.PREFIX + "old:1:x", '{"started": 1, "seen": 2, "state": "alive"}')
    client.set_experiment_tag("0", agents.PREFIX + "bad:2:y", "not json {")
    assert [a.name for a in agents.agents_seen(client)] == ["old:1:x"]
    agents.prune(client)
    assert agents.agents_seen(client) == []


def test_the_control_page_says_whether_an_agent_is_alive(store: str, tmp_path):
    client = MlflowClient(tracking_uri=store)
    client.search_experiments()  # the store exists
    context = create_app(store, cache=str(tmp_path / "cache")).trellis_context
    assert "No agent has run" in str(agents_line(context).children)
    agent = Agent(store, echo=lambda _line: None)
    agent.beat()
    line = agents_line(context)
    assert "1 agent alive" in line.children and line.className == "text-success"
    gone = agents_line(context, now=time.time() + agents.STALE_S + 1)
    assert "No agent is alive since" in gone.children and gone.className == "text-danger"


def test_serve_restarts_its_agent_when_it_dies(store: str, tmp_path):
    MlflowClient(tracking_uri=store).search_experiments()
    client = MlflowClient(tracking_uri=store)
    serve = subprocess.Popen(
        [sys.executable, "-m", "trellis", "serve", "--tracking-uri", store, "--port", str(free_port())],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    first = second = ""
    try:
        first = _alive_agent(client, serve)
        os.kill(int(first.split(":")[1]), signal.SIGKILL)
        second = _alive_agent(client, serve, other_than=first)
        assert second.split(":")[1] != first.split(":")[1]
    finally:
        serve.send_signal(signal.SIGINT)
        out, _ = serve.communicate(timeout=90)
    assert "the agent beside the app exited with code -9; restarting it (1 of 5)" in out, out[-3000:]
    states = {a.name: a.state for a in agents.agents_seen(client)}
    assert states[second] == "stopped"  # the restarted agent stopped with serve, and said so
    assert states[first] == "alive"  # the killed one could not: it goes silent, gone once STALE_S has passed


def _alive_agent(client: MlflowClient, proc: subprocess.Popen, other_than: str | None = None) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        alive = [a.name for a in agents.presence(client).alive if a.name != other_than]
        if alive:
            return alive[0]
        time.sleep(0.5)
    raise AssertionError("no agent came alive")
