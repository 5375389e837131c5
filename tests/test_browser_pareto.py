"""The Pareto views in a real browser (issue 27): a two-objective search's front and hypervolume on the
Analyses page, served by gunicorn, read in headless Chromium."""

from __future__ import annotations

import contextlib

import pytest
from mlflow import MlflowClient
from selenium.webdriver.common.by import By

from tests.browser import console_errors, find_browser, gunicorn_app, make_driver, text, wait
from tests.conftest import BASE, module_store
from trellis.search.config import parse_config
from trellis.search.engine.runner import run_search

pytestmark = pytest.mark.skipif(
    find_browser() is None, reason="Debian's chromium and chromium-driver are not installed (./dev setup installs them)"
)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp, uri = module_store(tmp_path_factory, "browser-pareto")
    raw = {**BASE, "name": "zdt", "objective": [{"metric": "f1", "direction": "min"},
           {"metric": "f2", "direction": "min"}],
           "space": {f"x{i}": {"type": "float", "low": 0.0, "high": 1.0} for i in range(1, 4)},
           "algorithm": {"name": "random", "seed": 2}, "budget": {"min": 1, "max": 1},
           "termination": {"max_trials": 20}, "trial": {"function": "trellis.examples.synthetic:zdt1"},
           "tracking": {"uri": uri, "experiment": "zdt"}}  # fmt: skip
    with contextlib.chdir(tmp):
        result = run_search(parse_config(raw))
    _another_tools_runs(uri)
    env = {"TRELLIS_TRACKING_URI": uri, "TRELLIS_CACHE": str(tmp / "cache")}
    with gunicorn_app(tmp, env) as base:
        driver = make_driver()
        try:
            yield base, driver, result, uri
        finally:
            driver.quit()


def test_the_analyses_page_draws_the_front_and_the_hypervolume_of_a_two_objective_search(served):
    base, driver, result, uri = served
    runs = MlflowClient(uri).search_runs([result.experiment_id], "tags.`trellis.pareto_rank` = '1'")
    driver.get(f"{base}/analyses?exp={result.experiment_id}")
    wait(driver, lambda d: d.find_element(By.ID, "an-pick")).click()  # Dash's dropdown: a button, then a list
    option = wait(driver, lambda d: [o for o in d.find_elements(By.CSS_SELECTOR, "[role=option]")
                                     if o.text.startswith("Trade-offs")])[0]  # fmt: skip
    option.click()
    wait(driver, lambda d: "non-dominated" in text(d, "an-lines"))
    assert f"{len(runs)} non-dominated of 20 finished trials" in text(driver, "an-lines")
    graphs = wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#an-figures .js-plotly-plot")) == 3 and
                  d.find_elements(By.CSS_SELECTOR, "#an-figures .js-plotly-plot"))  # fmt: skip
    front_points = graphs[0].find_elements(By.CSS_SELECTOR, ".scatterlayer .trace path.point")
    assert len(front_points) == len(runs) > 0
    assert "Hypervolume" in graphs[1].text and "trials ended" in graphs[1].text
    assert "hypervolume contribution" in graphs[2].text  # importance per objective and for the contribution
    assert console_errors(driver) == []


def _another_tools_runs(uri: str) -> None:
    """A script's 25 runs logging accuracy and latency, with no recorded objectives."""
    import numpy as np
    from mlflow.entities import Metric, Param

    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("two-metrics")
    rng = np.random.default_rng(3)
    for _ in range(25):
        width = float(rng.uniform(1, 100))
        run = client.create_run(experiment)
        metrics = [Metric("acc", float(1 - 1 / width), 0, 0), Metric("latency", width + float(rng.normal()), 0, 0)]
        client.log_batch(run.info.run_id, params=[Param("width", str(width))], metrics=metrics)
        client.set_terminated(run.info.run_id)


def test_another_tools_runs_get_a_front_once_their_objectives_are_picked(served):
    from selenium.webdriver.common.keys import Keys

    base, driver, _, uri = served
    experiment = MlflowClient(uri).get_experiment_by_name("two-metrics").experiment_id
    driver.get(f"{base}/analyses?exp={experiment}")
    wait(driver, lambda d: d.find_element(By.ID, "an-pick")).click()
    option = wait(driver, lambda d: [o for o in d.find_elements(By.CSS_SELECTOR, "[role=option]")
                                     if o.text.startswith("Trade-offs")])[0]  # fmt: skip
    option.click()
    wait(driver, lambda d: "give objectives=" in text(d, "an-lines"))
    wait(driver, lambda d: "metrics here: acc, latency" in text(d, "an-inputs"))
    field = wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, "input[id*='objectives']"))
    field.send_keys("acc:max,latency:min" + Keys.ENTER)
    wait(driver, lambda d: "non-dominated of 25 finished trials: acc (max), latency (min)" in text(d, "an-lines"))
    field.send_keys(",nope:min" + Keys.ENTER)  # a metric these runs lack: said on the page, nothing breaks
    wait(driver, lambda d: "no metric 'nope'" in text(d, "an-lines"))
    assert console_errors(driver) == []
