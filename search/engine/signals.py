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


@contextlib.contextmanager
def signals_end_the_search() -> Iterator[None]:
    """The first signal raises ``SearchInterrupted`` in the runner's thread; later ones are noted and ignored
    until the block ends, so running trials are marked killed and the search run is closed. Only the main
    thread can install handlers: elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[str] = []

    def handler(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if fired:
            log.warning("%s received while the search is closing its runs: finishing the cleanup first", name)
            return
        fired.append(name)
        raise SearchInterrupted(name)

    previous = {s: signal.signal(s, handler) for s in HANDLED}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
