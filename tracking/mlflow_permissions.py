"""What an MLflow server running its basic-auth app says about a user, asked with that user's own credentials:
who they are, which experiments they may read, what they may do in one. No admin account, no second user list:
MLflow's permissions (default permission, grants, roles) decide, exactly as for a request to MLflow itself."""

from __future__ import annotations

from typing import NamedTuple

import requests

CAN_READ = {"READ", "USE", "EDIT", "MANAGE"}
CAN_EDIT = {"EDIT", "MANAGE"}


class MlflowUnavailable(RuntimeError):
    """The server did not answer, or answered something other than yes or no."""


class MlflowUser(NamedTuple):
    name: str
    is_admin: bool


class MlflowPermissions:
    def __init__(self, server_url: str, timeout_s: float = 10.0) -> None:
        self.base = server_url.rstrip("/")
        self.timeout_s = timeout_s
        self._session = requests.Session()

    def _call(self, method: str, path: str, auth: tuple[str, str], **kwargs) -> requests.Response | None:
        """The response, None for 401/403 (not these credentials, not allowed), MlflowUnavailable otherwise."""
        try:
            response = self._session.request(method, self.base + path, auth=auth, timeout=self.timeout_s, **kwargs)
        except requests.RequestException as exc:
            raise MlflowUnavailable(f"MLflow server {self.base}: {exc.__class__.__name__}") from None
        if response.status_code in (401, 403):
            return None
        if response.status_code != 200:
            raise MlflowUnavailable(f"MLflow server {self.base}{path}: HTTP {response.status_code}")
        return response

    def sign_in(self, name: str, password: str) -> MlflowUser | None:
        """The user these credentials belong to, or None when MLflow refuses them."""
        response = self._call("GET", "/api/2.0/mlflow/users/current", (name, password))
        if response is None:
            return None
        user = response.json().get("user") or {}
        return MlflowUser(str(user.get("username") or name), bool(user.get("is_admin")))

    def readable_experiments(self, name: str, password: str) -> set[str]:
        """The ids of the active experiments MLflow lets this user read (its search filters by permission)."""
        ids: set[str] = set()
        token = None
        while True:
            body = {"max_results": 1000, "view_type": "ACTIVE_ONLY"} | ({"page_token": token} if token else {})
            response = self._call("POST", "/api/2.0/mlflow/experiments/search", (name, password), json=body)
            if response is None:
                return set()
            page = response.json()
            ids.update(str(e["experiment_id"]) for e in page.get("experiments", []))
            token = page.get("next_page_token")
            if not token:
                return ids

    def experiment_permission(self, name: str, password: str, experiment_id: str) -> str:
        """The user's effective permission on one experiment as MLflow resolves it (``READ``, ``EDIT``, ...)."""
        params = {"username": name, "resource_type": "experiment", "resource_id": str(experiment_id)}
        response = self._call("GET", "/api/3.0/mlflow/users/permissions/get", (name, password), params=params)
        if response is None:
            return "NO_PERMISSIONS"
        return str(response.json().get("permission") or "NO_PERMISSIONS")
