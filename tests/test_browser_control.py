"""The control page in headless Chromium, with basic auth on, served by gunicorn (2 workers) over a real SQLite
store, and a real agent (``trellis agent``) running what the page launches, one search at a time."""

import base64
import contextlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from types import SimpleNamespace

import pytest
from mlflow import MlflowClient
from selenium.common.exceptions import ElementClickInterceptedException, StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser import click as _click
from tests.browser import console_errors, find_browser, gunicorn_app, make_driver
from tests.browser import text as _text
from tests.browser import wait as _wait
from tests.conftest import BASE, ROOT, module_store
from tests.test_control_page import callback_payload
from trellis.search.config import parse_config
from trellis.search.control.queue import submit_search
from trellis.search.engine.runner import run_search
from trellis.tracking import schema

pytestmark = pytest.mark.skipif(
    find_browser() is None, reason="Debian's chromium and chromium-driver are not installed (./dev setup installs them)"
)
AUTH = "Basic " + base64.b64encode(b"u:p").decode()
SLOW = "trellis.examples.synthetic:slow"


@pytest.fixture(scope="module")
def control(tmp_path_factory):
    tmp, uri = module_store(tmp_path_factory, "control")
    tracking = {"uri": uri, "experiment": "control"}
    one_worker = {"kind": "local", "workers": 1}  # TPE on one worker: the same trials, so the same bounds, every run
    with contextlib.chdir(tmp):
        raw = {
            **BASE,
            "name": "quad-tpe",
            "space": {name: BASE["space"][name] for name in ("x", "y")},
            "algorithm": {"name": "tpe", "seed": 21, "n_startup_trials": 8},
            "budget": {"resource": "epochs", "min": 1, "max": 2},
            "termination": {"max_trials": 24},
            "executor": one_worker,
            "tracking": tracking,
        }
        parent = run_search(parse_config(raw))
        slow = {
            **raw,
            "name": "slow",
            "space": {"x": BASE["space"]["x"], "seconds": 0.4},
            "algorithm": {"name": "random", "seed": 1},
            "budget": {"resource": "epochs", "min": 1, "max": 3},
            "termination": {"max_trials": 30},
            "trial": {"function": SLOW},
        }
        slow_id = submit_search(parse_config(slow), launched_by="fixture")  # the agent starts it
    env = {
        "TRELLIS_TRACKING_URI": uri,
        "TRELLIS_CACHE": str(tmp / "cache"),
        "TRELLIS_AUTH": "u:p",
        "TRELLIS_ALLOWED_TRIALS": SLOW,
    }
    agent = subprocess.Popen(
        [sys.executable, "-m", "trellis.cli", "agent", "--tracking-uri", uri, "--poll", "0.5"],
        cwd=tmp,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with gunicorn_app(tmp, env, ready=lambda url: _request(url, auth=True)) as base:
            driver = make_driver()
            driver.execute_cdp_cmd("Network.enable", {})
            driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": AUTH}})
            yield SimpleNamespace(
                base=base, driver=driver, parent=parent, slow_id=slow_id, client=MlflowClient(tracking_uri=uri)
            )
            driver.quit()
    finally:
        agent.terminate()  # ends its searches as a stop would
        agent.wait(timeout=60)


def _request(url: str, payload: dict | None = None, auth: bool = False):
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    if auth:
        request.add_header("Authorization", AUTH)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read().decode()


def _search_count(c) -> int:
    return len(c.client.search_runs([c.parent.experiment_id], f"tags.`{schema.TYPE}` = 'search'"))


def test_anonymous_and_crafted_launches_are_refused(control):
    c = control
    deps = json.loads(_request(c.base + "/_dash-dependencies", auth=True))
    cells = [
        {"name": "x", "action": "search", "type": "float", "low": 0.9, "high": 0.1, "log": "no"},
        {"name": "y", "action": "search", "type": "float", "low": -1, "high": 1, "log": "no"},
    ]
    values = {
        "ctl-launch.n_clicks": 1,
        "ctl-pick.value": c.parent.search_id,
        "ctl-name.value": "crafted",
        "ctl-params.data": cells,
        "ctl-algo.value": "tpe",
        "ctl-max-trials.value": 5,
        "ctl-workers.value": 1,
        "ctl-extra.data": {},
    }
    before = _search_count(c)
    payload = callback_payload(deps, "ctl-launch.n_clicks", values)
    with pytest.raises(urllib.error.HTTPError) as refused:
        _request(c.base + "/_dash-update-component", payload)
    assert refused.value.code == 401
    answer = _request(c.base + "/_dash-update-component", payload, auth=True)
    assert "space.x" in answer and "launched" not in answer  # low >= high: the problems, nothing written
    cells[0].update(low=0.1, high=0.9)
    crafted = callback_payload(deps, "ctl-launch.n_clicks", {**values, "ctl-extra.data": {"trial": "os:system"}})
    answer = _request(c.base + "/_dash-update-component", crafted, auth=True)
    assert "os:system is not on this server" in answer and "launched" not in answer
    assert _search_count(c) == before


# -- the page --------------------------------------------------------------------------------------------

RECORDER = """
window.__seen = {};
setInterval(() => {
  for (const tr of document.querySelectorAll('#ctl-table tr')) {
    const id = tr.querySelector('td[data-dash-column=short]'), st = tr.querySelector('td[data-dash-column=status]');
    if (!id || !st) continue;
    const seen = window.__seen[id.textContent] = window.__seen[id.textContent] || [];
    if (seen[seen.length - 1] !== st.textContent) seen.push(st.textContent);
  }
}, 100);
"""


CELL = """
function cell(table, keyColumn, key, column) {
  for (const tr of document.querySelectorAll(`#${table} tr`)) {
    const k = tr.querySelector(`td[data-dash-column=${keyColumn}]`);
    if (k && k.textContent.trim().endsWith(key)) return tr.querySelector(`td[data-dash-column=${column}]`);
  }
  return null;
}
"""


def _cell_text(driver, table, key_column, key, column):
    """The text of ``column`` in the row of ``table`` whose ``key_column`` reads ``key`` (None when absent)."""
    script = CELL + "const c = cell(...arguments); return c && c.textContent;"
    return driver.execute_script(script, table, key_column, key, column)


def _click_cell(driver, table, key_column, key, column):
    def click(d):
        cell = d.execute_script(CELL + "return cell(...arguments);", table, key_column, key, column)
        d.execute_script("arguments[0].scrollIntoView({block: 'center'})", cell)
        try:
            cell.click()
        except (ElementClickInterceptedException, StaleElementReferenceException):
            return False  # the table redrew between the scroll and the click (its periodic refresh): again
        return True

    _wait(driver, click, timeout=30)


def _status(driver, search_id):
    return _cell_text(driver, "ctl-table", "short", search_id[:8], "status")


def _pick(driver, search_id, label):
    """Click the search's row, as a person picks it; its actions follow its status."""
    _click_cell(driver, "ctl-table", "short", search_id[:8], "short")
    _wait(driver, lambda d: d.find_elements(By.ID, "ctl-picked-label") and _text(d, "ctl-picked-label") == label)


def _type_into_cell(driver, name, column, text):
    _click_cell(driver, "ctl-params", "name", name, column)
    ActionChains(driver).send_keys(text).send_keys(Keys.ENTER).perform()


def _bounds(driver):
    return [_cell_text(driver, "ctl-params", "name", "x", col) for col in ("low", "high")]


def _set_number(driver, element_id, value):
    field = driver.find_element(By.ID, element_id)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", field)
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(str(value))


def test_edit_refine_launch_stop_and_resume_from_the_page(control):
    c, driver = control, control.driver
    driver.get(f"{c.base}/control?exp={c.parent.experiment_id}")
    _wait(driver, lambda d: _status(d, c.parent.search_id) == "finished")
    driver.execute_script(RECORDER)
    _wait(driver, lambda d: _status(d, c.slow_id) == "running", timeout=40)  # the agent took it

    # Edit the running search's max trials: its runner applies it, the table shows the new limit.
    _pick(driver, c.slow_id, "running")
    _wait(driver, lambda d: d.find_element(By.ID, "ctl-edit-trials").get_attribute("value") == "30")
    _set_number(driver, "ctl-edit-trials", 40)
    _click(driver, "ctl-edit-apply")
    _wait(driver, lambda d: "max_trials 40 requested" in _text(d, "ctl-action-msg"))
    _wait(driver, lambda d: (_cell_text(d, "ctl-table", "short", c.slow_id[:8], "progress") or "").endswith("/ 40"))

    # Relaunch the finished TPE search: by default its ranges kept (a prior pulls); hard bounds cut them.
    _pick(driver, c.parent.search_id, "finished")
    _wait(driver, lambda d: d.find_element(By.ID, "ctl-name").get_attribute("value") == "quad-tpe-refined")
    _wait(driver, lambda d: _bounds(d) == ["-1", "1"])
    driver.find_element(By.XPATH, "//*[@id='ctl-guide']//label[contains(., 'hard bounds')]").click()
    _wait(driver, lambda d: "Hard bounds from the verdicts" in _text(d, "ctl-fill-note"))
    low, high = (float(v) for v in _bounds(driver))
    assert -1 <= low < high <= 1 and (low, high) != (-1, 1)

    # A bad range is refused inline; nothing can be launched.
    before = _search_count(c)
    _type_into_cell(driver, "x", "low", "5")
    _wait(driver, lambda d: d.find_elements(By.ID, "ctl-problems-alert") and "space.x" in _text(d, "ctl-problems"))
    assert driver.find_element(By.ID, "ctl-launch").get_attribute("disabled") is not None
    _click(driver, "ctl-fill-bounds")
    _wait(driver, lambda d: "space:" in _text(d, "ctl-yaml") and not d.find_elements(By.ID, "ctl-problems-alert"))
    _set_number(driver, "ctl-max-trials", 150)
    _wait(driver, lambda d: "max_trials: 150" in _text(d, "ctl-yaml"))
    assert "warm_start" in _text(driver, "ctl-diff") and _search_count(c) == before

    # Launch: the agent is busy with the slow search, so the relaunch waits, under its parent.
    _click(driver, "ctl-launch")
    _wait(driver, lambda d: d.find_elements(By.ID, "ctl-launched-link"))
    link = driver.find_element(By.ID, "ctl-launched-link")
    new_id = link.text
    assert f"search={new_id}" in link.get_attribute("href") and _search_count(c) == before + 1
    assert c.client.get_run(new_id).data.tags[schema.LAUNCHED_BY] == "u"
    _wait(driver, lambda d: _status(d, new_id) == "scheduled")
    assert "└" in _cell_text(driver, "ctl-table", "short", new_id[:8], "name")

    # Stop the slow search: the agent then runs the relaunch, and the table follows it without a reload.
    _pick(driver, c.slow_id, "running")
    _click(driver, "ctl-stop")
    _wait(driver, lambda d: "is stopping" in _text(d, "ctl-action-msg"))
    _wait(driver, lambda d: _status(d, c.slow_id) == "stopped", timeout=60)
    _wait(driver, lambda d: _status(d, new_id) == "finished", timeout=60)
    # The page's recorder of status changes has seen the last one too (it notes each as the table redraws).
    _wait(driver, lambda d: d.execute_script("return window.__seen")[new_id[:8]][-1:] == ["finished"], timeout=30)
    seen = driver.execute_script("return window.__seen")[new_id[:8]]
    # Scheduled, then finished, on the same page without a reload. Running shows in between when the table's
    # 2 s refresh falls inside the run (150 quick trials take about that long here; the slow search above was
    # seen running).
    assert seen in (["scheduled", "running", "finished"], ["scheduled", "finished"]), seen
    assert _cell_text(driver, "ctl-table", "short", new_id[:8], "progress") == "150 / 150"

    # Resume the stopped search from the page: the free agent takes it again.
    _pick(driver, c.slow_id, "stopped")
    _click(driver, "ctl-resume")
    _wait(driver, lambda d: "resume of search" in _text(d, "ctl-action-msg"))
    _wait(driver, lambda d: _status(d, c.slow_id) == "running", timeout=60)
    assert console_errors(driver) == []


def test_a_diagnosis_fix_link_opens_the_form_filled_with_the_fix(control):
    from trellis.search.control.fixes import encode_fix

    c, driver = control, control.driver
    fix = encode_fix({"space.x.high": 0.5})
    driver.get(f"{c.base}/control?exp={c.parent.experiment_id}&search={c.parent.search_id}&fix={fix}")
    _wait(driver, lambda d: d.find_elements(By.ID, "ctl-fix-note"))
    assert "space.x.high: 0.5" in _text(driver, "ctl-fix-note")
    _wait(driver, lambda d: _bounds(d) == ["-1", "0.5"])
    assert f"fix={fix}" in driver.current_url  # the shell kept it while the search stays picked
