"""Sign in with MLflow credentials; see and change only what MLflow's own permissions allow.

Each check asks the MLflow server (its basic-auth app) with the signed-in user's credentials, and the answer is
remembered for ``remember_s`` seconds per process: a grant or revoke in MLflow reaches Trellis within that
time. Failed sign-ins are never remembered. The MLflow server not answering refuses the request (503):
without MLflow's word, nothing is shown.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets

from flask import Response, request

from trellis.app.auth.base import Authenticator, TimedMemo, basic_auth_refusal
from trellis.tracking.mlflow_permissions import CAN_EDIT, MlflowPermissions, MlflowUnavailable

log = logging.getLogger(__name__)


RETRY_S = 10
UNAVAILABLE = "The MLflow server that signs users in is not answering; this page tries again every 10 s."


def unavailable_page() -> Response:
    """503 while MLflow cannot say who the user is: a page that says so and reloads itself (a callback or a
    download gets the line alone), with ``Retry-After``."""
    headers = {"Retry-After": str(RETRY_S), "Cache-Control": "no-store"}
    if request.method == "GET" and not request.path.startswith(("/_", "/assets/")):
        html = (
            f"<!doctype html><title>Trellis: sign-in unavailable</title>"
            f"<meta http-equiv='refresh' content='{RETRY_S}'>"
            f"<body style='font-family: sans-serif; margin: 2em'><h1>Sign-in unavailable</h1><p>{UNAVAILABLE}</p>"
        )
        return Response(html, 503, {**headers, "Content-Type": "text/html; charset=utf-8"})
    return Response(UNAVAILABLE + "\n", 503, {**headers, "Content-Type": "text/plain; charset=utf-8"})


class MlflowUsers(Authenticator):
    def __init__(self, server_url: str, remember_s: float = 30.0) -> None:
        self.server = MlflowPermissions(server_url)
        self._key = secrets.token_bytes(32)
        self._signed_in = TimedMemo(remember_s)
        self._readable = TimedMemo(remember_s)
        self._permission = TimedMemo(remember_s)

    def _credentials(self) -> tuple[str, str, bytes] | None:
        auth = request.authorization
        if not auth or not auth.username:
            return None
        password = auth.password or ""
        token = hmac.new(self._key, f"{auth.username}\0{password}".encode("utf-8", "surrogateescape"), hashlib.sha256)
        return auth.username, password, token.digest()

    def user(self) -> str | Response:
        creds = self._credentials()
        if creds is None:
            return basic_auth_refusal()
        name, password, token = creds
        try:
            who = self._signed_in.get(token, lambda: self.server.sign_in(name, password))
        except MlflowUnavailable as exc:
            log.warning("sign-in: %s", exc)
            return unavailable_page()
        if who is None:
            self._signed_in.forget([token])
            return basic_auth_refusal()
        return who.name

    def _is_admin(self, token: bytes) -> bool:
        who = self._signed_in.peek(token)  # set by user() earlier in this request
        return bool(who and who.is_admin)

    def readable(self, user: str) -> set[str] | None:
        creds = self._credentials()
        if creds is None or creds[0] != user:
            return set()
        name, password, token = creds
        if self._is_admin(token):
            return None
        try:
            return self._readable.get(token, lambda: self.server.readable_experiments(name, password))
        except MlflowUnavailable as exc:
            log.warning("permissions: %s", exc)
            return set()  # no word from MLflow: nothing is shown

    def can_edit(self, user: str, experiment_id: str) -> bool:
        creds = self._credentials()
        if creds is None or creds[0] != user:
            return False
        name, password, token = creds
        if self._is_admin(token):
            return True
        try:
            permission = self._permission.get(
                (token, str(experiment_id)), lambda: self.server.experiment_permission(name, password, experiment_id)
            )
        except MlflowUnavailable as exc:
            log.warning("permissions: %s", exc)
            return False
        return permission in CAN_EDIT
