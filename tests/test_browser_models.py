"""The model overview in headless Chromium (issue 17's walk): a newcomer opens the models of an architecture
search, clicks a small accurate model, trains its ablation, and sees the children appear in the overview and
the queue empty, with a real agent (``trellis agent``) training them. Served by gunicorn over SQLite."""

import contextlib
import copy
import os
import re
import subprocess
import sys

import pytest
import yaml
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from tests.browser import click, console_errors, find_browser, gunicorn_app, make_driver, text, wait
from tests.conftest import ROOT, module_store
from trellis.search.config import parse_config
from trellis.search.engine.runner import run_search

pytestmark = pytest.mark.skipif(
    find_browser() is None, reason="Debian's chromium and chromium-driver are not installed (./dev setup installs them)"
)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    tmp, uri = module_store(tmp_path_factory, "browser-models")
    raw = yaml.safe_load((ROOT / "examples/configs/arch_digits.yaml").read_text())
    raw = {
        **copy.deepcopy(raw),
        "budget": {"resource": "epochs", "min": 1, "max": 1},
        "termination": {"max_trials": 5},
        "executor": {"kind": "local", "workers": 1},
        "tracking": {"uri": uri, "experiment": "arch"},
    }
    raw["space"]["architecture"]["max_layers"] = 3
    with contextlib.chdir(tmp):
        search = run_search(parse_config(raw))
    env = {"TRELLIS_TRACKING_URI": uri, "TRELLIS_CACHE": str(tmp / "cache")}
    agent = subprocess.Popen(
        [sys.executable, "-m", "trellis.cli", "agent", "--tracking-uri", uri, "--poll", "0.5"],
        cwd=tmp,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with gunicorn_app(tmp, env) as base:
            driver = make_driver()
            yield base, driver, search
            driver.quit()
    finally:
        agent.terminate()
        agent.wait(timeout=60)


def _points(driver):
    return driver.find_elements(By.CSS_SELECTOR, "#md-overview .scatterlayer .trace:first-child path.point")


def test_pick_a_model_train_its_ablation_and_see_its_children(models):
    base, driver, search = models
    driver.get(f"{base}/models?exp={search.experiment_id}")
    wait(driver, lambda d: "5 models (0 children)" in text(d, "md-info"))
    assert "Pick a model" in text(driver, "md-card")

    def click_a_point(d):
        points = _points(d)
        if not points:
            return False
        d.execute_script("arguments[0].scrollIntoView({block: 'center'})", points[-1])
        ActionChains(d).move_to_element(points[-1]).pause(0.3).click().perform()
        return d.find_elements(By.ID, "md-glyph")

    wait(driver, click_a_point)
    layers = len(driver.find_elements(By.CSS_SELECTOR, "#md-glyph .trellis-glyph-block"))
    assert layers >= 1 and "parameters" in text(driver, "md-model")
    click(driver, "md-launch")
    wait(driver, lambda d: "launched as search" in text(d, "md-launch-msg"))
    queue = lambda d: " ".join(e.text for e in d.find_elements(By.CSS_SELECTOR, ".md-queue"))  # noqa: E731
    wait(driver, lambda d: re.search(r"(\d+) of \1 children ended, none waiting", queue(d)), timeout=180)
    children = int(re.search(r"(\d+) of \1 children ended", queue(driver)).group(1))
    wait(driver, lambda d: f"({children} children)" in text(d, "md-info"))
    wait(driver, lambda d: d.find_elements(By.ID, "md-children"))
    rows = driver.find_elements(By.CSS_SELECTOR, "#md-children td.md-change")
    assert len(rows) == children and all(r.text.startswith("removed ") for r in rows)
    assert len(driver.find_elements(By.CSS_SELECTOR, "#md-children .trellis-glyph")) == children
    diamonds = driver.find_elements(By.CSS_SELECTOR, "#md-overview .scatterlayer .trace:nth-child(2) path.point")
    assert len(diamonds) == children
    assert not console_errors(driver)
