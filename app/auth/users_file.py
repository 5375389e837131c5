"""Basic auth against a file of salted argon2 hashes, one ``name:hash`` line a user.

``trellis users add NAME`` writes it; the app reads it at start (a malformed or empty entry stops it with the
line and the reason) and again whenever the file changes. A password is checked with argon2 (constant time
over the hash); a successful check is remembered for a minute, per process, under an HMAC of the name and
password with a key drawn at start, so a page's dozen callbacks do not each pay the hash.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import tempfile
from pathlib import Path

from flask import Response, request

from trellis.app.auth.base import Authenticator, TimedMemo, basic_auth_refusal
from trellis.extras import MissingExtra

try:
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError
except ImportError as exc:  # the one line naming the extra, not a traceback
    raise MissingExtra("a users file (sign-in with hashed passwords)", "team") from exc

log = logging.getLogger(__name__)
NAME = re.compile(r"^[^\s:]{1,64}$")
HASHER = PasswordHasher()
MIN_PASSWORD = 8


class UsersFileError(ValueError):
    pass


def read_users_file(path: str | Path) -> dict[str, str]:
    """name -> argon2 hash. Blank lines and ``#`` comments are skipped; anything else that is not ``name:hash``
    with a valid name and an argon2 hash, a name twice, or a file naming nobody raises UsersFileError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsersFileError(f"{path}: cannot read the users file ({exc.strerror or exc})") from None
    users: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, colon, hashed = line.partition(":")
        where = f"{path}:{n}"
        if not colon or not NAME.match(name):
            raise UsersFileError(f"{where}: expected name:hash, a name without spaces or ':' (see `trellis users add`)")
        if not hashed.startswith("$argon2"):
            raise UsersFileError(f"{where} ({name}): not an argon2 hash; write entries with `trellis users add {name}`")
        if name in users:
            raise UsersFileError(f"{where}: user {name!r} is named twice")
        users[name] = hashed
    if not users:
        raise UsersFileError(f"{path}: names no user; add one with `trellis users add NAME`")
    return users


def write_user(path: str | Path, name: str, password: str) -> bool:
    """Add ``name`` to the file (created with mode 0600) or replace their hash. True when they were new."""
    if not NAME.match(name or ""):
        raise UsersFileError(f"name: {name!r} is not a user name (1-64 characters, no spaces or ':')")
    if len(password) < MIN_PASSWORD:
        raise UsersFileError(f"password: at least {MIN_PASSWORD} characters")
    path = Path(path)
    users = read_users_file(path) if path.exists() and path.stat().st_size else {}
    new = name not in users
    users[name] = HASHER.hash(password)
    _write(path, users)
    return new


def _write(path: Path, users: dict[str, str]) -> None:
    """The whole file at once (a reader never sees half of it), mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(f"{user}:{hashed}\n" for user, hashed in users.items())
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".users-")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(body)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def remove_user(path: str | Path, name: str) -> int:
    """Remove ``name``; the number of users left (0: the app then lets nobody in)."""
    users = read_users_file(path)
    if name not in users:
        raise UsersFileError(f"{path}: no user {name!r}")
    del users[name]
    _write(Path(path), users)
    return len(users)


class HashedUsers(Authenticator):
    def __init__(self, path: str | Path, remember_s: float = 60.0) -> None:
        self.path = Path(path)
        self._users = read_users_file(self.path)  # refuses a bad file at start
        self._stamp = self._file_stamp()
        self._key = secrets.token_bytes(32)
        self._checked = TimedMemo(remember_s)

    def _file_stamp(self) -> tuple | None:
        st = self.path.stat()
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _current_users(self) -> dict[str, str]:
        try:
            stamp = self._file_stamp()
            if stamp != self._stamp:  # a user added or removed while the app runs
                self._users, self._stamp = read_users_file(self.path), stamp
                self._checked = TimedMemo(self._checked.ttl_s)
        except (OSError, UsersFileError) as exc:  # emptied, broken or removed while the app runs: nobody gets in
            if self._users:
                log.warning("sign-in: refusing everyone until the users file is fixed (%s)", exc)
            self._users, self._stamp = {}, None
        return self._users

    def user(self) -> str | Response:
        auth = request.authorization
        users = self._current_users()
        if not auth or not auth.username or auth.username not in users:
            return basic_auth_refusal()
        name, password = auth.username, auth.password or ""
        token = hmac.new(self._key, f"{name}\0{users[name]}\0{password}".encode("utf-8", "surrogateescape"),
                         hashlib.sha256).digest()  # fmt: skip
        if self._checked.get(token, lambda: _verify(users[name], password)):
            return name
        self._checked.forget([token])  # a failure is never remembered: each guess pays the hash
        return basic_auth_refusal()


def _verify(hashed: str, password: str) -> bool:
    try:
        return HASHER.verify(hashed, password.encode("utf-8", "surrogateescape"))
    except (VerificationError, InvalidHashError):
        return False
