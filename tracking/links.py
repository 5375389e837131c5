"""Links into the MLflow UI (its hash routes), from a configurable base URL."""

from __future__ import annotations

from urllib.parse import quote


def run_url(ui_base: str | None, experiment_id: str, run_id: str) -> str:
    base = (ui_base or "").rstrip("/")
    return f"{base}/#/experiments/{quote(str(experiment_id))}/runs/{quote(run_id)}"


def experiment_url(ui_base: str | None, experiment_id: str) -> str:
    base = (ui_base or "").rstrip("/")
    return f"{base}/#/experiments/{quote(str(experiment_id))}"


def compare_url(ui_base: str | None, experiment_ids: list[str], run_ids: list[str]) -> str:
    import json

    base = (ui_base or "").rstrip("/")
    return f"{base}/#/compare-runs?runs={quote(json.dumps(run_ids))}&experiments={quote(json.dumps(experiment_ids))}"


# -- links the other way: from MLflow (a run's or an experiment's description) into the Trellis app --------
# MLflow shows the tag ``mlflow.note.content`` as the description of a run or an experiment (markdown). The
# Trellis line in it starts with NOTE_PREFIX, so it can be found again, replaced, and never added twice.
MLFLOW_NOTE = "mlflow.note.content"
NOTE_PREFIX = "**Open in Trellis:**"
PUBLIC_URL_ENV = "TRELLIS_PUBLIC_URL"
TRELLIS_PAGES = (("overview", "/"), ("search space", "/space"), ("learning curves", "/curves"))


def app_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be the app's public address (an absolute http(s) URL, no query), or None."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises for a port that is no number
    except ValueError:
        return f"the app's public URL must look like https://trellis.example.org, got {url!r}"
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"the app's public URL must look like https://trellis.example.org, got {url!r}"
    if any(c.isspace() or c in "()<>[]\"'`" for c in url.strip()):  # it goes into a markdown link
        return f"the app's public URL must not contain spaces, brackets or quotes, got {url!r}"
    if parts.query or parts.fragment:
        return f"the app's public URL must have no query or fragment, got {url!r}"
    return None


def public_app_url(configured: str | None = None) -> str | None:
    """The app's public URL: the configured one (checked with the config), else ``TRELLIS_PUBLIC_URL``; None
    when neither is set, or when the environment's value is no URL (said once in the log: no broken links)."""
    import logging
    import os

    url = (configured or os.environ.get(PUBLIC_URL_ENV) or "").strip()
    problem = app_url_problem(url) if url else None
    if problem:
        logging.getLogger(__name__).warning("%s: %s; runs get no link to the app", PUBLIC_URL_ENV, problem)
        return None
    return url or None


def trellis_urls(app_url: str, experiment_id: str, search_id: str | None = None) -> dict[str, str]:
    """The app's pages for an experiment (and one search of it): label -> URL."""
    base = app_url.strip().rstrip("/")
    query = f"exp={quote(str(experiment_id))}" + (f"&search={quote(search_id)}" if search_id else "")
    return {label: f"{base}{path}?{query}" for label, path in TRELLIS_PAGES}


def trellis_note_line(app_url: str, experiment_id: str, search_id: str | None = None) -> str:
    """One markdown line linking the app's views, as MLflow's description renders it."""
    links = " · ".join(f"[{label}]({url})" for label, url in trellis_urls(app_url, experiment_id, search_id).items())
    return f"{NOTE_PREFIX} {links}"


def with_trellis_note(description: str | None, line: str) -> str:
    """``description`` with its Trellis line replaced by ``line``, or ``line`` appended after its text."""
    kept = [text for text in (description or "").splitlines() if not text.startswith(NOTE_PREFIX)]
    while kept and not kept[-1].strip():
        kept.pop()
    return "\n".join(kept) + "\n\n" + line if kept else line
