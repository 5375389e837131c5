"""Searches with several objectives (issue 27): TPE and NSGA-II optimise both, every trial logs every
objective, trials get their Pareto rank, ``trellis pareto`` gives the brute-force front, algorithms that rank
by one value are refused, and a resumed search goes on."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml
from mlflow import MlflowClient

from tests.conftest import BASE, child_runs
from tests.test_pareto import brute_force_front
from trellis.search.config import ConfigError, parse_config
from trellis.search.engine.resume import recorded_config
from trellis.search.engine.runner import SearchRunner, run_search
from trellis.tracking import schema

OBJECTIVES = [{"metric": "f1", "direction": "min"}, {"metric": "f2", "direction": "min"}]
SPACE = {f"x{i}": {"type": "float", "low": 0.0, "high": 1.0} for i in range(1, 4)}


def _raw(store: str, algorithm: dict, trials: int = 24, **changes) -> dict:
    return {**BASE, "objective": OBJECTIVES, "space": SPACE, "algorithm": algorithm, "budget": {"min": 1, "max": 2},
            "termination": {"max_trials": trials}, "trial": {"function": "trellis.examples.synthetic:zdt1"},
            "tracking": {"uri": store, "experiment": "mo"}, **changes}  # fmt: skip


def _values(runs) -> np.ndarray:
    return np.array([[r.data.metrics["f1"], r.data.metrics["f2"]] for r in runs])


@pytest.mark.parametrize("algorithm", [{"name": "tpe", "seed": 1, "n_startup_trials": 8},
                                       {"name": "nsga2", "seed": 1, "population_size": 8},
                                       {"name": "random", "seed": 1}])  # fmt: skip
def test_a_two_objective_search_logs_both_and_ranks_its_trials(store, algorithm):
    config = parse_config(_raw(store, algorithm))
    assert [o.metric for o in config.objectives] == ["f1", "f2"] and config.objective.metric == "f1"
    assert parse_config(config.to_dict()).objectives == config.objectives  # stored and read back alike
    result = run_search(config)
    assert result.state == "completed" and result.progress.completed == 24
    client = MlflowClient(store)
    runs = child_runs(client, result.search_id)
    values = _values(runs)
    front = brute_force_front(values, ["min", "min"])
    ranks = np.array([int(r.data.tags[schema.PARETO_RANK]) for r in runs])
    assert np.array_equal(ranks == 1, front)
    assert ranks.min() == 1 and all(ranks[~front] > 1)
    search = client.get_run(result.search_id)
    assert json.loads(search.data.tags[schema.OBJECTIVES]) == OBJECTIVES
    assert int(search.data.tags[schema.PARETO_SIZE]) == front.sum()


def test_tpe_is_told_every_objective(store):
    from trellis.search.engine.build import make_sampler

    config = parse_config(_raw(store, {"name": "tpe", "seed": 0, "n_startup_trials": 4}, trials=6))
    sampler = make_sampler(config)
    assert [d.name for d in sampler.study.directions] == ["MINIMIZE", "MINIMIZE"]
    params = sampler.propose(0)
    sampler.observe_values(0, params, [0.2, 0.7], "completed")
    assert sampler.study.trials[0].values == [0.2, 0.7]


def test_the_pareto_command_gives_the_brute_force_front_and_the_hypervolume(store, tmp_path):
    result = run_search(parse_config(_raw(store, {"name": "random", "seed": 3}, trials=30)))
    runs = child_runs(MlflowClient(store), result.search_id)
    values = _values(runs)
    front = {r.info.run_id for r, on in zip(runs, brute_force_front(values, ["min", "min"]), strict=True) if on}
    cmd = [sys.executable, "-P", "-m", "trellis.cli", "pareto", "--tracking-uri", store, "--experiment", "mo"]
    done = subprocess.run([*cmd, "--json"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert [o["metric"] for o in out["objectives"]] == ["f1", "f2"]
    assert {p["run_id"] for p in out["pareto"]} == front
    worst = values.max(axis=0)
    assert all(r > w for r, w in zip(out["reference"], worst, strict=True)) and out["hypervolume"] > 0
    given = subprocess.run([*cmd, "--json", "--reference", "2,12"], capture_output=True, text=True, timeout=120,
                           cwd=tmp_path)  # fmt: skip
    hv = json.loads(given.stdout)["hypervolume"]
    # by hand: the staircase of the front against (2, 12)
    pts = sorted((float(a), float(b)) for a, b in values[brute_force_front(values, ["min", "min"])])
    area, best = 0.0, 12.0
    for i, (a, b) in enumerate(pts):
        best = min(best, b)
        right = pts[i + 1][0] if i + 1 < len(pts) else 2.0
        area += (right - a) * (12.0 - best)
    assert hv == pytest.approx(area)
    text = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path).stdout
    assert f"{len(front)} non-dominated of 30 finished trials" in text and "hypervolume" in text


@pytest.mark.parametrize("algorithm", ["hyperband", "pbt"])
def test_an_algorithm_that_ranks_by_one_value_is_refused_with_several_objectives(store, algorithm):
    with pytest.raises(ConfigError) as caught:
        parse_config(_raw(store, {"name": algorithm}, termination={}))
    ((path, reason),) = [p for p in caught.value.problems if p[0] == "algorithm.name"]
    assert f"{algorithm} ranks trials by one value" in reason and "tpe" in reason and "nsga2" in reason


def test_objective_lists_are_checked_item_by_item(store):
    with pytest.raises(ConfigError) as caught:
        parse_config(_raw(store, {"name": "tpe"}, objective=[{"metric": "f1"}, {"metric": "f1", "direction": "up"}]))
    paths = dict(caught.value.problems)
    assert "objective[1].direction" in paths and "already objective[0]" in paths["objective[1].metric"]


def test_a_trial_missing_an_objective_fails_saying_which(store):
    raw = _raw(store, {"name": "random", "seed": 0}, trials=2,
               objective=[*OBJECTIVES, {"metric": "never_logged", "direction": "max"}])  # fmt: skip
    result = run_search(parse_config(raw))
    runs = child_runs(MlflowClient(store), result.search_id)
    assert all(r.info.status == "FAILED" and "'never_logged' was never reported" in r.data.tags[schema.ERROR]
               for r in runs)  # fmt: skip


def test_a_resumed_multi_objective_search_goes_on_and_tells_tpe_the_past(store):
    from tests.test_resume import interrupt_after

    config = parse_config(_raw(store, {"name": "tpe", "seed": 2, "n_startup_trials": 4}, trials=12))
    interrupted = SearchRunner(config, on_progress=interrupt_after(5)).run()
    assert interrupted.state == "killed"
    runner = SearchRunner(recorded_config(MlflowClient(store), interrupted.search_id), resume=interrupted.search_id)
    result = runner.run()
    assert result.state == "completed"
    runs = child_runs(MlflowClient(store), interrupted.search_id)
    finished = [r for r in runs if r.data.tags[schema.END_REASON] == "completed"]
    assert len(finished) == 12
    told = [t for t in runner.sampler.study.trials if t.values is not None]
    assert len(told) == 12 and all(len(t.values) == 2 for t in told)
    assert all(schema.PARETO_RANK in r.data.tags for r in finished)


def test_the_pareto_analysis_row_draws_the_front_and_each_searchs_hypervolume(store):
    from trellis.search.analysis.registry import ANALYSES, run_analysis
    from trellis.tracking.reader import read_runs

    for seed in (1, 2):
        run_search(parse_config(_raw(store, {"name": "random", "seed": seed}, trials=10)))
    experiment = MlflowClient(store).get_experiment_by_name("mo").experiment_id
    table = read_runs(store, [experiment])
    data = run_analysis("pareto", table, table.trials)
    assert data["problem"] is None and len(data["searches"]) == 2 and data["trials"] == 20
    for search in data["searches"]:
        curve = [hv for _, hv in search["hypervolume"]]
        assert curve == sorted(curve)  # a hypervolume never shrinks as trials are added
    figures = ANALYSES["pareto"].figures(data)
    assert len(figures) == 3 and figures[2]["layout"]["barmode"] == "group"  # front, hypervolume, importance
    assert set(data["importance"]) == {"f1 (min)", "f2 (min)", "hypervolume contribution"}
    assert "non-dominated of 20 finished trials" in ANALYSES["pareto"].lines(data)[0]
    yaml.safe_dump(data)  # plain data


def test_the_pareto_region_is_where_the_known_front_lies_and_the_runs_table_ranks(store):
    """ZDT1's front needs x2 = x3 = 0: the non-dominated trials lean to the low end of x2 and x3 while x1
    spans much of its range; the overview's runs table shows each trial's Pareto rank."""
    from trellis.layouts.overview import selected_rows
    from trellis.search.analysis.registry import run_analysis
    from trellis.tracking.reader import read_runs

    run_search(parse_config(_raw(store, {"name": "random", "seed": 4}, trials=120)))  # uniform: the front stands out
    experiment = MlflowClient(store).get_experiment_by_name("mo").experiment_id
    table = read_runs(store, [experiment])
    region = run_analysis("pareto", table, table.trials)["region"]
    assert region["x1"]["share"] > 0.4  # the front spans f1 = x1
    for name in ("x2", "x3"):  # ... and leans to x2 = x3 = 0
        assert region[name]["median"] < 0.75 * region[name]["median_all"], region[name]
    ids = table.trials["run_id"].tolist()
    rows, columns = selected_rows(table.runs, ids, [], ["f1", "f2"], lambda r: "http://x")
    assert {"name": "Pareto rank", "id": "pareto_rank", "type": "numeric"} in columns
    ranks = {row["run_id"]: row["pareto_rank"] for row in rows}
    front = brute_force_front(table.trials[["metrics.f1", "metrics.f2"]].to_numpy(), ["min", "min"])
    assert {r for r, on in zip(ids, front, strict=True) if on} == {r for r, k in ranks.items() if k == 1}


def test_a_threshold_per_objective_stops_the_search_once_one_trial_meets_them_all(store):
    raw = _raw(store, {"name": "random", "seed": 5}, trials=200, termination={"max_trials": 200,
               "threshold": [0.5, 3.0]}, executor={"kind": "local", "workers": 1})  # fmt: skip
    config = parse_config(raw)
    assert config.termination.threshold == (0.5, 3.0)
    assert parse_config(config.to_dict()).termination.threshold == (0.5, 3.0)
    result = run_search(config)
    assert result.stop_reason == "threshold" and result.progress.started < 200
    runs = child_runs(MlflowClient(store), result.search_id)
    met = [r for r in runs if r.data.metrics["f1"] <= 0.5 and r.data.metrics["f2"] <= 3.0]
    assert met and int(met[0].data.tags[schema.TRIAL_NUMBER]) >= max(int(r.data.tags[schema.TRIAL_NUMBER])
                                                                     for r in runs) - 1  # fmt: skip
    with pytest.raises(ConfigError, match="one value per objective"):
        parse_config({**raw, "termination": {"max_trials": 5, "threshold": 0.5}})


def test_a_relaunch_from_the_control_page_keeps_the_objectives(store):
    from trellis.search.control.relaunch import config_from_form, form_from_config

    parent = parse_config(_raw(store, {"name": "nsga2", "seed": 1, "population_size": 8})).to_dict()
    form = form_from_config(parent)
    raw, problems = config_from_form(parent, form, "p" * 32, new_seed=7)
    assert problems == []
    child = parse_config(raw)
    assert [(o.metric, o.direction) for o in child.objectives] == [("f1", "min"), ("f2", "min")]
    assert child.algorithm.name == "nsga2" and child.relaunched_from == "p" * 32
    form["algorithm"] = {"name": "hyperband", "settings": {}}
    raw, _ = config_from_form(parent, form, "p" * 32, new_seed=7)
    with pytest.raises(ConfigError, match="ranks trials by one value"):
        parse_config(raw)


def test_three_objectives_get_a_scatter_matrix_and_parallel_coordinates_by_pareto_rank(store):
    from trellis.search.analysis.registry import ANALYSES, run_analysis
    from trellis.tracking.reader import read_runs

    objectives = [*OBJECTIVES, {"metric": "x3", "direction": "max"}]
    run_search(parse_config(_raw(store, {"name": "random", "seed": 6}, trials=30, objective=objectives,
                                 trial={"function": "trellis.examples.synthetic:zdt1_with_x3"})))  # fmt: skip
    experiment = MlflowClient(store).get_experiment_by_name("mo").experiment_id
    table = read_runs(store, [experiment])
    data = run_analysis("pareto", table, table.trials)
    figures = ANALYSES["pareto"].figures(data)
    splom, lines = figures[2]["data"][0], figures[3]["data"][0]
    assert splom["type"] == "splom" and [d["label"] for d in splom["dimensions"]] == ["f1", "f2", "x3"]
    values = np.array(data["points"]["values"])
    front = brute_force_front(values, ["min", "min", "max"])
    assert [c == "#D55E00" for c in splom["marker"]["color"]] == front.tolist()
    assert lines["type"] == "parcoords" and lines["line"]["color"] == data["points"]["rank"]
    assert (np.array(data["points"]["rank"]) == 1).tolist() == front.tolist()
