"""WSGI entry: ``gunicorn 'trellis.app.wsgi:server'`` (or ``trellis serve --workers N``). Configured by
environment variables:

TRELLIS_TRACKING_URI   MLflow tracking URI (default sqlite:///mlruns.db), e.g. http://mlflow:5000
TRELLIS_MLFLOW_UI      base URL of the MLflow UI for links (default: none)
TRELLIS_CACHE          folder for the run cache shared by workers, or redis://host:6379/0
                       (default: .trellis/cache)
TRELLIS_CACHE_RETRY_S  seconds between tries of a Redis that did not answer (default 30; meanwhile each
                       worker uses its own cache and the pages say so)
Sign-in (one of; see app/auth/create.py): TRELLIS_USERS_FILE, TRELLIS_PROXY_USER_HEADER with
TRELLIS_TRUSTED_PROXIES, TRELLIS_MLFLOW_AUTH, or TRELLIS_AUTH. A wrong setting stops the app at start.
"""

from __future__ import annotations

import logging
import os
import sys

from trellis.app.auth.create import authenticator_from_env
from trellis.app.factory import create_app
from trellis.app.health import fail_fast_over_http
from trellis.extras import MissingExtra
from trellis.tracking.uris import DEFAULT_TRACKING_URI

try:
    auth = authenticator_from_env(os.environ)
except (ValueError, MissingExtra) as exc:  # a wrong sign-in setting or its extra missing: one line, exit 3
    print(f"trellis: {exc}", file=sys.stderr, flush=True)
    raise SystemExit(3) from None
if auth is None:
    logging.getLogger("gunicorn.error").warning(
        "trellis: no sign-in is set (TRELLIS_USERS_FILE, TRELLIS_PROXY_USER_HEADER, TRELLIS_MLFLOW_AUTH or "
        "TRELLIS_AUTH): anyone who reaches the app can read every experiment and launch or stop searches"
    )

fail_fast_over_http(os.environ)  # a tracking server that is down: said on the page at once, not after minutes
app = create_app(
    os.environ.get("TRELLIS_TRACKING_URI", DEFAULT_TRACKING_URI),
    mlflow_ui_url=os.environ.get("TRELLIS_MLFLOW_UI") or None,
    cache=os.environ.get("TRELLIS_CACHE", ".trellis/cache"),
    auth=auth,
)
server = app.server
