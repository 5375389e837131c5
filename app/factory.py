"""``create_app(tracking_uri, ...)``: the Dash app, with every dependency passed in."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dash import Dash

from trellis.app import health, shell
from trellis.app.auth.base import Authenticator, install_auth
from trellis.app.auth.plain import PlainUsers
from trellis.app.callback_checks import install_callback_checks
from trellis.app.context import AppContext
from trellis.app.page_table import PAGES, Page
from trellis.app.responses import install_response_cache
from trellis.app.url_checks import install_url_checks
from trellis.search.control.policy import ServerPolicy
from trellis.tracking.cache import CacheBackend, RunCache, make_backend

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def create_app(
    tracking_uri: str,
    *,
    mlflow_ui_url: str | None = None,
    cache: CacheBackend | str | None = None,
    users: dict[str, str] | None = None,
    auth: Authenticator | None = None,
    max_curve_points: int = 1000,
    policy: ServerPolicy | None = None,
    analysis_wait_s: float = 1.0,
    pages: Sequence[Page] = PAGES,
) -> Dash:
    """Build the app.

    ``cache``: a CacheBackend, or a folder (diskcache) / ``redis://`` URL shared by gunicorn workers.
    ``auth``: sign-in for every route and callback (``trellis.app.auth.create.authenticator_from_env``), with what
    each user may read and edit; ``users`` (name -> password) is a shorthand for plain basic auth.
    ``policy``: what the control page may launch (trial allow-list, caps); default from the environment.
    ``analysis_wait_s``: how long a request waits for a search-space analysis before the page shows its
    progress (it goes on in the background and the page polls for it).
    ``pages``: the page table (``trellis.app.page_table``); routes, navbar and checks are built from it.
    """
    if auth is None and users:
        auth = PlainUsers(users)
    store = cache if isinstance(cache, CacheBackend) else make_backend(cache)
    context = AppContext(
        tracking_uri,
        RunCache(tracking_uri, store),
        mlflow_ui_url,
        max_curve_points,
        policy=policy or ServerPolicy.from_env(),
        access=auth,
        analysis_wait_s=analysis_wait_s,
    )
    app = Dash(
        __name__,
        title="Trellis",
        assets_folder=str(ASSETS),
        suppress_callback_exceptions=True,  # page components appear after routing
        update_title=None,
        on_error=health.error_handler(context),  # a store outage: a message on the page, not a 500
    )
    install_auth(app.server, auth)  # first: nothing, not even a URL check, answers before sign-in
    pages = tuple(pages)
    install_url_checks(app.server, {p.path for p in pages}, context.experiment_exists, context.search_exists)
    # a body no page would send: 400, before any callback runs
    install_callback_checks(
        app.server, app, lambda: [shell.layout(context, pages), *(p.layout(context) for p in pages)]
    )
    app.layout = lambda: shell.layout(context, pages)  # per page load: fresh experiment list
    shell.register(app, context, pages)
    health.register(app, context)
    for page in pages:
        page.register(app, context)
    app.trellis_responses = install_response_cache(app, context)  # last: after sign-in's hooks
    app.trellis_context = context  # for tests and benchmarks: the same context the callbacks use
    return app
