"""Which agents are alive: each ``trellis agent`` says so in the store every few seconds.

An agent keeps one tag on the store's Default experiment (id 0, which every MLflow store has):
``trellis.agent.<host:pid:nonce>`` = ``{"started": s, "seen": s, "state": "alive" | "stopped"}`` (unix
seconds). No run is used, so an agent killed with SIGKILL leaves no run RUNNING: its tag just goes silent,
and a reader calls it gone once ``seen`` is older than ``STALE_S``. Tags of agents gone for a day are pruned
by the next agent that starts. The control page and ``serve`` read ``presence``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from mlflow import MlflowClient

PREFIX = "trellis.agent."
EXPERIMENT = "0"  # MLflow's Default experiment
BEAT_S = 5.0  # how often an agent says it is alive
STALE_S = 30.0  # silent for longer: gone (killed, its machine down, the store unreachable from it)
PRUNE_S = 24 * 3600.0


@dataclass(frozen=True)
class AgentSeen:
    name: str  # host:pid:nonce
    started: float
    seen: float
    state: str  # alive | stopped

    def alive(self, now: float) -> bool:
        return self.state == "alive" and now - self.seen <= STALE_S


@dataclass(frozen=True)
class Presence:
    """The agents of a store, as a page says it: how many are alive, and when the last one was seen."""

    alive: tuple[AgentSeen, ...]
    last: AgentSeen | None  # the most recently seen agent (when none is alive: since when there is none)

    def sentence(self, now: float) -> str:
        if self.alive:
            names = ", ".join(a.name.rsplit(":", 1)[0] for a in self.alive[:3])
            more = f" and {len(self.alive) - 3} more" if len(self.alive) > 3 else ""
            return f"{len(self.alive)} agent{'s' if len(self.alive) > 1 else ''} alive ({names}{more})"
        if self.last is None:
            return "No agent has run on this store: launched searches wait until one runs (trellis agent)"
        how = "stopped" if self.last.state == "stopped" else "went silent"
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.last.seen))
        ago = _ago(now - self.last.seen)
        return (
            f"No agent is alive since {when} ({ago} ago: {self.last.name.rsplit(':', 1)[0]} {how}): "
            "launched searches wait until one runs (trellis agent)"
        )


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


def beat(client: MlflowClient, name: str, started: float, state: str = "alive") -> None:
    """Say that agent ``name`` is alive (or has stopped) now."""
    value = json.dumps({"started": round(started), "seen": round(time.time()), "state": state})
    client.set_experiment_tag(EXPERIMENT, PREFIX + name, value)


def agents_seen(client: MlflowClient) -> list[AgentSeen]:
    """Every agent with a tag, most recently seen first. Malformed tags are skipped (they run no code)."""
    tags = client.get_experiment(EXPERIMENT).tags
    out = []
    for key, value in tags.items():
        if not key.startswith(PREFIX):
            continue
        try:
            data = json.loads(value)
            out.append(AgentSeen(key[len(PREFIX) :], float(data["started"]), float(data["seen"]), str(data["state"])))
        except (ValueError, TypeError, KeyError):
            continue
    return sorted(out, key=lambda a: -a.seen)


def presence(client: MlflowClient, now: float | None = None) -> Presence:
    now = time.time() if now is None else now
    seen = agents_seen(client)
    return Presence(tuple(a for a in seen if a.alive(now)), seen[0] if seen else None)


def prune(client: MlflowClient, now: float | None = None) -> None:
    """Drop the tags of agents not seen for a day."""
    now = time.time() if now is None else now
    for agent in agents_seen(client):
        if now - agent.seen > PRUNE_S:
            client.delete_experiment_tag(EXPERIMENT, PREFIX + agent.name)
