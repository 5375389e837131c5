"""Which store errors are worth waiting out (a lock, a lost connection, a server restarting), and how long.

A transient error keeps the writes buffered and retries them with backoff until ``TRELLIS_STORE_RETRY_S``
seconds (default 600) have passed without one success; any other error is the data's fault and is isolated
to the run that holds it (``SearchRecorder``).
"""

from __future__ import annotations

import os

TRANSIENT_TEXT = (
    "database is locked",
    "database table is locked",
    "could not connect",
    "connection refused",
    "connection reset",
    "connection timed out",
    "server closed the connection",
    "terminating connection",
    "the database system is starting up",
    "the database system is shutting down",
    "connection is closed",
    "connection already closed",
    "ssl connection has been closed",
    "max retries exceeded",
    "temporarily unavailable",
    "service unavailable",
    "bad gateway",
    "gateway timeout",
    "read timed out",
    "remote end closed connection",
)
TRANSIENT_TYPES = {"ConnectionError", "Timeout", "ReadTimeout", "ConnectTimeout", "ConnectionRefusedError"}


class StoreUnavailable(RuntimeError):
    """The store kept failing with transient errors for longer than the retry window."""


def retry_window_s() -> float:
    try:
        return max(0.0, float(os.environ.get("TRELLIS_STORE_RETRY_S", "600")))
    except ValueError:
        return 600.0


def is_transient(exc: BaseException) -> bool:
    """An error the store may recover from by itself, judged on the whole cause chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current).__name__ in TRANSIENT_TYPES or getattr(current, "connection_invalidated", False):
            return True
        text = str(current).lower()
        if any(marker in text for marker in TRANSIENT_TEXT):
            return True
        current = current.__cause__ or current.__context__
    return False


def backoff_s(attempt: int) -> float:
    """0.5 s, 1 s, 2 s ... capped at 10 s between tries."""
    return min(10.0, 0.5 * 2 ** max(0, attempt))


# Errors that say the store is not there right now (as opposed to a bad query or bad data), by type name on
# the cause chain: the drivers' and SQLAlchemy's connection errors, MLflow's wrapping of them.
UNAVAILABLE_TYPES = {*TRANSIENT_TYPES, "OperationalError", "InterfaceError", "NewConnectionError", "MaxRetryError"}


def unavailable_reason(exc: BaseException) -> str | None:
    """Why the store did not answer, in one line (the driver's own words), or None when ``exc`` is not the
    store being unreachable, locked or restarting (a bug, bad input: those are not reported as an outage)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or current.__context__
    down = is_transient(exc) or any(
        type(e).__name__ in UNAVAILABLE_TYPES or getattr(e, "error_code", None) == "TEMPORARILY_UNAVAILABLE"
        for e in chain
    )
    refused = [e for e in chain if getattr(e, "error_code", None) in ("UNAUTHENTICATED", "PERMISSION_DENIED")]
    if refused and not down:  # the store (an MLflow server with sign-in) refuses the app's own account
        return (
            "it refused the app's credentials (set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD for the "
            f"app's account): {str(refused[-1]).strip().splitlines()[0][:200]}"
        )
    if not down:
        return None
    for e in reversed(chain):  # the innermost outage error with words: the driver's, not a wrapper's
        text = str(e).strip()
        if text and (type(e).__name__ in UNAVAILABLE_TYPES or is_transient(e)):
            line = text.splitlines()[0].split(" (Background on this error at:")[0].strip()
            return line if len(line) <= 300 else line[:300] + "…"
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
