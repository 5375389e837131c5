"""``trellis agent``: runs the searches launched from the app, on the machine it runs on.

Any number of agents may watch one store. Every few seconds an agent looks for work (``queue.waiting_work``:
scheduled searches, resume requests, orphans of dead agents), claims one atomically and runs it in a child
process (``python -m trellis.cli.run_claimed``) that dies with the agent. So an agent killed with SIGKILL
leaves an orphan (its search still RUNNING, its heartbeat silent) that another agent resumes; an agent
stopped with SIGTERM or Ctrl-C ends its searches as a user's stop would, resumable from the app.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from mlflow import MlflowClient

from trellis.search.control.policy import ServerPolicy, trial_target
from trellis.search.control.queue import Work, take, waiting_work
from trellis.search.trial import die_with_parent
from trellis.tracking import agents, schema

log = logging.getLogger(__name__)


def refusal(client: MlflowClient, search_id: str, policy: ServerPolicy, config=None) -> str | None:
    """Why the search's trial may not run here (None when it may): ``config`` is what is about to run (else
    the stored one is read). Read from the store, so never trusted: checked at every start and resume."""
    from trellis.search.engine.resume import ResumeError, recorded_config

    try:
        config = config or recorded_config(client, search_id)
        parent_trial = None
        if config.relaunched_from:
            parent_trial = trial_target(recorded_config(client, config.relaunched_from).trial)
    except ResumeError as exc:
        return str(exc).splitlines()[0]
    if policy.allowed(config.trial, ran_in_store=trial_target(config.trial) == parent_trial):
        return None
    return f"{trial_target(config.trial)} is not on this agent's allow-list of trials"


def refuse(client: MlflowClient, search_id: str, reason: str) -> None:
    """End a search refused by the allow-list as failed, with the reason (never left RUNNING)."""
    refused = {schema.SEARCH_STATE: "failed", schema.SEARCH_STOP_REASON: "refused", schema.ERROR: reason}
    for key, value in refused.items():
        client.set_tag(search_id, key, value)
    client.set_terminated(search_id, status="FAILED")


class Agent:
    def __init__(
        self,
        tracking_uri: str,
        *,
        max_searches: int = 1,
        poll_s: float = 2.0,
        policy: ServerPolicy | None = None,
        log_dir: str | Path = ".trellis/agent-logs",
        echo=print,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.max_searches = max_searches
        self.poll_s = poll_s
        self.policy = policy or ServerPolicy.from_env()
        self.log_dir = Path(log_dir)
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.children: dict[str, subprocess.Popen] = {}
        self.echo = echo
        self.started_at = time.time()
        self._beaten_at = 0.0

    # -- presence (``trellis.tracking.agents``) -------------------------------------------------------
    def beat(self, state: str = "alive") -> None:
        """Say in the store that this agent is alive (at most every few seconds) or has stopped."""
        if state == "alive" and time.monotonic() - self._beaten_at < agents.BEAT_S:
            return
        try:
            if self._beaten_at == 0.0:
                agents.prune(self.client)
            agents.beat(self.client, self.token, self.started_at, state)
            self._beaten_at = time.monotonic()
        except Exception as exc:  # a store hiccup, or no edit right on the Default experiment: work goes on
            log.warning("agent: could not record that it is %s: %s", state, str(exc).splitlines()[0])

    # -- one pass ---------------------------------------------------------------------------------
    def step(self) -> list[str]:
        """Reap ended searches, then claim and start work while there is room; returns the ids started."""
        for search_id, proc in list(self.children.items()):
            if proc.poll() is not None:
                del self.children[search_id]
                self.echo(f"agent: search {search_id[:8]} ended (exit code {proc.returncode})")
        started: list[str] = []
        if len(self.children) >= self.max_searches:
            return started
        try:
            work = waiting_work(self.client)
        except Exception as exc:  # a store hiccup: try again at the next poll
            log.warning("agent: could not list waiting searches: %s", exc)
            return started
        for item in work:
            if len(self.children) >= self.max_searches:
                break
            if item.search_id in self.children or not take(self.client, item, self.token):
                continue
            if not self._allowed(item):  # start and resume alike
                continue
            self._spawn(item)
            started.append(item.search_id)
        return started

    def _allowed(self, item: Work) -> bool:
        """Every search it starts or resumes must name an allowed trial (its stored config is untrusted: anyone
        who may write to the store could have rewritten it); else it ends as failed, with the reason. The
        child checks again against the config it is about to run (``run_claimed``)."""
        reason = refusal(self.client, item.search_id, self.policy)
        if reason is None:
            return True
        refuse(self.client, item.search_id, reason)
        self.echo(f"agent: refused search {item.search_id[:8]}: {reason}")
        return False

    def _spawn(self, item: Work) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.log_dir / f"{item.search_id}.log", "ab")  # noqa: SIM115 (the child owns it)
        cmd = [sys.executable, "-P", "-m", "trellis.cli.run_claimed", self.tracking_uri, item.search_id, item.mode]
        env = {**os.environ, **self.policy.as_env()}  # the child checks the trial it runs against the same list
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, preexec_fn=die_with_parent)  # noqa: PLW1509
        out.close()
        self.children[item.search_id] = proc
        verb = "starting" if item.mode == "start" else "resuming"
        self.echo(f"agent: {verb} search {item.search_id[:8]} (log: {self.log_dir / (item.search_id + '.log')})")

    # -- the loop ---------------------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        try:
            while not stop.is_set():
                self.beat()
                self.step()
                stop.wait(self.poll_s)
        finally:
            self.shutdown()
            self.beat("stopped")

    def shutdown(self, grace_s: float = 30.0) -> None:
        """End the running searches as a stop would: SIGTERM, which each runner turns into a clean end."""
        for proc in self.children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for proc in self.children.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
        self.children.clear()
