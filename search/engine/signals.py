"""Termination signals during a search: SIGTERM and SIGHUP (systemd, docker, Kubernetes, batch schedulers,
a closed terminal) end it the way Ctrl-C does, and a second signal does not cut the cleanup writes short."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator

log = logging.getLogger(__name__)
HANDLED = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None)


class SearchInterrupted(KeyboardInterrupt):
    """The search was asked to end by a signal; ``signal_name`` says which."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


class SignalGuard:
    """What the handlers do now: raise at the first signal, or only note signals (while the store opens, and
    once the search is closing its runs, so those writes always complete)."""

    def __init__(self, defer: bool) -> None:
        self.deferred = defer
        self.fired: list[str] = []

    def closing(self) -> None:
        """From now on signals are noted, never raised: the cleanup writes run to the end."""
        self.deferred = True

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Signals during the block wait for its end (starting worker processes is never cut off halfway:
        a child left without its start-up data prints a traceback); the first is raised then."""
        before, self.deferred = self.deferred, True
        fired = len(self.fired)
        try:
            yield
        finally:
            self.deferred = before
        if not before and fired == 0 and self.fired:
            raise SearchInterrupted(self.fired[0])

    def handle(self, signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        first = not self.fired
        self.fired.append(name)
        if first and not self.deferred:
            raise SearchInterrupted(name)
        log.warning("%s received while the search opens or closes its runs: finishing that first", name)


@contextlib.contextmanager
def signals_end_the_search(defer: bool = False) -> Iterator[SignalGuard]:
    """The first signal raises ``SearchInterrupted`` in the runner's thread; later ones are noted and ignored
    until the block ends, so running trials are marked killed and the search run is closed. With ``defer``,
    signals are only noted and the first is raised as the block ends (a store migration is never cut off
    halfway). Only the main thread can install handlers: elsewhere the guard only records."""
    guard = SignalGuard(defer)
    if threading.current_thread() is not threading.main_thread():
        yield guard
        return
    previous = {s: signal.signal(s, guard.handle) for s in HANDLED}
    try:
        yield guard
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
    if defer and guard.fired:
        raise SearchInterrupted(guard.fired[0])
