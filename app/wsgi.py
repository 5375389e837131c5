"""WSGI entry: ``gunicorn app.wsgi:server``. Configured by environment variables:

TRELLIS_TRACKING_URI   MLflow tracking URI (default sqlite:///mlruns.db), e.g. http://mlflow:5000
TRELLIS_MLFLOW_UI      base URL of the MLflow UI for links (default: none)
TRELLIS_CACHE          folder for the run cache shared by workers, or redis://host:6379/0
                       (default: .trellis/cache)
TRELLIS_AUTH           user:password[,user2:password2] turns on basic auth for every route
"""

from __future__ import annotations

import os

from app.auth import parse_users
from app.factory import create_app

app = create_app(
    os.environ.get("TRELLIS_TRACKING_URI", "sqlite:///mlruns.db"),
    mlflow_ui_url=os.environ.get("TRELLIS_MLFLOW_UI") or None,
    cache=os.environ.get("TRELLIS_CACHE", ".trellis/cache"),
    users=parse_users(os.environ.get("TRELLIS_AUTH")),
)
server = app.server
