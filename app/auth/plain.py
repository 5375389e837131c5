"""``TRELLIS_AUTH=user:password[,user2:password2]``: basic auth with passwords from the environment."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Response, request

from trellis.app.auth.base import Authenticator, basic_auth_refusal, password_bytes, same_secret


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


class PlainUsers(Authenticator):
    def __init__(self, users: Mapping[str, str]) -> None:
        self._users = {name: password_bytes(pw) for name, pw in users.items()}

    def user(self) -> str | Response:
        auth = request.authorization
        known = auth is not None and auth.username in self._users
        if known and same_secret(self._users[auth.username], password_bytes(auth.password)):
            return auth.username
        return basic_auth_refusal()
