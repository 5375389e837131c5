"""Crafted callback requests: a body no page would send is a 400 with the reason, and no value in any input
of any callback gives a 500 (a hypothesis fuzz over every registered callback)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.auth_walk import callback_body, every_callback
from trellis.app.callback_checks import body_problems
from trellis.app.factory import create_app


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from mlflow import MlflowClient

    store = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'mlruns.db'}"
    client = MlflowClient(store)
    exp = client.create_experiment("fuzz")
    for i in range(4):
        run = client.create_run(exp, run_name=f"r{i}")
        client.log_param(run.info.run_id, "lr", 0.1 * (i + 1))
        client.log_metric(run.info.run_id, "loss", 1.0 / (i + 1))
        client.set_terminated(run.info.run_id)
    app = create_app(store, cache=None)
    app.fuzz_experiment = exp
    return app


def test_bodies_no_page_would_send_are_named(app):
    cmap = app.callback_map
    assert body_problems(None, cmap) == ["body: a JSON object naming its output"]
    assert "is not a callback of this app" in body_problems({"output": "nope.children"}, cmap)[0]
    good = callback_body(app, "ov-download", {"selection.data": {"experiments": ["1"], "searches": []}})
    assert body_problems(good, cmap) == []
    sneaky = {**good, "inputs": [{"id": "ctl-launch", "property": "n_clicks", "value": 1}]}  # in place of its own
    assert "'ctl-launch.n_clicks' is not an input here" in body_problems(sneaky, cmap)[0]
    for selection, reason in [
        (None, "an object with experiments and searches"),
        ({"experiments": "1", "searches": []}, "a list of at most 50 ids"),
        ({"experiments": ["1; DROP"], "searches": []}, "is not an id"),
        ({"experiments": [str(i) for i in range(51)], "searches": []}, "at most 50"),
        ({"experiments": [], "searches": [{"$ne": 1}]}, "is not an id"),
    ]:
        bad = callback_body(app, "ov-download", {"selection.data": selection})
        assert any(reason in p for p in body_problems(bad, cmap)), selection
    client = app.server.test_client()
    response = client.post("/_dash-update-component", json=callback_body(app, "ov-download", {}))
    assert response.status_code == 400 and b"selection.data" in response.data


def test_a_malformed_request_shape_is_a_400_and_an_unknown_script_a_404(app):
    client = app.server.test_client()
    selection = {"selection.data": {"experiments": [app.fuzz_experiment], "searches": []}}
    base = callback_body(app, "ov-download", selection, ["ov-export.n_clicks"])
    assert client.post("/_dash-update-component", json=base).status_code == 200
    single = base["outputs"]
    for change in ({"outputs": None}, {"outputs": [{}]}, {"inputs": []}, {"changedPropIds": None},
                   {"changedPropIds": [{}]}, {"outputs": [single]}, {"outputs": []},
                   {"outputs": {**single, "id": {"a": 1}}}, {"outputs": {"id": "x", "property": "y"}}):  # fmt: skip
        response = client.post("/_dash-update-component", json={**base, **change})
        assert response.status_code == 400, change
    several = next(b for b in every_callback(app) if b["output"].startswith("..") and len(b["outputs"]) >= 3)
    nested = [[several["outputs"][0]], *several["outputs"][1:]]  # a list where one output stands: Dash answered 500
    for outputs in (nested, [several["outputs"][1], several["outputs"][0], *several["outputs"][2:]]):
        assert client.post("/_dash-update-component", json={**several, "outputs": outputs}).status_code == 400
    deep = client.post("/_dash-update-component", data="[" * 100_000 + "]" * 100_000, content_type="application/json")
    assert deep.status_code == 400
    assert client.get("/_dash-component-suites/nope/x.js").status_code == 404


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


@settings(
    max_examples=200, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)  # 3000 random ones pass here too
@given(data=st.data())
def test_no_callback_input_gives_a_500(app, data):
    bodies = every_callback(app)
    body = data.draw(st.sampled_from(bodies), label="callback")
    selection = {"experiments": [app.fuzz_experiment], "searches": []}
    for item in body["inputs"] + body["state"]:
        key = f"{item['id']}.{item['property']}"
        realistic = selection if key == "selection.data" else None
        item["value"] = data.draw(st.one_of(st.just(realistic), JSON), label=key)
    body["changedPropIds"] = [f"{i['id']}.{i['property']}" for i in body["inputs"][:1]]
    response = app.server.test_client().post("/_dash-update-component", json=body)
    assert response.status_code < 500, (body["output"], response.get_data(as_text=True)[-500:])
