"""The one table of the app's pages: path, navbar label, layout and callbacks.

``create_app`` builds the routes, the navbar, the URL checks (which paths exist) and the callback checks (which
components exist) from it, and the auth walk covers what it lists. A new page is one module (``layout`` and
``register``) and one row here, or a row passed to ``create_app(pages=...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dash import Dash

from trellis.app.context import AppContext
from trellis.app.pages import analyses, control, curves, exploration, models, overview, space


@dataclass(frozen=True)
class Page:
    path: str  # "/space"
    label: str  # the navbar's word for it
    layout: Callable[[AppContext], Any]  # the page's components (called per visit)
    register: Callable[[Dash, AppContext], None]  # its callbacks (called once)

    @property
    def nav_id(self) -> str:
        return f"nav-{self.path.strip('/') or 'overview'}"


PAGES: tuple[Page, ...] = (
    Page("/", "Overview", overview.layout, overview.register),
    Page("/space", "Search space", space.layout, space.register),
    Page("/curves", "Learning curves", curves.layout, curves.register),
    Page("/exploration", "Exploration", exploration.layout, exploration.register),
    Page("/models", "Models", models.layout, models.register),
    Page("/analyses", "Analyses", analyses.layout, analyses.register),
    Page("/control", "Control", control.layout, control.register),
)
