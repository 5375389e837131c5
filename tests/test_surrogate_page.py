"""The search-space page's prediction form, posted as the browser posts it, on a real search."""

import json
import re

import pytest

from trellis.app.factory import create_app
from trellis.layouts.space_predict import INPUT_TYPE
from trellis.search.analysis.report import analyse
from trellis.search.engine.runner import run_search
from trellis.tracking.reader import read_runs


@pytest.fixture
def page(make_config, store):
    result = run_search(make_config(termination={"max_trials": 40}))
    table = read_runs(store, [result.experiment_id])
    refined = analyse(table, table.trials, "loss", "min").refined_yaml
    client = create_app(store).server.test_client()
    selection = {"experiments": [result.experiment_id], "searches": []}
    analysed = [
        {"id": "selection", "property": "data", "value": selection},
        {"id": "sp-metric", "property": "value", "value": "loss"},
        {"id": "sp-dir", "property": "value", "value": "min"},
        {"id": "sp-params", "property": "value", "value": None},
        {"id": "sp-quantile", "property": "value", "value": 1.0},
        {"id": "sp-budget", "property": "value", "value": "auto"},
    ]
    return client, analysed, refined


def _predict(client, analysed, config: dict) -> tuple[int, str]:
    inputs = [{"id": {"name": n, "type": INPUT_TYPE}, "property": "value", "value": v} for n, v in config.items()]
    body = {
        "output": "sp-predict-out.children",
        "outputs": {"id": "sp-predict-out", "property": "children"},
        "inputs": [{"id": "sp-predict-go", "property": "n_clicks", "value": 1}],
        "state": [inputs, *analysed],
        "changedPropIds": ["sp-predict-go.n_clicks"],
    }
    response = client.post("/_dash-update-component", json=body)
    ok = response.status_code == 200
    return response.status_code, json.dumps(response.get_json(), ensure_ascii=False) if ok else response.data


def test_the_form_is_prefilled_and_predicts_with_a_std(page):
    client, analysed, refined = page
    body = {
        "output": "..sp-predict-inputs.children...sp-refined-prediction.children..",
        "outputs": [
            {"id": "sp-predict-inputs", "property": "children"},
            {"id": "sp-refined-prediction", "property": "children"},
        ],
        "inputs": [{"id": "sp-yaml", "property": "children", "value": refined}],
        "state": analysed,
        "changedPropIds": ["sp-yaml.children"],
    }
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200
    answer = response.get_json()["response"]
    form = json.dumps(answer["sp-predict-inputs"]["children"])
    assert all(f'"name": "{n}"' in form for n in ("x", "y", "shape"))  # one input per parameter
    line = answer["sp-refined-prediction"]["children"]
    if "No refined space" not in refined:
        assert line.startswith("refined space: predicted loss median ") and "vs original" in line

    status, near = _predict(client, analysed, {"x": "0.3", "y": "-0.5", "shape": "bowl"})
    assert status == 200
    found = re.search(r"predicted loss: ([-\d.e]+) ± ([\d.e]+)", near)
    status, far = _predict(client, analysed, {"x": "1", "y": "1", "shape": "flat"})
    other = re.search(r"predicted loss: ([-\d.e]+) ± ([\d.e]+)", far)
    assert found and other and float(found[2]) > 0, (near, far)
    assert float(found[1]) < float(other[1])  # the known optimum predicts better than a far corner

    status, bad = _predict(client, analysed, {"x": "abc", "y": "0", "shape": "bowl"})
    assert status == 200 and "x: 'abc' is not a number" in bad
