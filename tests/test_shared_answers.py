"""Callback answers shared between users viewing the same runs (app.responses): a repeated request is answered
from memory, and never once the runs changed."""

from __future__ import annotations

import json

from tests.auth_walk import callback_body
from trellis.app.factory import create_app
from trellis.search.engine.runner import run_search


def _total(answer: bytes) -> str | None:
    """The run count the overview's counts card shows."""

    def find(node):
        if isinstance(node, dict):
            if node.get("props", {}).get("id") == "ov-total":
                return node["props"]["children"]
            return next((f for f in map(find, node.values()) if f is not None), None)
        if isinstance(node, list):
            return next((f for f in map(find, node) if f is not None), None)
        return None

    return find(json.loads(answer))


def test_a_repeated_callback_is_answered_from_memory_until_the_runs_change(make_config, store, tmp_path):
    first = run_search(make_config(termination={"max_trials": 4}))
    app = create_app(store, cache=str(tmp_path / "cache"))
    client = app.server.test_client()
    selection = {"experiments": [first.experiment_id], "searches": []}
    values = {"selection.data": selection, "ov-objective.value": "loss", "ov-objective-dir.value": "min"}
    body = callback_body(app, "ov-counts", values, ["selection.data"])
    answers = [client.post("/_dash-update-component", json=body) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].data == answers[1].data == answers[2].data and _total(answers[0].data) == "4"
    stats = app.trellis_responses.stats
    assert stats["kept"] == 1 and stats["hits"] == 1  # the first read filled the run cache, the second was kept

    run_search(make_config(termination={"max_trials": 2}))  # two more runs: another state, another answer
    fresh = client.post("/_dash-update-component", json=body)
    assert fresh.status_code == 200 and _total(fresh.data) == "6"
    assert app.trellis_responses.stats["hits"] == 1
    # another callback body (another objective) is another answer
    other = callback_body(app, "ov-counts", {**values, "ov-objective.value": "x"}, ["ov-objective.value"])
    assert client.post("/_dash-update-component", json=other).data != fresh.data


def test_a_malformed_selection_is_not_shared_and_a_write_callback_never(make_config, store, tmp_path):
    first = run_search(make_config(termination={"max_trials": 2}))
    app = create_app(store, cache=str(tmp_path / "cache"))
    shared = app.trellis_responses.allowed
    assert any("ov-counts" in o for o in shared) and any("sp-importance" in o for o in shared)
    # the control page launches and stops searches, the export sends a file: never answered from memory
    assert not any(o.startswith("..ctl-") or "ctl-" in o or "ov-download" in o for o in shared)
    client = app.server.test_client()
    for selection in (first.experiment_id, {"experiments": "1"}, {"experiments": [{"$ne": 1}]}):
        body = callback_body(app, "ov-counts", {"selection.data": selection})
        for _ in range(3):
            assert client.post("/_dash-update-component", json=body).status_code < 500
    assert app.trellis_responses.stats["kept"] == 0
