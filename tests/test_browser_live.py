"""Live pages in headless Chromium (gunicorn, 2 workers): a search that writes into the store while the
overview is open shows up on it without a reload, and the user's choices on the page stay."""

import contextlib

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC

from tests.browser import checked as _checked
from tests.browser import click as _click
from tests.browser import console_errors, find_browser, gunicorn_app, make_driver
from tests.browser import text as _text
from tests.browser import wait as _wait
from tests.conftest import BASE, module_store
from trellis.search.config import parse_config
from trellis.search.engine.runner import run_search

pytestmark = pytest.mark.skipif(
    find_browser() is None, reason="Debian's chromium and chromium-driver are not installed (./dev setup installs them)"
)


def _config(uri: str, name: str, algorithm: dict, max_trials: int):
    raw = {**BASE, "name": name, "algorithm": algorithm, "termination": {"max_trials": max_trials}}
    return parse_config({**raw, "budget": {"max": 3}, "tracking": {"uri": uri, "experiment": "live"}})


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One finished search in the store, the app on it; the test writes more while the page is open."""
    tmp, uri = module_store(tmp_path_factory, "live")
    with contextlib.chdir(tmp):
        first = run_search(_config(uri, "quad-first", {"name": "random", "seed": 1}, 6))
    env = {"TRELLIS_TRACKING_URI": uri, "TRELLIS_CACHE": str(tmp / "cache")}
    with gunicorn_app(tmp, env) as base:
        driver = make_driver()
        yield base, driver, tmp, uri, first
        driver.quit()


def _points(driver, graph_id):
    """Points drawn in a scatter figure's search traces (the Pareto front and the selection overlay left out)."""
    return driver.execute_script(
        f"const g = document.querySelector('#{graph_id} .js-plotly-plot');"
        "if (!g || !g._fullData) return -1;"
        "return g._fullData.filter(t => t.type === 'scattergl').reduce((n, t) => n + t.x.length, 0);"
    )


def _picker_labels(driver):
    """The search picker's options as a person sees them: open it, read them, close it."""
    _click(driver, "search-picker")
    options = _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "[role=option]"), timeout=5)
    labels = [o.text for o in options]
    ActionChains(driver).send_keys(Keys.ESCAPE).perform()
    _wait(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, "[role=option]"), timeout=5)
    return labels


# Records which callbacks the page asks the server for: "poll" for the shell's tick, "render" for the
# overview's figures, else the outputs' ids.
RECORD_CALLBACKS = """
window.trellisCalls = [];
const fetchBefore = window.fetch;
window.fetch = function (url, options) {
    if (String(url).includes('_dash-update-component')) {
        const output = JSON.parse(options.body).output;
        window.trellisCalls.push(
            output.includes('live-seen.data') ? 'poll' : output.includes('ov-tradeoff.figure') ? 'render' : output
        );
    }
    return fetchBefore.apply(this, arguments);
};
"""


def _calls(driver):
    return driver.execute_script("return window.trellisCalls")


def _stored_selection(driver):
    return driver.execute_script("return JSON.parse(sessionStorage.getItem('selected-runs') || '[]')")


def test_overview_shows_a_new_search_while_it_runs_without_a_reload(served):
    base, driver, tmp, uri, first = served
    driver.get(f"{base}/?exp={first.experiment_id}")
    _wait(driver, lambda d: _text(d, "ov-total") == "6")
    _wait(driver, lambda d: _points(d, "ov-tradeoff") == 6)
    _wait(driver, lambda d: len(_picker_labels(d)) == 1)
    # The user's state: a picked objective with its direction flipped, and two selected runs.
    driver.execute_script("window.dash_clientside.set_props('ov-objective', {value: 'accuracy'})")
    _wait(driver, lambda d: "objective=accuracy" in d.current_url and "accuracy" in _text(d, "ov-counts"))
    driver.execute_script("document.querySelector('#ov-objective-dir input[value=min]').click()")
    _wait(driver, lambda d: _checked(d, "ov-objective-dir") == "min")
    k = driver.find_element(By.ID, "ov-k")
    k.clear()
    k.send_keys("2")
    _click(driver, "ov-topk")
    _wait(driver, lambda d: "Selected runs (2)" in _text(d, "ov-selected-title"))
    chosen, url = _stored_selection(driver), driver.current_url
    marker = driver.execute_script("window.trellisLiveMarker = 1; return window.trellisLiveMarker;")
    assert marker == 1

    # While the store is idle the page only polls: two ticks go by and no callback but the poll ran.
    driver.execute_script(RECORD_CALLBACKS)
    _wait(driver, lambda d: _calls(d).count("poll") >= 2, timeout=15)
    assert set(_calls(driver)) == {"poll"}

    # Another search writes into the same experiment while the page stays open.
    with contextlib.chdir(tmp):
        second = run_search(_config(uri, "quad-second", {"name": "random", "seed": 7}, 5))
    assert second.experiment_id == first.experiment_id

    _wait(driver, lambda d: _text(d, "ov-total") == "11", timeout=40)  # a few ticks, no reload
    _wait(driver, lambda d: _points(d, "ov-tradeoff") == 11)
    _wait(driver, lambda d: any("quad-second" in label for label in _picker_labels(d)))  # joins the picker
    assert driver.execute_script("return window.trellisLiveMarker") == 1  # the same page: nothing reloaded
    assert driver.current_url == url  # the URL (picked experiments and objective) is the user's
    assert "accuracy" in _text(driver, "ov-counts")
    assert _checked(driver, "ov-objective-dir") == "min"
    assert "render" in _calls(driver)  # the recorder sees redraws: the idle check above means something
    assert _stored_selection(driver) == chosen and "Selected runs (2)" in _text(driver, "ov-selected-title")
    _wait(driver, EC.presence_of_element_located((By.ID, "ov-best-value")))
    assert console_errors(driver) == []
