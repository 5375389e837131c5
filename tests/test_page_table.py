"""A page is one module and one row of the page table: routes, navbar, URL checks, callback checks and sign-in
are all built from the table."""

from __future__ import annotations

import json

from dash import Input, Output, html
from mlflow import MlflowClient
from plotly.utils import PlotlyJSONEncoder

from tests.test_control_page import post
from trellis.app.auth.plain import PlainUsers
from trellis.app.factory import create_app
from trellis.app.page_table import PAGES, Page


def _toy_layout(context):
    return html.Div([html.Button("Count", id="toy-button"), html.Div(id="toy-out")], id="toy-page")


def _toy_register(app, context):
    @app.callback(Output("toy-out", "children"), Input("toy-button", "n_clicks"))
    def count(clicks):
        return f"{clicks or 0} clicks over {len(context.experiments())} experiments"


TOY = Page("/toy", "Toy", _toy_layout, _toy_register)


def test_every_page_of_the_table_is_routed_and_in_the_navbar(store, tmp_path):
    MlflowClient(tracking_uri=store).search_experiments()
    app = create_app(store, cache=str(tmp_path / "cache"))
    client = app.server.test_client()
    shell = json.dumps(app.layout(), cls=PlotlyJSONEncoder)
    for page in PAGES:
        assert f'"{page.nav_id}"' in shell and page.label in shell
        assert client.get(page.path).status_code == 200
    assert client.get("/toy").status_code == 404  # the URL checks know only the table's paths


def test_a_page_added_as_a_row_is_served_navigated_checked_and_signed_in(store, tmp_path):
    MlflowClient(tracking_uri=store).search_experiments()
    app = create_app(store, cache=str(tmp_path / "cache"), pages=(*PAGES, TOY))
    client = app.server.test_client()
    assert client.get("/toy").status_code == 200
    shell = json.dumps(app.layout(), cls=PlotlyJSONEncoder)
    assert '"nav-toy"' in shell and '"Toy"' in shell
    deps = json.loads(client.get("/_dash-dependencies").data)
    routed = post(client, deps, "url.pathname", {"url.pathname": "/toy"}, "page.children")
    assert "toy-page" in json.dumps(routed)
    answer = post(client, deps, "toy-button.n_clicks", {"toy-button.n_clicks": 2}, "toy-out.children")
    assert answer["toy-out"]["children"] == "2 clicks over 1 experiments"
    # a body naming a component no page has: refused by the callback checks, built from the same table
    bad = client.post("/_dash-update-component", json={"output": "toy-out.children", "outputs": {"id": "nope",
                      "property": "children"}, "inputs": [], "changedPropIds": []})  # fmt: skip
    assert bad.status_code == 400

    signed = create_app(store, cache=str(tmp_path / "cache2"), pages=(*PAGES, TOY), auth=PlainUsers({"ana": "pw"}))
    anonymous = signed.server.test_client()
    assert anonymous.get("/toy").status_code == 401
