"""WSGI entry: ``gunicorn app.wsgi:server``. Configured by environment variables:

TRELLIS_TRACKING_URI   MLflow tracking URI (default sqlite:///mlruns.db), e.g. http://mlflow:5000
TRELLIS_MLFLOW_UI      base URL of the MLflow UI for links (default: none)
TRELLIS_CACHE          folder for the run cache shared by workers, or redis://host:6379/0
                       (default: .trellis/cache)
Sign-in (one of; see app/auth/create.py): TRELLIS_USERS_FILE, TRELLIS_PROXY_USER_HEADER with
TRELLIS_TRUSTED_PROXIES, TRELLIS_MLFLOW_AUTH, or TRELLIS_AUTH. A wrong setting stops the app at start.
"""

from __future__ import annotations

import os

from app.auth.create import authenticator_from_env
from app.factory import create_app

try:
    auth = authenticator_from_env(os.environ)
except ValueError as exc:  # a wrong sign-in setting: one line, and no worker serves without it
    raise SystemExit(f"trellis: {exc}") from None

app = create_app(
    os.environ.get("TRELLIS_TRACKING_URI", "sqlite:///mlruns.db"),
    mlflow_ui_url=os.environ.get("TRELLIS_MLFLOW_UI") or None,
    cache=os.environ.get("TRELLIS_CACHE", ".trellis/cache"),
    auth=auth,
)
server = app.server
