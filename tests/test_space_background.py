"""The search-space page never waits long for its analysis: a request answers at once with a progress line
and a poll; the analysis goes on in the background and a later poll draws it (not kept for other users
while it is pending)."""

from __future__ import annotations

import json
import time

import trellis.app.context as app_context
from tests.auth_walk import callback_body
from trellis.app.factory import create_app
from trellis.layouts.choices import best_quantile
from trellis.search.engine.runner import run_search


def _answer(client, app, output: str, values: dict, changed: list[str]) -> dict:
    response = client.post("/_dash-update-component", json=callback_body(app, output, values, changed))
    assert response.status_code == 200, response.data[:300]
    return json.loads(response.data)["response"]


def test_the_page_shows_progress_then_the_analysis_without_a_reload(make_config, store, tmp_path, monkeypatch):
    result = run_search(make_config(termination={"max_trials": 40}))  # enough runs to rank
    fits = []
    real_fit = app_context.fit_surrogate
    monkeypatch.setattr(app_context, "fit_surrogate", lambda data: fits.append(1) or real_fit(data))
    app = create_app(store, cache=str(tmp_path / "cache"), analysis_wait_s=0.0)
    client = app.server.test_client()
    values = {
        "selection.data": {"experiments": [result.experiment_id], "searches": []},
        "sp-metric.value": "loss",
        "sp-dir.value": "min",
        "sp-quantile.value": 1.0,
    }
    first = _answer(client, app, "sp-importance", values, ["selection.data"])
    assert first["sp-poll"]["disabled"] is False and first["sp-ready"]["data"] == "pending"
    progress = json.dumps(first["sp-progress"]["children"])
    assert "Computing the search-space analysis of 40 runs" in progress and "s so far" in progress
    assert not first["sp-importance"]["figure"]["data"]  # nothing drawn before the analysis exists
    waiting = _answer(client, app, "sp-parcoords", {**values, "sp-ready.data": "pending"}, ["sp-ready.data"])
    assert "follow the analysis" in json.dumps(waiting["sp-parcoords"]["figure"]["layout"])

    polled, n = first, 0
    deadline = time.monotonic() + 120
    while polled["sp-poll"]["disabled"] is False and time.monotonic() < deadline:
        n += 1
        time.sleep(0.2)
        polled = _answer(client, app, "sp-importance", {**values, "sp-poll.n_intervals": n}, ["sp-poll.n_intervals"])
        if polled["sp-poll"]["disabled"] is False:  # still computing: only the progress line moves
            assert set(polled) == {"sp-progress", "sp-poll"}
    assert polled["sp-poll"]["disabled"] is True and polled["sp-ready"]["data"] == "ready"
    assert polled["sp-progress"]["children"] == ""
    bars = polled["sp-importance"]["figure"]["data"]
    assert bars and {"x", "y"} <= set(bars[0])  # the importance rows, drawn
    assert "space:" in polled["sp-yaml"]["children"]
    drawn = _answer(client, app, "sp-parcoords", {**values, "sp-ready.data": "ready"}, ["sp-ready.data"])
    assert drawn["sp-parcoords"]["figure"]["data"][0]["type"] == "parcoords"
    # the prediction form's surrogate was fitted in the same background job: its request fits nothing
    assert fits == [1]
    surrogate = app.trellis_context.space_surrogate(values["selection.data"], "loss", "min", None, best_quantile(1.0))
    assert surrogate is not None and fits == [1]
    # the pending answers were not kept: the first request asked again now draws the analysis
    again = _answer(client, app, "sp-importance", values, ["selection.data"])
    assert again["sp-poll"]["disabled"] is True and again["sp-importance"]["figure"]["data"]
