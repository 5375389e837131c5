"""The app in headless Chromium, served by gunicorn (2 workers, shared cache) over a real SQLite store."""

import contextlib
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC

from tests import foreign
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


TRIALS = 12  # per search: two searches of 12 are enough runs for the space page to rank (3 parameters)
ALL = str(2 * TRIALS)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp, uri = module_store(tmp_path_factory, "app")
    with contextlib.chdir(tmp):
        searches = []
        for name, algo in (("quad-random", {"name": "random", "seed": 1}), ("quad-tpe", {"name": "tpe", "seed": 2})):
            raw = {**BASE, "name": name, "algorithm": algo, "termination": {"max_trials": TRIALS}, "budget": {"max": 4}}
            config = parse_config({**raw, "tracking": {"uri": uri, "experiment": "browser"}})
            searches.append(run_search(config))
        dirty_exp, _ = foreign.dirty(uri)
        sklearn_exp = foreign.sklearn_gridsearch(uri)
    env = {
        "TRELLIS_TRACKING_URI": uri,
        "TRELLIS_MLFLOW_UI": "http://mlflow.example:5000",
        "TRELLIS_CACHE": str(tmp / "cache"),
    }
    with gunicorn_app(tmp, env) as base:
        driver = make_driver()
        driver.trellis_foreign = {"dirty": dirty_exp, "sklearn": sklearn_exp}
        yield base, driver, searches
        driver.quit()


def _brush_first_axis(driver):
    """Drag over the top half of the first parallel-coordinates axis, as a person would with the mouse."""
    axis = driver.find_elements(By.CSS_SELECTOR, "#sp-parcoords .axis-brush")[0]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", axis)
    h = axis.size["height"]
    chain = ActionChains(driver).move_to_element_with_offset(axis, 0, -h // 2 + 5).click_and_hold()
    for _ in range(8):
        chain = chain.move_by_offset(0, (h // 2) // 8).pause(0.05)
    chain.release().perform()


def _trace_count(driver, graph_id):
    return driver.execute_script(
        f"const g = document.querySelector('#{graph_id} .js-plotly-plot'); return g && g.data ? g.data.length : -1;"
    )


def test_overview_loads_with_counts_figures_and_no_console_errors(served):
    base, driver, searches = served
    driver.get(base + "/")
    _wait(driver, lambda d: "?exp=" in d.current_url)  # a default selection is made and written to the URL
    driver.get(f"{base}/?exp={searches[0].experiment_id}")
    _wait(driver, lambda d: _text(d, "ov-total") == ALL)
    _wait(driver, lambda d: _trace_count(d, "ov-tradeoff") >= 3)  # two searches + Pareto front
    assert _trace_count(driver, "ov-best") == 4  # per search: points and best-so-far line
    best = min(s.progress.best_value for s in searches)
    assert float(_text(driver, "ov-best-value")) == pytest.approx(best, rel=1e-4)
    assert console_errors(driver) == []


def test_search_in_url_narrows_the_view(served):
    base, driver, searches = served
    exp = searches[0].experiment_id
    driver.get(f"{base}/?exp={exp}&search={searches[1].search_id}")
    _wait(driver, lambda d: _text(d, "ov-total") == str(TRIALS))
    assert console_errors(driver) == []


def test_top_k_selects_runs_links_to_mlflow_and_curves_show_them(served):
    base, driver, searches = served
    driver.get(f"{base}/?exp={searches[0].experiment_id}")
    _wait(driver, lambda d: _text(d, "ov-total") == ALL)
    k = driver.find_element(By.ID, "ov-k")
    k.clear()
    k.send_keys("3")
    _click(driver, "ov-topk")
    _wait(driver, lambda d: "Selected runs (3)" in _text(d, "ov-selected-title"))
    links = driver.find_elements(By.CSS_SELECTOR, "#ov-table a")
    assert len(links) == 3
    assert all(a.get_attribute("href").startswith("http://mlflow.example:5000/#/experiments/") for a in links)
    assert all("/runs/" in a.get_attribute("href") for a in links)

    _click(driver, "nav-curves")
    _wait(driver, EC.presence_of_element_located((By.ID, "cv-graph")))
    _wait(driver, lambda d: "3 selected runs" in _text(d, "cv-info"))
    # Default metrics: the objective (loss) only here -> one curve per selected run.
    _wait(driver, lambda d: _trace_count(d, "cv-graph") == 3)
    points = driver.execute_script(
        "return document.querySelector('#cv-graph .js-plotly-plot')._fullData.map(t => t.x.length)"
    )
    assert points == [4, 4, 4]  # epochs 1..4 of each trial
    assert console_errors(driver) == []


def test_box_select_on_trade_off_plot_selects_runs(served):
    base, driver, searches = served
    driver.get(f"{base}/?exp={searches[0].experiment_id}")
    _wait(driver, lambda d: _trace_count(d, "ov-tradeoff") >= 3)
    # Every callback of the page load has answered: a late redraw in the middle of the drag would drop its box.
    _wait(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, "[data-dash-is-loading='true']"))
    driver.execute_script("document.getElementById('ov-tradeoff').scrollIntoView({block: 'center'})")
    # And the plot has stopped moving (a scroll bar appearing as the page fills in resizes it).
    sizes = []

    def settled(d):
        box = d.find_element(By.CSS_SELECTOR, "#ov-tradeoff .nsewdrag").rect
        sizes.append((box["x"], box["y"], box["width"], box["height"]))
        return len(sizes) >= 3 and sizes[-1] == sizes[-2] == sizes[-3]

    _wait(driver, settled)
    plot = driver.find_element(By.CSS_SELECTOR, "#ov-tradeoff .nsewdrag")
    w, h = plot.size["width"], plot.size["height"]
    # Drag a box over the whole plotting area, in small steps as a hand would: every run becomes selected.
    chain = ActionChains(driver).move_to_element_with_offset(plot, -w // 2 + 3, -h // 2 + 3).click_and_hold()
    for _ in range(10):
        chain = chain.move_by_offset((w - 6) // 10, (h - 6) // 10).pause(0.05)
    chain.release().perform()
    _wait(driver, lambda d: f"Selected runs ({ALL})" in _text(d, "ov-selected-title"))
    _click(driver, "ov-clear")
    _wait(driver, lambda d: "No runs selected" in _text(d, "ov-selected-title"))
    assert console_errors(driver) == []


def test_csv_export_downloads_all_runs(served, tmp_path):
    base, driver, searches = served
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    driver.get(f"{base}/?exp={searches[0].experiment_id}")
    _wait(driver, lambda d: _text(d, "ov-total") == ALL)
    _click(driver, "ov-export")
    target = Path(tmp_path) / "trellis-runs.csv"
    _wait(driver, lambda d: target.exists() and target.stat().st_size > 0)
    import pandas as pd

    frame = pd.read_csv(target)
    assert len(frame) == 2 * TRIALS and {"run_id", "params.x", "metrics.loss", "search_id"} <= set(frame.columns)


def test_dirty_experiment_renders_and_says_what_was_left_out(served):
    base, driver, _ = served
    driver.get(f"{base}/?exp={driver.trellis_foreign['dirty']}")
    _wait(driver, lambda d: _text(d, "ov-total") == "5")
    skipped = _text(driver, "ov-skipped")
    assert "1 deleted runs" in skipped and "3 without a finite acc" in skipped
    # The histogram leaves out the same runs the card counts.
    _wait(
        driver,
        lambda d: (
            "3 without a finite acc left out"
            in d.execute_script(
                "const p = document.querySelector('#ov-distribution .js-plotly-plot');"
                "return (p && p.layout && p.layout.xaxis && p.layout.xaxis.title && p.layout.xaxis.title.text) || ''"
            )
        ),
    )
    assert _trace_count(driver, "ov-best") >= 1
    assert console_errors(driver) == []


def test_foreign_sklearn_gridsearch_renders(served):
    base, driver, _ = served
    driver.get(f"{base}/?exp={driver.trellis_foreign['sklearn']}")
    _wait(driver, lambda d: _text(d, "ov-total") == "6")  # the six candidates; the parent groups them
    _wait(driver, lambda d: _trace_count(d, "ov-tradeoff") >= 1)
    assert console_errors(driver) == []


def test_search_space_page_importance_bounds_and_brushing(served):
    base, driver, searches = served
    driver.get(f"{base}/space?exp={searches[0].experiment_id}")
    _wait(driver, lambda d: _trace_count(d, "sp-parcoords") == 1, timeout=60)
    dims = driver.execute_script(
        "return document.querySelector('#sp-parcoords .js-plotly-plot')._fullData[0].dimensions.map(d => d.label)"
    )
    assert set(dims) == {"x", "y", "shape", "loss"} and dims[-1] == "loss"  # parameters, then the metric
    _wait(driver, lambda d: _trace_count(d, "sp-importance") == 1)
    assert "R²" in _text(driver, "sp-r2")
    r2_text, yaml_text = _text(driver, "sp-r2"), _text(driver, "sp-yaml")
    if "R² -" in r2_text or "R² n/a" in r2_text:  # an untrusted forest: the page says why, offers nothing
        assert "No refined space is offered" in yaml_text and "space:" not in yaml_text
    else:
        assert "space:" in yaml_text and "low:" in yaml_text
    _wait(driver, lambda d: _trace_count(d, "sp-detail") >= 1)  # the most important parameter's marginal

    # Brush the first axis with the mouse: the runs inside become the selection everywhere.
    _brush_first_axis(driver)
    _wait(driver, lambda d: "inside the brushed ranges" in _text(d, "sp-brushed"))
    brushed = int(_text(driver, "sp-brushed").split()[0])
    assert 0 < brushed < 2 * TRIALS
    _click(driver, "nav-overview")
    _wait(driver, lambda d: f"Selected runs ({brushed})" in _text(d, "ov-selected-title"))
    assert console_errors(driver) == []


def _pick(driver, dropdown_id, value):
    """Pick a dropdown value as a callback would see a person's pick (Dash's own set_props)."""
    driver.execute_script(f"window.dash_clientside.set_props('{dropdown_id}', {{value: '{value}'}})")


def test_objective_direction_follows_the_metric_and_the_choice_is_shared_in_the_url(served):
    base, driver, searches = served
    driver.get(f"{base}/?exp={searches[0].experiment_id}")
    _wait(driver, lambda d: "objective=loss" in d.current_url)  # the recorded objective, in the URL
    assert _checked(driver, "ov-objective-dir") == "min"
    _pick(driver, "ov-objective", "accuracy")
    _wait(driver, lambda d: _checked(d, "ov-objective-dir") == "max")
    _wait(driver, lambda d: "objective=accuracy" in d.current_url)
    _wait(driver, lambda d: "accuracy" in _text(d, "ov-counts"))
    # The user may still flip it afterwards.
    driver.execute_script("document.querySelector('#ov-objective-dir input[value=min]').click()")
    _wait(driver, lambda d: _checked(d, "ov-objective-dir") == "min")
    time.sleep(1)
    assert _checked(driver, "ov-objective-dir") == "min"
    # The search-space page starts from the overview's objective.
    _click(driver, "nav-space")
    _wait(driver, lambda d: "objective=accuracy" in d.current_url and _checked(d, "sp-dir") == "max", timeout=60)
    _wait(
        driver,
        lambda d: (
            "accuracy"
            in driver.execute_script(
                "const g = document.querySelector('#sp-parcoords .js-plotly-plot');"
                "return g && g.data && g.data[0] && g.data[0].dimensions ? g.data[0].dimensions.map(x => x.label) : []"
            )
        ),
        timeout=60,
    )
    assert console_errors(driver) == []


def test_foreign_sklearn_objective_is_the_test_score_maximised(served):
    base, driver, _ = served
    driver.get(f"{base}/?exp={driver.trellis_foreign['sklearn']}")
    _wait(driver, lambda d: "objective=mean_test_score" in d.current_url)
    _wait(driver, lambda d: _checked(d, "ov-objective-dir") == "max")
    _click(driver, "nav-space")
    _wait(driver, lambda d: _checked(d, "sp-dir") == "max", timeout=60)
    assert "objective=mean_test_score" in driver.current_url
    assert console_errors(driver) == []


# -- the selection: highlighted on every plot, scoped to the picker, changed only by a user's pick --------


def _overlay_runs(driver, graph_id):
    """Run ids of a figure's 'selected' overlay (the outlined points), -1 before the figure is drawn."""
    return driver.execute_script(
        f"const g = document.querySelector('#{graph_id} .js-plotly-plot');"
        "if (!g || !g._fullData) return -1;"
        "const t = g._fullData.filter(t => (t.name || '').startsWith('selected'));"
        "return t.length ? Array.from(t[0].customdata) : [];"
    )


def _parcoords(driver, script):
    return driver.execute_script(
        "const g = document.querySelector('#sp-parcoords .js-plotly-plot');"
        "if (!g || !g._fullData || !g._fullData[0] || !g._fullData[0].dimensions) return null;"
        f"const t = g._fullData[0]; {script}"
    )


def _parcoords_highlighted(driver):
    """How many lines keep their metric colour (the selected runs); the others sit on the grey step."""
    return _parcoords(driver, "return Array.from(t.line.color).filter(c => c > t.line.cmin).length;")


def _stored_selection(driver):
    return driver.execute_script("return JSON.parse(sessionStorage.getItem('selected-runs') || '[]')")


def _top_k(driver, base, exp, k):
    driver.get(f"{base}/?exp={exp}")
    _wait(driver, lambda d: _text(d, "ov-total") == ALL)
    _click(driver, "ov-clear")
    _wait(driver, lambda d: "No runs selected" in _text(d, "ov-selected-title"))
    field = driver.find_element(By.ID, "ov-k")
    field.clear()
    field.send_keys(str(k))
    _click(driver, "ov-topk")
    _wait(driver, lambda d: f"Selected runs ({k})" in _text(d, "ov-selected-title"))
    return _stored_selection(driver)


def test_top_k_is_highlighted_on_three_plots_and_the_picker_scopes_the_selection(served):
    base, driver, searches = served
    chosen = _top_k(driver, base, searches[0].experiment_id, 3)
    _wait(driver, lambda d: sorted(_overlay_runs(d, "ov-tradeoff")) == sorted(chosen))
    _wait(driver, lambda d: sorted(_overlay_runs(d, "ov-best")) == sorted(chosen))
    _click(driver, "nav-space")
    _wait(driver, lambda d: _parcoords_highlighted(d) == 3, timeout=60)
    assert _parcoords(driver, "return t.line.color.length") == 2 * TRIALS  # the others drawn grey

    # Narrow the picker to the search holding fewer of the selected runs: the others are hidden, and counted.
    _click(driver, "nav-overview")
    _wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#ov-table td[data-dash-column='search']")) == 3)
    cells = [c.text for c in driver.find_elements(By.CSS_SELECTOR, "#ov-table td[data-dash-column='search']")]
    in_tpe = sum("quad-tpe" in c for c in cells)
    narrowed, visible = (searches[1], in_tpe) if in_tpe <= 1 else (searches[0], 3 - in_tpe)
    hidden = 3 - visible
    driver.execute_script(f"window.dash_clientside.set_props('search-picker', {{value: ['{narrowed.search_id}']}})")
    _wait(driver, lambda d: _text(d, "ov-total") == str(TRIALS))
    note = f"{hidden} selected run{'s are' if hidden != 1 else ' is'} in searches not shown"
    _wait(driver, lambda d: note in _text(d, "ov-selected-title"))
    _wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#ov-table td[data-dash-column='search']")) == visible)
    assert len(_overlay_runs(driver, "ov-tradeoff")) == visible
    _click(driver, "nav-curves")
    _wait(driver, lambda d: f"{visible} selected runs" in _text(d, "cv-info") and note in _text(d, "cv-info"))
    _wait(driver, lambda d: _trace_count(d, "cv-graph") == visible)
    assert _stored_selection(driver) == chosen  # narrowing the view does not change the selection itself
    assert console_errors(driver) == []


def test_display_switches_never_change_the_selection_and_the_controls_survive_navigation(served):
    base, driver, searches = served
    chosen = _top_k(driver, base, searches[0].experiment_id, 2)
    _click(driver, "nav-space")
    _wait(driver, lambda d: _parcoords_highlighted(d) == 2, timeout=60)
    # Suggested bounds and the top-K mask are drawn as brushes; the selection stays the user's.
    driver.execute_script("document.querySelector('#sp-bands input').click()")
    topk = driver.find_element(By.ID, "sp-topk")
    topk.send_keys("5")
    _wait(driver, lambda d: _parcoords(d, "return t.dimensions[t.dimensions.length - 1].constraintrange") is not None)
    time.sleep(2)
    assert _stored_selection(driver) == chosen
    assert _parcoords_highlighted(driver) == 2

    # The user drops a parameter axis and flips the direction.
    driver.execute_script("window.dash_clientside.set_props('sp-params', {value: ['x', 'y']})")
    _wait(driver, lambda d: set(_parcoords(d, "return t.dimensions.map(x => x.label)") or []) == {"x", "y", "loss"})
    driver.execute_script("document.querySelector('#sp-dir input[value=max]').click()")
    _wait(driver, lambda d: _checked(d, "sp-dir") == "max")
    time.sleep(1)

    # Leaving the page and coming back keeps its controls.
    _click(driver, "nav-overview")
    _wait(driver, lambda d: "Selected runs (2)" in _text(d, "ov-selected-title"))
    _click(driver, "nav-space")
    _wait(driver, lambda d: _parcoords(d, "return t.line.color.length") == 2 * TRIALS, timeout=60)
    assert driver.execute_script("return document.querySelector('#sp-bands input').checked") is True
    assert driver.find_element(By.ID, "sp-topk").get_attribute("value") == "5"
    assert _parcoords(driver, "return t.dimensions[t.dimensions.length - 1].constraintrange") is not None
    assert set(_parcoords(driver, "return t.dimensions.map(x => x.label)")) == {"x", "y", "loss"}
    assert _checked(driver, "sp-dir") == "max"  # loss is recorded as minimised: the user's flip is kept

    # A user's brush selects; another 'Runs' quantile redraws with the brush still on screen and the same selection.
    driver.execute_script("document.querySelector('#sp-bands input').click()")
    driver.find_element(By.ID, "sp-topk").send_keys(Keys.BACKSPACE)
    _wait(driver, lambda d: _parcoords(d, "return t.dimensions[t.dimensions.length - 1].constraintrange") is None)
    _brush_first_axis(driver)
    _wait(driver, lambda d: "inside the brushed ranges" in _text(d, "sp-brushed"))
    brushed, label = _stored_selection(driver), _parcoords(driver, "return t.dimensions[0].label")
    assert brushed != chosen and 0 < len(brushed) < 2 * TRIALS
    driver.execute_script("window.dash_clientside.set_props('sp-quantile', {value: 0.5})")
    _wait(driver, lambda d: _parcoords(d, "return t.line.color.length") == TRIALS, timeout=60)  # the best half
    # The axes may be reordered by the new importance: the brush follows its parameter.
    assert _parcoords(driver, f"return t.dimensions.find(x => x.label === '{label}').constraintrange") is not None
    assert _stored_selection(driver) == brushed
    assert console_errors(driver) == []


def test_a_long_parameter_value_is_cut_on_its_axis(served):
    base, driver, _ = served
    driver.get(f"{base}/space?exp={driver.trellis_foreign['dirty']}")
    driver.execute_script("sessionStorage.clear()")  # a fresh session: the earlier tests' page controls gone
    driver.refresh()
    _wait(driver, lambda d: _parcoords(d, "return t.dimensions.map(x => x.label)") is not None, timeout=60)
    ticks = _parcoords(driver, "return t.dimensions.map(x => x.ticktext || [])")
    labels = [t for axis in ticks for t in axis]
    assert any(t.startswith("λ-xxx") and t.endswith("…") for t in labels)  # the 5000-character value, cut
    assert max(len(t) for t in labels) <= 24
    assert console_errors(driver) == []


def test_top_k_on_a_gridsearch_experiment_picks_the_highest_scores(served):
    base, driver, searches = served
    exp = driver.trellis_foreign["sklearn"]
    runs = MlflowClient(tracking_uri=searches[0].tracking_uri).search_runs([exp])
    scores = {r.info.run_id: r.data.metrics["mean_test_score"] for r in runs if "mean_test_score" in r.data.metrics}
    driver.get(f"{base}/?exp={exp}")
    _wait(driver, lambda d: "objective=mean_test_score" in d.current_url and _checked(d, "ov-objective-dir") == "max")
    _click(driver, "ov-clear")
    field = driver.find_element(By.ID, "ov-k")
    field.clear()
    field.send_keys("3")
    _click(driver, "ov-topk")
    _wait(driver, lambda d: "Selected runs (3)" in _text(d, "ov-selected-title"))
    chosen = _stored_selection(driver)
    assert sorted(scores[r] for r in chosen) == sorted(scores.values())[-3:]  # the three highest test scores
