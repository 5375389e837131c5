"""Analyses are plugins: one module and one row. A toy analysis added by a test shows on the Analyses page and
in ``trellis analysis`` with no other file touched; the built-in ``outcomes`` analysis against the store."""

from __future__ import annotations

import contextlib
import json
from types import SimpleNamespace

import msgpack
import pytest
from mlflow import MlflowClient
from plotly.utils import PlotlyJSONEncoder

from tests.conftest import BASE, child_runs, module_store
from tests.test_control_page import post
from trellis.app.factory import create_app
from trellis.app.pages import analyses as analyses_page
from trellis.cli import main
from trellis.search.analysis.registry import ANALYSES, Analysis, register_analysis, unregister_analysis
from trellis.search.config import parse_config
from trellis.search.engine.runner import run_search
from trellis.tracking.reader import read_runs


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A random search whose trials raise for x > 0.5."""
    folder, uri = module_store(tmp_path_factory, "analysis-plugins")
    raw = {
        **BASE,
        "name": "mixed",
        "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        "termination": {"max_trials": 8},
        "executor": {"kind": "local", "workers": 2},
        "trial": {"function": "trellis.examples.synthetic:crashy"},
        "tracking": {"uri": uri, "experiment": "mixed"},
    }
    with contextlib.chdir(folder):
        result = run_search(parse_config(raw))
    client = MlflowClient(tracking_uri=uri)
    statuses = [r.info.status for r in child_runs(client, result.search_id)]
    experiment = client.get_experiment_by_name("mixed").experiment_id
    return SimpleNamespace(folder=folder, uri=uri, search_id=result.search_id, statuses=statuses, experiment=experiment)


def test_outcomes_counts_what_the_store_says(searched):
    table = read_runs(searched.uri, [searched.experiment])
    data = ANALYSES["outcomes"].process(table, table.trials)
    (search,) = data["searches"]
    assert search["search"] == searched.search_id and search["trials"] == 8
    assert search["endings"]["failed"]["trials"] == searched.statuses.count("FAILED") > 0
    assert search["endings"]["completed"]["trials"] == searched.statuses.count("FINISHED") > 0
    assert msgpack.unpackb(msgpack.packb(data), raw=False, strict_map_key=False) == data  # plain data
    (line,) = ANALYSES["outcomes"].lines(data)
    assert f"{search['endings']['failed']['trials']}" in line and "of the time failed" in line


def _toy_process(table, trials):
    return {"runs": int(len(trials)), "best": float(trials["metrics.loss"].min())}


TOY = Analysis(
    "toy-count",
    "Toy count",
    _toy_process,
    lambda d: [{"data": [{"type": "bar", "x": ["runs"], "y": [d["runs"]]}], "layout": {"title": {"text": "toy"}}}],
    lambda d: [f"{d['runs']} runs, best loss {d['best']:.3f}"],
)


def test_a_toy_analysis_shows_on_the_page_and_in_the_cli(searched, monkeypatch, capsys):
    register_analysis(TOY)
    try:
        assert main(["analysis", "list"]) == 0
        assert "toy-count" in capsys.readouterr().out
        args = ["analysis", "show", "toy-count", "--tracking-uri", searched.uri, "--experiment", "mixed"]
        assert main(args) == 0
        assert "8 runs, best loss" in capsys.readouterr().out
        assert main([*args, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["data"]["runs"] == 8

        monkeypatch.chdir(searched.folder)
        app = create_app(searched.uri, cache=str(searched.folder / "cache"))
        client = app.server.test_client()
        assert client.get("/analyses").status_code == 200
        page = json.dumps(analyses_page.layout(app.trellis_context), cls=PlotlyJSONEncoder)
        assert '"toy-count"' in page and "Toy count" in page
        deps = json.loads(client.get("/_dash-dependencies").data)
        values = {
            "selection.data": {"experiments": [searched.experiment], "searches": []},
            "an-pick.value": "toy-count",
        }
        shown = json.dumps(post(client, deps, "an-pick.value", values, "an-lines.children"))
        assert "8 runs, best loss" in shown and '"toy"' in shown
    finally:
        unregister_analysis("toy-count")
    assert main(["analysis", "show", "toy-count", "--tracking-uri", searched.uri, "--experiment", "mixed"]) == 2
    assert "no analysis 'toy-count'" in capsys.readouterr().err


def test_an_analysis_is_computed_once_per_store_state_for_every_worker(searched, monkeypatch):
    calls = []

    def counted(table, trials):
        calls.append(1)
        return {"runs": len(trials)}

    register_analysis(Analysis("toy-counted", "Counted", counted, lambda d: [], lambda d: []))
    try:
        monkeypatch.chdir(searched.folder)
        cache = str(searched.folder / "cache-counted")
        first = create_app(searched.uri, cache=cache).trellis_context
        second = create_app(searched.uri, cache=cache).trellis_context  # another worker, the same shared cache
        assert first.analysis("toy-counted", [searched.experiment]) == {"runs": 8}
        assert second.analysis("toy-counted", [searched.experiment]) == {"runs": 8}
        assert len(calls) == 1
    finally:
        unregister_analysis("toy-counted")


def test_the_space_analysis_is_a_row_too_and_finds_the_one_parameter_that_matters(tmp_path, capsys):
    """accuracy = 1 - |log10(lr) + 3| / 4 + noise: only lr matters, its best at 1e-3 (``build_store``)."""
    from benchmarks.load_runs import build_store

    uri, _ = build_store(tmp_path / "runs.db", 300)
    args = ["analysis", "show", "space", "--tracking-uri", uri, "--experiment", "bench", "--json"]
    assert main([*args, "--input", "metric=accuracy"]) == 0
    data = json.loads(capsys.readouterr().out)["data"]
    assert data["metric"] == "accuracy" and data["direction"] == "max" and data["runs"] == 300
    (top, *rest) = data["importance"]
    assert top["name"] == "lr" and top["share"] > 0.8 and all(r["share"] < 0.1 for r in rest)
    lr = next(v for v in data["verdicts"] if v["name"] == "lr")
    assert lr["action"] == "narrow" and lr["low"] < 1e-3 < lr["high"] and lr["high"] / lr["low"] < 1e3  # of 1e4
    assert main([*args, "--input", "nope=1"]) == 2
    assert "takes no such input (it takes: metric, direction)" in capsys.readouterr().err
    text = ANALYSES["space"].lines(data)
    assert text[1].startswith("lr: ") and any(line.startswith("lr: narrow to [") for line in text)
