"""Suggested bounds on runs with a known optimum, read back from a real MLflow store."""

import contextlib

import numpy as np
import pytest
import yaml

from tests.conftest import module_store
from trellis.search.analysis.bounds import suggest_bounds
from trellis.search.analysis.design import prepare
from trellis.search.analysis.refine import prior_from_verdicts, refined_space
from trellis.search.analysis.report import analyse
from trellis.search.config import parse_config
from trellis.search.engine.runner import run_search
from trellis.tracking.reader import read_runs, recorded_spaces, spaces_of


@pytest.fixture(scope="module")
def quadratic_runs(tmp_path_factory):
    """A random search over the synthetic quadratic (optimum x=0.3, y=-0.5, shape=bowl), plus a noise dim."""
    tmp, uri = module_store(tmp_path_factory, "bounds")
    with contextlib.chdir(tmp):
        config = parse_config(
            {
                "name": "quad",
                "objective": {"metric": "loss", "direction": "min"},
                "space": {
                    "x": {"low": -1.0, "high": 1.0},
                    "y": {"low": -1.0, "high": 1.0},
                    "shape": {"choices": ["bowl", "ridge", "flat"]},
                    "units": {"low": 1, "high": 64, "log": True},
                },
                "algorithm": {"name": "random", "seed": 5},
                "budget": {"max": 1},
                "termination": {"max_trials": 300},
                "executor": {"workers": 2},
                "trial": {"function": "trellis.examples.synthetic:quadratic"},
                "tracking": {"uri": uri, "experiment": "quad"},
            }
        )
        result = run_search(config)
    table = read_runs(uri, [result.experiment_id])
    return table, config


def test_known_optimum_is_inside_the_suggested_bounds(quadratic_runs):
    table, _ = quadratic_runs
    data = prepare(table, table.trials, "loss", "min")
    assert {a.name for a in data.axes} == {"x", "y", "shape", "units"}
    assert data.axis("units").log and data.axis("x").low == -1.0  # bounds from the recorded space
    bounds = suggest_bounds(data, seed=0)
    (xl, xh), (yl, yh) = bounds.ranges["x"], bounds.ranges["y"]
    assert xl <= 0.3 <= xh and yl <= -0.5 <= yh
    assert xh - xl < 1.0 and yh - yl < 1.0  # tighter than the searched range of width 2
    assert "bowl" in bounds.categories["shape"]  # at the optimum the distance is 0: shape does not matter there
    assert bounds.r2 is not None and bounds.r2 > 0.5 and bounds.n_runs == 300


def test_refined_space_is_a_valid_search_config(quadratic_runs):
    table, config = quadratic_runs
    data = prepare(table, table.trials, "loss", "min")
    verdicts = analyse(table, table.trials, "loss", "min").verdicts
    space, _ = refined_space(verdicts, data, recorded_spaces(table.runs))
    assert verdicts["units"].action == "fix"  # the noise dimension: fixed at the best run's whole number
    assert space["units"]["type"] == "fixed" and isinstance(space["units"]["value"], int)
    text = yaml.safe_dump({"space": space})
    refined = parse_config({**config.to_dict(), "space": yaml.safe_load(text)["space"]})
    assert verdicts["x"].action == "narrow"
    assert refined.space["x"].low == pytest.approx(verdicts["x"].low, rel=1e-5)


def test_best_quantile_and_missing_metric(quadratic_runs):
    table, _ = quadratic_runs
    data = prepare(table, table.trials, "loss", "min", best_quantile=0.25)
    assert len(data.y) == pytest.approx(75, abs=2) and data.notes["runs outside the best quantile"] > 200
    assert np.all(data.y <= np.quantile(table.trials["metrics.loss"], 0.26))
    with pytest.raises(ValueError, match="no metric 'nope'"):
        prepare(table, table.trials, "nope", "min")


def test_cli_gives_the_same_numbers_as_the_library(quadratic_runs, capsys):
    import json

    from trellis.cli import main
    from trellis.search.analysis.fanova import FastFANOVA

    table, config = quadratic_runs
    uri = config.tracking.uri
    assert (
        main(["importance", "--tracking-uri", uri, "--experiment", "quad", "--metric", "loss", "--pairs", "--json"])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    data = prepare(table, table.trials, "loss", "min")
    imp = FastFANOVA(data.X, data.y, data.names, n_trees=64, seed=0).importance()
    assert out["direction"] == "min" and out["runs"] == 300
    for name in data.names:
        assert out["singles"][name]["mean"] == pytest.approx(imp.single_mean[name])
    assert len(out["pairs"]) == 6
    # x and y drive the loss; units (a log int that the function ignores) does not.
    assert out["singles"]["units"]["mean"] < 0.05 < out["singles"]["x"]["mean"]

    assert main(["bounds", "--tracking-uri", uri, "--experiment", "quad", "--metric", "loss"]) == 0
    text = capsys.readouterr().out
    assert "R^2" in text
    space = yaml.safe_load(text)["space"]
    page = analyse(table, table.trials, "loss", "min")  # what the search-space page shows for these runs
    assert space["x"]["low"] == page.verdicts["x"].low and "  # narrow: x: the region" in text
    assert main(["bounds", "--tracking-uri", uri, "--experiment", "quad", "--metric", "loss", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verdicts"] == {n: v.to_plain() for n, v in page.verdicts.items()}  # one story, page and CLI
    # --prior: the control page's default relaunch (the same prior_from_verdicts), loadable as a config's sections.
    assert main(["bounds", "--tracking-uri", uri, "--experiment", "quad", "--metric", "loss", "--prior"]) == 0
    sections = yaml.safe_load(capsys.readouterr().out)
    _, _, expected = prior_from_verdicts(page.verdicts, page.data, spaces_of(table))
    assert sections["prior"] == expected == out["prior"]["prior"] and expected["parameters"]["x"]["weight"] > 0
    assert sections["space"]["x"] == {"type": "float", "low": -1.0, "high": 1.0, "log": False}  # kept, not cut
    with pytest.raises(SystemExit, match="no experiment 'nope'"):
        main(["bounds", "--tracking-uri", uri, "--experiment", "nope", "--metric", "loss"])


def test_cli_importance_takes_the_pages_sample(quadratic_runs, capsys):
    """Past ``--max-runs`` (the page's 4000 by default) the CLI fits the same seeded sample as the search-space
    page, says how many runs it left out, and gives the page's numbers."""
    import json

    from trellis.cli import main

    table, config = quadratic_runs
    args = ["importance", "--tracking-uri", config.tracking.uri, "--experiment", "quad", "--metric", "loss"]
    assert main([*args, "--json", "--max-runs", "120"]) == 0
    out = json.loads(capsys.readouterr().out)
    page = analyse(table, table.trials, "loss", "min", max_runs=120)
    assert out["runs"] == 120 and out["notes"]["runs not in the 120-run sample the forests are fitted on"] == 180
    for name, single in out["singles"].items():
        assert single["mean"] == pytest.approx(page.importance.single_mean[name])
    assert main([*args, "--json", "--max-runs", "0"]) == 0  # 0: every run
    assert json.loads(capsys.readouterr().out)["runs"] == 300
