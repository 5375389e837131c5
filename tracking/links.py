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
