"""The agent that ``trellis serve`` runs beside the app, kept alive: when it dies it is logged and restarted,
at most ``MAX_RESTARTS`` times within ``WINDOW_S`` (a crash loop stops there, said once). The control page
tells anyone when no agent is alive (``trellis.tracking.agents``)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

from trellis.search.trial import die_with_parent

MAX_RESTARTS = 5
WINDOW_S = 600.0
CHECK_S = 1.0


class AgentKeeper:
    def __init__(self, tracking_uri: str, *, check_s: float = CHECK_S, echo=None) -> None:
        self.cmd = [sys.executable, "-P", "-m", "trellis.cli", "agent", "--tracking-uri", tracking_uri]
        self.check_s = check_s
        self.echo = echo or (lambda line: print(line, file=sys.stderr, flush=True))
        self.restarts: list[float] = []
        self.gave_up = False
        self._stopping = threading.Event()
        self.proc = self._start()
        self._watch = threading.Thread(target=self._watch_loop, name="agent-keeper", daemon=True)
        self._watch.start()

    def _start(self) -> subprocess.Popen:
        # If serve dies without its cleanup, the agent gets SIGTERM: it still ends its searches as a stop would.
        return subprocess.Popen(self.cmd, preexec_fn=lambda: die_with_parent(signal.SIGTERM))  # noqa: PLW1509

    def _watch_loop(self) -> None:
        while not self._stopping.wait(self.check_s):
            code = self.proc.poll()
            if code is None or self._stopping.is_set():
                continue
            now = time.monotonic()
            self.restarts = [t for t in self.restarts if now - t < WINDOW_S]
            if len(self.restarts) >= MAX_RESTARTS:
                self.echo(
                    f"trellis serve: the agent beside the app exited with code {code} and was restarted "
                    f"{MAX_RESTARTS} times in {WINDOW_S / 60:.0f} min: not again. Launched searches wait for an "
                    "agent (start one with `trellis agent`); the control page says none is alive"
                )
                self.gave_up = True
                return
            self.restarts.append(now)
            self.echo(
                f"trellis serve: the agent beside the app exited with code {code}; restarting it "
                f"({len(self.restarts)} of {MAX_RESTARTS})"
            )
            self.proc = self._start()

    def stop(self, grace_s: float = 60.0) -> None:
        self._stopping.set()
        self._watch.join(timeout=5)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
