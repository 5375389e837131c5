"""HTTP basic auth over every route of the server: pages, assets, callbacks, downloads."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from flask import Flask, Response, request


def parse_users(spec: str | None) -> dict[str, str]:
    """``user:password[,user2:password2]`` (the form of ``TRELLIS_AUTH``) to a mapping."""
    users: dict[str, str] = {}
    for item in (spec or "").split(","):
        if not item.strip():
            continue
        if ":" not in item:
            raise ValueError("TRELLIS_AUTH entries look like user:password")
        user, password = item.split(":", 1)
        users[user.strip()] = password
    return users


def install_basic_auth(server: Flask, users: Mapping[str, str], realm: str = "Trellis") -> None:
    if not users:
        return

    @server.before_request
    def _require_login():  # runs before every request Flask serves, callbacks included
        auth = request.authorization
        if auth and auth.username in users and hmac.compare_digest(users[auth.username], auth.password or ""):
            return None
        return Response("Login required.\n", 401, {"WWW-Authenticate": f'Basic realm="{realm}"'})
