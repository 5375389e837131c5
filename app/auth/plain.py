"""HTTP basic auth over every route of the server: pages, assets, callbacks, downloads."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from flask import Flask, Response, request


def parse_users(spec: str | None) -> dict[str, str]:
    """``user:password[,user2:password2]`` (the form of ``TRELLIS_AUTH``) to a mapping. Unset or empty: auth
    off. Set but naming no user (``" "``, ``","``), an entry without a password, or a user twice: ValueError,
    so a typo never silently turns auth off or lets an empty password in."""
    if spec is None or spec == "":
        return {}
    users: dict[str, str] = {}
    for n, item in enumerate(spec.split(","), start=1):
        item = item.strip()
        if not item:
            continue
        user, colon, password = item.partition(":")
        user = user.strip()
        if not colon or not user:
            raise ValueError(f"TRELLIS_AUTH entry {n}: looks like user:password")
        if not password:
            raise ValueError(f"TRELLIS_AUTH entry {n} ({user}): the password is empty")
        if user in users:
            raise ValueError(f"TRELLIS_AUTH entry {n}: user {user!r} is named twice")
        users[user] = password
    if not users:
        raise ValueError("TRELLIS_AUTH is set but names no user: unset it to turn auth off")
    return users


def install_basic_auth(server: Flask, users: Mapping[str, str], realm: str = "Trellis") -> None:
    if not users:
        return

    @server.before_request
    def _require_login():  # runs before every request Flask serves, callbacks included
        auth = request.authorization
        if auth and auth.username in users and _same(users[auth.username], auth.password or ""):
            return None
        return Response("Login required.\n", 401, {"WWW-Authenticate": f'Basic realm="{realm}"'})


def _same(expected: str, given: str) -> bool:
    """Constant-time comparison of the passwords' UTF-8 bytes (``compare_digest`` refuses non-ASCII str)."""
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8", "surrogateescape"))
