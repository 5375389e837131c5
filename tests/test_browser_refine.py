"""The README's refine step on the demo's own TPE search, in headless Chromium under gunicorn: the search-space
page shows one verdict per parameter; Control → pick the TPE search gives a prior-guided relaunch by default (the
prior of those verdicts, its view drawn per parameter), and *hard bounds* changes the space exactly as the
verdicts say (what ``trellis bounds`` prints for the same runs)."""

from __future__ import annotations

import contextlib

import pytest
import yaml
from selenium.webdriver.common.by import By

from tests.browser import find_browser, gunicorn_app, make_driver, text, wait
from tests.conftest import ROOT, module_store
from tests.test_browser_control import _pick, _status
from trellis.search.analysis.refine import prior_from_verdicts
from trellis.search.analysis.report import analyse
from trellis.search.config import parse_config
from trellis.search.engine.runner import run_search
from trellis.tracking.reader import read_runs

pytestmark = pytest.mark.skipif(
    find_browser() is None, reason="Debian's chromium and chromium-driver are not installed (./dev setup installs them)"
)


@pytest.fixture(scope="module")
def demo_tpe(tmp_path_factory):
    """The demo's TPE search (examples/configs/digits_mlp_tpe.yaml: 24 trials of a torch MLP on digits)."""
    tmp, uri = module_store(tmp_path_factory, "refine")
    raw = yaml.safe_load((ROOT / "examples" / "configs" / "digits_mlp_tpe.yaml").read_text())
    raw["tracking"] = {"uri": uri, "experiment": "trellis-demo"}
    with contextlib.chdir(tmp):
        config = parse_config(raw)
        result = run_search(config)
    table = read_runs(uri, [result.experiment_id])
    trials = table.trials[table.trials["search_id"] == result.search_id]
    report = analyse(table, trials, "val_accuracy", "max")
    env = {"TRELLIS_TRACKING_URI": uri, "TRELLIS_CACHE": str(tmp / "cache")}
    with gunicorn_app(tmp, env) as base:
        driver = make_driver()
        try:
            yield base, driver, result, report, config.to_dict()["space"]
        finally:
            driver.quit()


def test_the_demo_refine_step_changes_the_space_as_the_verdicts_say(demo_tpe):
    base, driver, result, report, parent = demo_tpe
    verdicts = report.verdicts
    assert report.problem is None, report.problem  # 24 runs of 7 parameters: trusted, with its fit shown
    assert any(v.action != "keep" for v in verdicts.values())

    # The search-space page: one row per parameter, each with the verdict the library gives.
    driver.get(f"{base}/space?exp={result.experiment_id}&search={result.search_id}")
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#sp-verdicts tbody tr"), timeout=60)
    rows = driver.find_elements(By.CSS_SELECTOR, "#sp-verdicts tbody tr")
    shown = {r.find_elements(By.TAG_NAME, "td")[0].text: r.find_elements(By.TAG_NAME, "td")[1].text for r in rows}
    assert shown == {name: v.headline for name, v in verdicts.items()}

    # Control → pick the TPE search: by default the relaunch keeps the parent's ranges (widened where a verdict
    # widens) and takes the prior of the verdicts; the form draws what that prior does per parameter.
    driver.get(f"{base}/control?exp={result.experiment_id}")
    wait(driver, lambda d: _status(d, result.search_id) == "finished", timeout=60)
    _pick(driver, result.search_id, "finished")
    wait(driver, lambda d: "Prior from the verdicts" in text(d, "ctl-fill-note"), timeout=60)
    wait(driver, lambda d: "prior:" in text(d, "ctl-yaml"), timeout=30)
    launched = yaml.safe_load(text(driver, "ctl-yaml"))
    space_of, _, expected = prior_from_verdicts(verdicts, report.data, parent)
    assert set(launched["prior"]["parameters"]) == set(expected["parameters"]) != set()
    for name, entry in expected["parameters"].items():
        assert launched["prior"]["parameters"][name] == entry, name
    assert {n: s for n, s in launched["space"].items()} == {n: s for n, s in space_of.items()}
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#ctl-prior-graph .main-svg"), timeout=30)
    titles = [t.text for t in driver.find_elements(By.CSS_SELECTOR, "#ctl-prior-graph .annotation-text")]
    for name in expected["parameters"]:
        assert any(t.startswith(f"{name}: pull ") for t in titles), (name, titles)

    # → hard bounds: the launch preview carries the verdicts as walls, and no prior.
    driver.find_element(By.XPATH, "//*[@id='ctl-guide']//label[contains(., 'hard bounds')]").click()
    wait(driver, lambda d: "Hard bounds from the verdicts" in text(d, "ctl-fill-note"), timeout=60)
    wait(driver, lambda d: "space:" in text(d, "ctl-yaml") and "prior:" not in text(d, "ctl-yaml"))
    space = yaml.safe_load(text(driver, "ctl-yaml"))["space"]
    for name, verdict in verdicts.items():
        spec = space.get(name)
        if verdict.action == "fix":
            assert spec == verdict.value or (isinstance(spec, dict) and spec.get("value") == verdict.value), name
        elif verdict.action in ("narrow", "widen") and verdict.low is not None:
            assert (spec["low"], spec["high"]) == pytest.approx((verdict.low, verdict.high)), name
        elif verdict.action == "narrow":
            assert spec["choices"] == list(verdict.choices), name
    assert space != parent
