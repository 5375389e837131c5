"""The exploration page in headless Chromium (gunicorn, real SQLite store): a BOHB search's dashed rung paths,
a PBT search's lineage curves, and a mouse hover that highlights one trial's history."""

import contextlib

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from tests.browser import console_errors, find_browser, gunicorn_app, make_driver
from tests.browser import wait as _wait
from tests.conftest import module_store
from tests.test_exploration import SEARCHES, _config
from trellis.search.engine.runner import run_search

pytestmark = pytest.mark.skipif(
    find_browser() is None, reason="Debian's chromium and chromium-driver are not installed (./dev setup installs them)"
)

TRACES = """
const gd = document.querySelector('#ex-history .js-plotly-plot');
if (!gd || !gd.data) { return null; }
const size = (v) => !v ? 0 : (v.length !== undefined ? v.length : (v.bdata ? atob(v.bdata).length : 0));
return gd.data.map((t) => ({role: (t.meta || {}).role, param: (t.meta || {}).param, dash: (t.line || {}).dash,
                            n: size(t.x), xaxis: t.xaxis}));
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp, uri = module_store(tmp_path_factory, "exploration-browser")
    with contextlib.chdir(tmp):
        ran = {name: run_search(_config(name, uri, SEARCHES[name])) for name in ("bohb", "pbt")}
    with gunicorn_app(tmp, {"TRELLIS_TRACKING_URI": uri, "TRELLIS_CACHE": str(tmp / "cache")}) as base:
        driver = make_driver()
        yield base, driver, ran
        driver.quit()


def _open(driver, base, experiment):
    driver.get(f"{base}/exploration?exp={experiment}")
    return _wait(driver, lambda d: d.execute_script(TRACES) or None, timeout=60)


def test_bohb_rungs_are_dashed_paths_and_hovering_highlights_one_trial(served):
    base, driver, ran = served
    traces = _open(driver, base, ran["bohb"].experiment_id)
    rungs = [t for t in traces if t["role"] == "rungs"]
    assert rungs and all(t["dash"] == "dash" and t["n"] > 0 for t in rungs)
    # hover a promoted trial's last evaluation with the mouse: the highlight follows that trial only
    graph = driver.find_element(By.CSS_SELECTOR, "#ex-history .js-plotly-plot")
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", graph)
    trial, n, rel = driver.execute_script(
        """
        const gd = arguments[0];
        const i = gd.data.findIndex((t) => (t.meta || {}).role === 'eval');
        const trace = gd._fullData[i], xa = gd._fullLayout[trace.xaxis.replace('x', 'xaxis')];
        const ya = gd._fullLayout[trace.yaxis.replace('y', 'yaxis')];
        const ids = Array.from(trace.customdata), xs = Array.from(trace.x), ys = Array.from(trace.y);
        const counts = {};
        ids.forEach((c) => { counts[c] = (counts[c] || 0) + 1; });
        let k = 0;
        ids.forEach((c, j) => { if (counts[c] > counts[ids[k]] || (c === ids[k] && xs[j] > xs[k])) { k = j; } });
        return [ids[k], counts[ids[k]], [xa._offset + xa.l2p(xs[k]), ya._offset + ya.l2p(ys[k])]];
        """,
        graph,
    )
    assert n >= 2  # a trial BOHB promoted at least once
    size = graph.size
    driver.execute_script(
        "window._hovered = null; arguments[0].on('plotly_hover', (e) => { const p = e.points[0];"
        " window._hovered = Array.from(p.data.customdata ? p.fullData.customdata : [])[p.pointNumber]; });",
        graph,
    )
    expected = None
    for _ in range(3):  # a redraw (the page settling) may wipe a highlight: hover again, as a person would
        ActionChains(driver).move_to_element_with_offset(
            graph, 5 - size["width"] // 2, 5 - size["height"] // 2
        ).move_to_element_with_offset(graph, int(rel[0] - size["width"] / 2), int(rel[1] - size["height"] / 2)).pause(
            0.3
        ).move_by_offset(1, 0).perform()
        try:
            expected, highlighted = _wait(driver, lambda d: d.execute_script(HIGHLIGHT), timeout=8)
            break
        except TimeoutException:
            continue
    assert expected is not None, "hovering a point highlighted nothing"
    assert highlighted == expected  # every evaluation of the hovered trial, in iteration order, and no other
    assert not [e for e in console_errors(driver) if "favicon" not in e]
    del trial, n


HIGHLIGHT = """
const gd = document.querySelector('#ex-history .js-plotly-plot');
const h = gd.data.find((t) => (t.meta || {}).role === 'highlight');
const i = gd.data.findIndex((t) => (t.meta || {}).role === 'eval');
if (!h || !h.x || !h.x.length || window._hovered === null || window._hovered === undefined) { return null; }
const ev = gd._fullData[i], ids = Array.from(ev.customdata), xs = Array.from(ev.x);
const mine = xs.filter((x, k) => ids[k] === window._hovered).sort((a, b) => a - b);
return [mine, Array.from(h.x)];
"""


def test_pbt_lineage_curves_are_drawn(served):
    base, driver, ran = served
    traces = _open(driver, base, ran["pbt"].experiment_id)
    lineage = [t for t in traces if t["role"] == "lineage"]
    assert lineage and all(t["n"] > 0 and t["dash"] in (None, "solid") for t in lineage)
    assert [t for t in traces if t["role"] == "rungs" and t["n"] > 0]  # members that lived on: dashed paths too
    heading = driver.find_element(By.ID, "ex-info").text
    assert "pbt" in heading
