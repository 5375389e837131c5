"""No data leaves the server: the app, as served, fetches every script, style sheet and font from itself (no CDN,
no other host), and no graph on any page offers Plotly's cloud upload or Chart Studio."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest

from trellis.app.factory import create_app
from trellis.layouts.style import GRAPH_CONFIG

PAGES = ("/", "/space", "/curves", "/exploration", "/control")
ABSOLUTE = re.compile(r"""(?:https?:)?//[a-z0-9.-]+""", re.I)
# What a JSON answer may name that is no fetch: XML namespaces, which browsers never load.
NAMESPACES = ("http://www.w3.org", "https://www.w3.org")


class Refs(HTMLParser):
    """Every URL an HTML page makes the browser load (scripts, style sheets, icons, images, frames)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("src", "href", "data", "poster"):
            if attrs.get(key) and (key != "href" or tag == "link"):
                self.urls.append(attrs[key])


def external(text: str) -> list[str]:
    """Absolute or protocol-relative URLs in ``text`` (namespaces aside)."""
    return [m for m in ABSOLUTE.findall(text) if not m.startswith(NAMESPACES) and not m.startswith("//#")]


def own(url: str) -> bool:
    parts = urlsplit(url)
    return not parts.scheme and not parts.netloc and not url.startswith("//")


@pytest.fixture
def web(store):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=store)
    run = client.create_run(client.create_experiment("local-only"))
    client.log_metric(run.info.run_id, "loss", 0.5)
    return create_app(store).server.test_client()


def css_refs(text: str) -> list[str]:
    urls = re.findall(r"""url\(\s*['"]?([^'")]+)['"]?\s*\)""", text)
    urls += re.findall(r"""@import\s+['"]([^'"]+)['"]""", text)
    return [u for u in urls if not u.startswith("data:")]


def test_every_asset_the_index_loads_is_served_by_the_app_itself(web):
    for path in PAGES:
        page = web.get(path)
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert not external(html), (path, external(html))
        refs = Refs()
        refs.feed(html)
        scripts = [u for u in refs.urls if ".js" in u]
        assert any("dash_renderer" in u or "dash-renderer" in u for u in scripts), refs.urls  # the parse is real
        assert all(own(u) for u in refs.urls), [u for u in refs.urls if not own(u)]
        for url in refs.urls:
            answer = web.get(url)
            assert answer.status_code == 200, url
            if ".css" in url:  # what a style sheet loads in turn (fonts, images)
                nested = css_refs(answer.get_data(as_text=True))
                assert all(own(u) for u in nested), (url, nested)
                for ref in nested:
                    assert web.get(urljoin(url, ref)).status_code == 200, (url, ref)


def test_the_layout_and_dependencies_name_no_other_host(web):
    for route in ("/_dash-layout", "/_dash-dependencies"):
        answer = web.get(route)
        assert answer.status_code == 200
        assert not external(answer.get_data(as_text=True)), (route, external(answer.get_data(as_text=True)))
    config = json.loads(
        re.search(r'<script id="_dash-config"[^>]*>(.*?)</script>', web.get("/").get_data(as_text=True), re.S)[1]
    )
    assert config["serve_locally"] is True  # the renderer's lazy chunks (plotly.js) come from this app too


def graphs(node, found: list) -> list:
    if isinstance(node, list):
        for child in node:
            graphs(child, found)
    elif isinstance(node, dict):
        if node.get("type") == "Graph" and node.get("namespace") == "dash_core_components":
            found.append(node["props"])
        for value in (node.get("props") or {}).values() if "namespace" in node else node.values():
            graphs(value, found)
    return found


def routed(web, pathname: str):
    """The page the app routes ``pathname`` to, as its routing callback serves it."""
    body = {
        "output": "page.children",
        "outputs": {"id": "page", "property": "children"},
        "inputs": [{"id": "url", "property": "pathname", "value": pathname}],
        "changedPropIds": ["url.pathname"],
        "state": [],
    }
    answer = web.post("/_dash-update-component", json=body)
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    return answer.get_json()["response"]["page"]["children"], answer.get_data(as_text=True)


def test_every_graph_on_every_page_has_the_shared_config_without_cloud_buttons(web):
    shared = json.loads(json.dumps(GRAPH_CONFIG))
    assert shared["displaylogo"] is False
    assert shared["showSendToCloud"] is False and shared["showEditInChartStudio"] is False
    seen = []
    for path in PAGES:
        page, text = routed(web, path)
        assert not external(text), (path, external(text))
        for props in graphs(page, []):
            seen.append(props["id"])
            assert props.get("config") == shared, props["id"]
            added = props["config"].get("modeBarButtonsToAdd", [])
            assert not {"sendDataToCloud", "editInChartStudio"} & set(added), props["id"]
    assert {"ov-best", "ov-tradeoff", "ov-distribution", "sp-parcoords", "sp-importance", "cv-graph"} <= set(seen)
