"""What every way of signing in provides, and the hook that puts it in front of every request."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Iterable

from flask import Flask, Response, g


class Authenticator:
    """Who is making the request, and what they may see and change.

    ``user`` returns the signed-in user's name, or a Response refusing the request (401/403).
    ``readable(user)`` is the set of experiment ids they may read, or None for all of them;
    ``can_edit(user, experiment_id)`` whether they may launch, stop, resume or edit searches there.
    """

    def user(self) -> str | Response:
        raise NotImplementedError

    def readable(self, user: str) -> set[str] | None:
        return None

    def can_edit(self, user: str, experiment_id: str) -> bool:
        return True


def basic_auth_refusal(realm: str = "Trellis") -> Response:
    return Response("Login required.\n", 401, {"WWW-Authenticate": f'Basic realm="{realm}"'})


def install_auth(server: Flask, authenticator: Authenticator | None) -> None:
    """Every request Flask serves (pages, assets, callbacks, downloads) first passes ``authenticator``."""
    if authenticator is None:
        return

    @server.before_request
    def _require_login():
        who = authenticator.user()
        if isinstance(who, Response):
            return who
        g.trellis_user = who
        return None


def signed_in_user() -> str | None:
    """The user the auth hook let in for the request being served, if any."""
    from flask import has_request_context

    return g.get("trellis_user") if has_request_context() else None


def same_secret(expected: bytes, given: bytes) -> bool:
    """Constant-time comparison of two byte strings."""
    return hmac.compare_digest(expected, given)


def password_bytes(password: str | None) -> bytes:
    """A password as typed, as bytes (non-ASCII included; undecodable bytes kept as they came)."""
    return (password or "").encode("utf-8", "surrogateescape")


class TimedMemo:
    """A small per-process memo whose entries expire after ``ttl_s`` seconds (MLflow round trips, hash checks)."""

    def __init__(self, ttl_s: float, max_entries: int = 4096) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._data: dict = {}

    def get(self, key, compute: Callable[[], object]):
        now = time.monotonic()
        hit = self._data.get(key)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        value = compute()
        if len(self._data) >= self.max_entries:
            self._data.clear()
        self._data[key] = (now, value)
        return value

    def peek(self, key):
        """The remembered value of ``key`` (even if expired), or None; computes nothing."""
        hit = self._data.get(key)
        return None if hit is None else hit[1]

    def forget(self, keys: Iterable) -> None:
        for key in keys:
            self._data.pop(key, None)
