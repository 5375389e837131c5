"""The exploration page's pure functions on searches the engine really ran (one per algorithm) and on plain
MLflow runs, checked against MLflow's own record (tags, metric histories) and scipy; then the page itself."""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from scipy.stats import spearmanr

from tests.conftest import module_store
from tests.foreign import flat_runs
from trellis.layouts.exploration import _get_history_plot, _paths
from trellis.layouts.exploration import decode32 as decode
from trellis.search.analysis.exploration import running_best, spearman, spread_categorical
from trellis.search.analysis.exploration_load import load_page
from trellis.search.analysis.exploration_tree import MDS_LIMIT, _get_projection_info, ancestors
from trellis.search.config import parse_config
from trellis.search.engine.runner import run_search
from trellis.search.registry import BRACKETED
from trellis.tracking import schema
from trellis.tracking.reader import read_runs

QUADRATIC = {"function": "trellis.examples.synthetic:quadratic"}
SEARCHES = {
    "random": dict(
        space={"x": {"low": 0.0, "high": 0.9}, "shape": {"choices": ["bowl", "ridge"]}},
        budget={"max": 9},
        termination={"max_trials": 12},
        early_stopping={"rule": "median", "step": 3, "min_trials": 3},
        executor={"workers": 1},
    ),
    "grid": dict(
        algorithm={"name": "grid", "points": 2},
        space={"x": {"low": -1.0, "high": 1.0}, "shape": {"choices": ["bowl", "ridge", "flat"]}},
        budget={"max": 2},
        termination={},
    ),
    "tpe": dict(
        algorithm={"name": "tpe", "seed": 1, "n_startup_trials": 4},
        space={"x": {"low": -1.0, "high": 1.0}, "lr": {"low": 1e-4, "high": 1.0, "log": True}},
        budget={"max": 2},
        termination={"max_trials": 8},
    ),
    "hyperband": dict(
        algorithm={"name": "hyperband", "eta": 3, "seed": 3},
        budget={"min": 1, "max": 9},
        space={"x": {"low": -1.0, "high": 1.0}, "c": {"choices": ["a", "b"]}},
        termination={},
        trial={"function": "trellis.examples.synthetic:resumable"},
    ),
    "bohb": dict(
        algorithm={"name": "bohb", "eta": 3, "seed": 2},
        budget={"min": 1, "max": 9},
        space={"x": {"low": -1.0, "high": 1.0}},
        termination={},
        trial={"function": "trellis.examples.synthetic:resumable"},
    ),
    "pbt": dict(
        algorithm={"name": "pbt", "seed": 1, "population_size": 4, "interval": 2, "resample_probability": 0.0},
        objective={"metric": "score", "direction": "max"},
        budget={"min": 1, "max": 6},
        space={"lr": {"low": 1e-4, "high": 1.0, "log": True}},
        termination={},
        trial={"function": "trellis.examples.synthetic:pbt_member"},
    ),
}


def _config(name: str, uri: str, changes: dict) -> dict:
    raw = {
        "name": name,
        "objective": {"metric": "loss", "direction": "min"},
        "algorithm": {"name": "random", "seed": 0},
        "budget": {"resource": "epochs", "min": 1, "max": 3},
        "executor": {"kind": "local", "workers": 2},
        "trial": QUADRATIC,
        "tracking": {"uri": uri, "experiment": name},
    }
    return parse_config({**raw, **changes})


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """Every algorithm's search, each in its own experiment, plus plain runs: name -> (experiment, search)."""
    folder, uri = module_store(tmp_path_factory, "exploration")
    out = {}
    with contextlib.chdir(folder):
        for name, changes in SEARCHES.items():
            result = run_search(_config(name, uri, changes))
            assert result.progress.failed == 0, name
            out[name] = (result.experiment_id, result.search_id)
        out["foreign"] = (flat_runs(uri, "plain"), None)
    return uri, out


def page(uri: str, experiment: str):
    table = read_runs(uri, [experiment])
    trials = table.trials
    objective = trials["objective"].dropna().iloc[0] if trials["objective"].notna().any() else "acc"
    direction = trials["direction"].dropna().iloc[0] if trials["direction"].notna().any() else "max"
    labels = {s: s[:8] for s in trials["search_id"].unique()}
    return load_page(uri, table, trials, labels, [], objective, direction)


def runs_of(uri: str, experiment: str) -> dict[str, object]:
    client = MlflowClient(tracking_uri=uri)
    return {
        r.info.run_id: r
        for r in client.search_runs([experiment], max_results=1000)
        if r.data.tags.get(schema.TYPE) != "search"
    }


@pytest.mark.parametrize("name", [*SEARCHES, "foreign"])
def test_sampling_order_and_end_reasons_match_the_tags(ran, name):
    uri, out = ran
    experiment = out[name][0]
    info = page(uri, experiment).searches[0]
    runs = runs_of(uri, experiment)
    assert sorted(info.order.run_ids) == sorted(runs)
    if name == "foreign":
        starts = [runs[r].info.start_time for r in info.order.run_ids]
        assert starts == sorted(starts) and info.order.foreign and info.lineage.edges.empty
        assert [runs[r].info.run_name for r in info.order.run_ids] == [f"run-{i}" for i in range(4)]
    else:
        numbers = [int(runs[r].data.tags[schema.TRIAL_NUMBER]) for r in info.order.run_ids]
        assert numbers == sorted(numbers) and list(info.order.numbers) == numbers
    for row in info.ends.frame.itertuples():
        tags = runs[row.run_id].data.tags
        reason = tags.get(schema.END_REASON) or {"FINISHED": "completed"}[runs[row.run_id].info.status]
        assert row.reason == reason
        if reason in ("pruned", "early_stopped"):
            at = int(tags[schema.STOPPED_AT_RUNG])
            assert row.label == (f"pruned at rung {at}" if reason == "pruned" else f"early-stopped at step {at}")
        reached = tags.get(schema.BUDGET_REACHED)
        steps = [m.step for m in MlflowClient(tracking_uri=uri).get_metric_history(row.run_id, info.objective)]
        assert row.last_step == (int(reached) if reached else max(steps))
    expected = {
        "random": {"completed", "early_stopped"},
        "hyperband": {"completed", "pruned"},
        "bohb": {"completed", "pruned"},
        "pbt": {"completed", "exploited"},
    }.get(name, {"completed"})
    assert set(info.ends.frame["reason"]) == expected


@pytest.mark.parametrize("name", ["hyperband", "bohb"])
def test_rung_paths_join_each_trials_own_rungs(ran, name):
    uri, out = ran
    experiment = out[name][0]
    info = page(uri, experiment).searches[0]
    client = MlflowClient(tracking_uri=uri)
    frame = info.evaluations.frame
    assert info.kind == BRACKETED
    for position, run_id in enumerate(info.order.run_ids):
        rungs = sorted((m.step, m.value) for m in client.get_metric_history(run_id, schema.RUNG))
        loss = {m.step: m.value for m in client.get_metric_history(run_id, "loss")}
        mine = frame[frame["trial"] == position].sort_values("step")
        assert list(zip(mine["step"], mine["rung"], strict=True)) == rungs
        assert np.allclose(mine["value"], [loss[s] for s, _ in rungs])
        assert list(mine["x"]) == sorted(mine["x"]) and mine["x"].is_unique  # a promotion is a later iteration
        assert mine["final"].tolist() == [False] * (len(mine) - 1) + [True]
    # trials evaluated together (one rung of one bracket) share an iteration, and only they
    tags = {r: runs_of(uri, experiment)[r].data.tags for r in info.order.run_ids}
    brackets = frame["run_id"].map(lambda r: tags[r][schema.BRACKET])
    assert (frame.assign(b=brackets).groupby("x")[["b", "rung"]].nunique() == 1).all().all()
    assert frame.groupby(["rung"]).size().iloc[0] == len(info.order.run_ids) - 0  # every trial ran rung 0
    # the drawn dashed path: one segment per promoted trial, along its own rungs, at its own x value
    fig = _get_history_plot(page(uri, experiment))
    dashed = next(t for t in fig["data"] if t["meta"]["role"] == "rungs" and t["meta"]["param"] == "x")
    xs, ys = decode(dashed["x"]).astype(float), decode(dashed["y"]).astype(float)
    cuts = np.flatnonzero(np.isnan(xs))
    segments = [(a, b) for a, b in zip(np.r_[0, cuts + 1], np.r_[cuts, len(xs)], strict=True) if b > a]
    promoted = frame.groupby("trial").size()
    assert len(segments) == int((promoted > 1).sum())
    values = np.array([float(runs_of(uri, experiment)[r].data.params["x"]) for r in info.order.run_ids])
    for a, b in segments:  # a promotion keeps the configuration: a level line at one trial's value
        assert np.ptp(ys[a:b]) == 0 and np.isclose(values, ys[a], rtol=1e-6).any()
    hier = info.hierarchy
    rung0 = [v for label, v in zip(hier.labels, hier.values, strict=True) if label.startswith("rung 0")]
    assert sum(rung0) == len(info.order.run_ids)


def test_pbt_lineage_edges_generations_and_tree_match_the_tags(ran):
    uri, out = ran
    experiment = out["pbt"][0]
    info = page(uri, experiment).searches[0]
    runs = runs_of(uri, experiment)
    position = {int(runs[r].data.tags[schema.TRIAL_NUMBER]): i for i, r in enumerate(info.order.run_ids)}
    expected = {
        (
            position[int(r.data.tags[schema.PBT_PARENT])],
            position[int(r.data.tags[schema.TRIAL_NUMBER])],
            int(r.data.tags[schema.PBT_GENERATION]),
            position[int(r.data.tags[schema.PBT_REPLACED])],
        )
        for r in runs.values()
        if schema.PBT_PARENT in r.data.tags
    }
    assert len(expected) == 2
    got = set(info.lineage.edges[["parent", "child", "generation", "replaced"]].itertuples(index=False, name=None))
    assert got == expected
    for parent, child, generation, _ in expected:
        assert ancestors(info.lineage.parent_of, child)[:2] == [child, parent]
        first = info.evaluations.frame[info.evaluations.frame["trial"] == child]["x"].min()
        assert first == generation  # a child's first evaluation is the generation it was born in
    # members alive for three generations have three evaluations; the tree puts children under parents
    survivors = info.ends.frame[info.ends.frame["reason"] == "completed"]["trial"]
    counts = info.evaluations.frame.groupby("trial").size()
    assert all(counts[t] == 3 for t in survivors if t < 4)
    parent_of_node = dict(zip(info.hierarchy.ids, info.hierarchy.parents, strict=True))
    numbers = info.order.numbers
    for parent, child, _, _ in expected:
        assert parent_of_node[f"{info.label}/t{numbers[child]}"] == f"{info.label}/t{numbers[parent]}"
    fig = _get_history_plot(page(uri, experiment))
    curves = [t for t in fig["data"] if t["meta"]["role"] == "lineage"]
    assert len(curves) == 1 and np.isnan(decode(curves[0]["x"]).astype(float)).sum() == 2  # two curves, one trace
    assert fig["layout"]["meta"]["parents"][0] == info.lineage.parent_of.tolist()


@pytest.mark.parametrize("name", ["random", "hyperband", "pbt", "tpe", "foreign"])
def test_rung_correlation_matches_scipy_on_the_histories(ran, name):
    uri, out = ran
    experiment = out[name][0]
    info = page(uri, experiment).searches[0]
    client = MlflowClient(tracking_uri=uri)
    histories = {r: {m.step: m.value for m in client.get_metric_history(r, info.objective)} for r in info.order.run_ids}
    final = max(max(h) for h in histories.values())
    frame = info.correlation.frame
    assert len(frame) and info.correlation.final_step == final
    if name == "random":
        assert set(frame["step"]) == {3, 6}  # the early-stopping steps
    if name == "hyperband":
        assert set(frame["step"]) == {1, 3}  # the rungs below the final budget
    for row in frame.itertuples():
        pairs = [(h[row.step], h[final]) for h in histories.values() if row.step in h and final in h]
        assert row.n == len(pairs)
        if len(pairs) >= 3 and len({a for a, _ in pairs}) > 1:
            assert row.rho == pytest.approx(spearmanr(*zip(*pairs, strict=True)).statistic)
        else:
            assert np.isnan(row.rho)


def test_running_best_spreading_and_spearman_on_known_values():
    values = np.array([np.nan, 3.0, 1.0, 4.0, np.inf, 2.0, 5.0])
    assert np.allclose(running_best(values, "max")[1:], [3, 3, 4, 4, 4, 5])
    assert np.isnan(running_best(values, "max")[0])
    assert np.allclose(running_best(values, "min")[1:], [3, 1, 1, 1, 1, 1])
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=40), rng.normal(size=40)
    b[:10] = a[:10]
    assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic)
    assert np.isnan(spearman([1, 2], [1, 2])) and np.isnan(spearman([1, 1, 1], [1, 2, 3]))
    codes = np.array([0, 0, 0, 1, 1, 0], dtype=float)
    x = np.array([0, 0, 0, 0, 1, 2])
    keys = [f"run{i}" for i in range(6)]
    spread = spread_categorical(codes, x, keys)
    assert np.array_equal(spread, spread_categorical(codes, x, keys))  # deterministic
    assert np.all(np.abs(spread - codes) < 0.36)
    assert len(set(spread[:3])) == 3  # three trials at one iteration and category do not overlap
    assert spread[4] != spread_categorical(codes, x, ["other"] * 6)[4]  # a lone point's jitter is its own


def test_projection_uses_mds_for_few_and_pca_for_many_configurations():
    rng = np.random.default_rng(0)
    few = rng.random((40, 3))
    info = _get_projection_info(few)
    assert info.method == "MDS" and info.x.shape == (40,)
    # MDS keeps neighbours: the nearest point in 3-D is among the 5 nearest in 2-D for most points
    d3 = np.linalg.norm(few[:, None] - few[None], axis=2) + np.eye(40) * 9
    p = np.column_stack([info.x, info.y])
    d2 = np.linalg.norm(p[:, None] - p[None], axis=2) + np.eye(40) * 9
    kept = np.mean([d3[i].argmin() in np.argsort(d2[i])[:5] for i in range(40)])
    assert kept > 0.7
    many = _get_projection_info(rng.random((MDS_LIMIT + 10, 4)))
    assert many.method == "PCA" and "PCA" in many.note and len(many.x) == MDS_LIMIT + 10


def test_paths_join_only_points_of_one_trial():
    xs, ys = _paths(np.array([0, 1, 0, 2, 5]), np.array([1.0, 1.0, 2.0, 2.0, 3.0]), np.array([0, 0, 1, 1, 2]))
    segments = [s for s in np.split(np.arange(len(xs)), np.flatnonzero(np.isnan(xs))) if len(s)]
    assert len(segments) == 2 and np.isnan(xs).sum() == 1  # trial 2 has one point: no line
    assert list(ys[~np.isnan(ys)]) == [1.0, 1.0, 2.0, 2.0]


def test_the_page_renders_every_algorithm_side_by_side_and_bad_urls_are_refused(ran):
    from trellis.app.factory import create_app
    from trellis.app.pages.exploration import render_exploration

    uri, out = ran
    app = create_app(uri)
    client = app.server.test_client()
    for name, (experiment, _) in out.items():
        assert client.get(f"/exploration?exp={experiment}").status_code == 200, name
    assert client.get("/exploration?exp=abc").status_code == 400
    assert client.get("/exploration?exp=99999").status_code == 404
    assert client.get("/exploration?exp=1&search=../../x").status_code == 400
    context = app.trellis_context
    experiments = [out["bohb"][0], out["hyperband"][0]]
    view = context.view(experiments)
    info = load_page(uri, view.table, view.trials, view.labels, [out["bohb"][1], out["hyperband"][1]], "loss", "min")
    assert [s.search_id for s in info.searches] == [out["bohb"][1], out["hyperband"][1]]
    figures = render_exploration(info)
    assert all(isinstance(json.dumps(f), str) for f in figures)
    history = figures[1]
    columns = {t["meta"]["col"] for t in history["data"] if t.get("meta", {}).get("role") == "eval"}
    assert columns == {0, 1}
    roles = pd.Series([t["meta"]["role"] for t in history["data"]]).value_counts()
    assert roles["highlight"] == roles["eval"]  # one highlight trace per small plot


def test_a_search_without_rungs_yet_merges_its_values(store):
    """A BOHB search just started: the objective logged, no rung metric yet. The empty rungs read must still
    merge with the values on run_id (it came back as a float column and the page answered 500)."""
    from mlflow import MlflowClient

    from trellis.tracking.evaluations import read_lineage, read_values_at

    client = MlflowClient(tracking_uri=store)
    exp = client.create_experiment("fresh")
    run = client.create_run(exp).info.run_id
    client.log_metric(run, "loss", 0.5, step=1)
    rungs = read_lineage(store, [exp], [run], "loss").rungs
    values = read_values_at(store, [exp], [run], "loss", [1])
    assert rungs.empty and len(values) == 1
    assert not pd.api.types.is_float_dtype(rungs["run_id"])  # an empty read keeps run_id as text
    assert rungs.merge(values, on=["run_id", "step"], how="left").empty
    assert values.merge(rungs, on=["run_id", "step"], how="left")["rung"].isna().all()


def test_rows_are_the_parameters_each_search_varied_and_every_row_is_named(ran):
    """No row for a constant (a fixed value), none without a name (the PBT page had one): issue 25."""
    uri, out = ran
    for name, (experiment, _) in out.items():
        if name == "foreign":
            continue
        info = page(uri, experiment)
        table = read_runs(uri, [experiment])
        varied = [p for p in table.params if table.trials[f"params.{p}"].dropna().astype(str).nunique() > 1]
        assert info.params and all(isinstance(p, str) and p for p in info.params), (name, info.params)
        assert sorted(info.params) == sorted(varied), (name, info.params)
        for search in info.searches:
            assert [a.name for a in search.params] == [p for p in info.params if p in [a.name for a in search.params]]


def test_the_rung_correlation_axis_is_in_budget_order_across_searches(ran):
    from trellis.layouts.exploration_views import _get_correlation_plot

    uri, out = ran
    table = read_runs(uri, [out["hyperband"][0], out["bohb"][0]])
    trials = table.trials
    labels = {s: s[:8] for s in trials["search_id"].unique()}
    info = load_page(uri, table, trials, labels, [], "loss", "min")
    fig = _get_correlation_plot(info)
    order = fig["layout"]["xaxis"]["categoryarray"]
    steps = {}
    for search in info.searches:
        frame = search.correlation.frame
        steps.update({str(lab): float(st) for lab, st in zip(frame["label"], frame["step"], strict=True)})
    assert order and [steps[label] for label in order] == sorted(steps[label] for label in order)


def test_the_rows_of_a_column_share_its_x_range():
    """A PBT history's rows (one per parameter) place a generation at one x in every row."""
    from trellis.layouts.exploration import _apply_axes, _grid

    fig = {"layout": {}}
    _apply_axes(fig, _grid(3, 2), {}, {})
    layout = fig["layout"]
    top = {c: layout["xaxis" + _grid(3, 2)[(0, c)]["x"][1:]] for c in range(2)}
    assert all("matches" not in axis for axis in top.values())
    for (r, c), cell in _grid(3, 2).items():
        if r:
            assert layout["xaxis" + cell["x"][1:]]["matches"] == _grid(3, 2)[(0, c)]["x"]
