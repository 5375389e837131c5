"""Every graph of every page shares one modebar config: nothing sent to Plotly's cloud, an SVG download."""

from dash import dcc

from trellis.app.pages import curves, overview, space
from trellis.layouts.style import GRAPH_CONFIG


def graphs(tree):
    return [c for c in [tree, *tree._traverse()] if isinstance(c, dcc.Graph)]


def test_every_graph_in_every_page_uses_the_shared_config():
    found = []
    for page in (overview, space, curves):
        for graph in graphs(page.layout(None)):
            found.append(graph.id)
            assert graph.config is GRAPH_CONFIG, graph.id
    assert {"ov-best", "ov-tradeoff", "ov-distribution", "sp-parcoords", "sp-importance", "cv-graph"} <= set(found)


def test_the_shared_config_never_offers_plotly_cloud_and_downloads_svg():
    assert GRAPH_CONFIG["displaylogo"] is False
    assert GRAPH_CONFIG["showSendToCloud"] is False and GRAPH_CONFIG["showEditInChartStudio"] is False
    assert GRAPH_CONFIG["toImageButtonOptions"]["format"] == "svg"
