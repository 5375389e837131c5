"""The model overview (issue 17): its pure parts against known truths, then the page's callbacks on a real
architecture search, an ablation launched from the page and trained by a real agent."""

from __future__ import annotations

import contextlib
import copy
import json
import re
import time
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from mlflow import MlflowClient

from tests.conftest import ROOT, module_store
from tests.test_control_page import post
from trellis.search.analysis.model_inspection import _get_inspection_info, class_accuracy, prediction_map
from trellis.search.analysis.models import (
    _get_models_info,
    architecture_param,
    children_of,
    pareto_front,
    structural_map,
)
from trellis.search.architectures.layers import parse_architecture
from trellis.search.config import ConfigError, parse_config
from trellis.search.control.model_children import ChildrenError, allowed_changes, children_config
from trellis.tracking import schema
from trellis.tracking.predictions import parse_predictions
from trellis.tracking.reader import read_runs

CONFIG = yaml.safe_load((ROOT / "examples/configs/arch_digits.yaml").read_text())
A = '[["conv",8,3],["relu"],["pool",2],["dense",32],["relu"]]'


# -- pure parts -------------------------------------------------------------------------------------------


def test_pareto_front_keeps_exactly_the_undominated_models():
    score = np.array([0.9, 0.8, 0.95, 0.7, 0.9])
    size = np.array([10.0, 5.0, 100.0, 50.0, 20.0])
    assert pareto_front(score, size, "max").tolist() == [True, True, True, False, False]
    # Minimised: the lowest loss for its size.
    assert pareto_front(-score, size, "min").tolist() == [True, True, True, False, False]


def test_children_are_placed_without_moving_the_models_already_drawn():
    roots = [parse_architecture(t) for t in (A, '[["dense",64],["relu"]]', '[["conv",4,5],["tanh"],["dense",16]]')]
    child = roots[0].replace(1, None)
    twin = roots[1]  # a child equal to a drawn model lands on it
    score = np.array([0.9, 0.8, 0.7, 0.85, 0.8])
    alone = structural_map(roots, np.zeros(3, dtype=bool), score[:3], "max")
    both = structural_map([*roots, child, twin], np.array([False] * 3 + [True] * 2), score, "max")
    assert np.allclose(both[:3], alone)
    assert np.allclose(both[4], both[1], atol=1e-6)
    assert not np.allclose(both[3], both[0])  # one edit away: near, not on it


def test_origin_in_a_config_is_checked_key_by_key():
    base = {**copy.deepcopy(CONFIG), "tracking": {"uri": "sqlite:///unused.db"}}
    bad = [
        ({"model": "r", "kind": "mutation", "changes": {A: "x"}}, "origin.kind"),
        ({"kind": "ablation", "changes": {A: "x"}}, "origin.model"),
        ({"model": "r", "kind": "ablation", "param": "lr2", "changes": {A: "x"}}, "origin.param"),
        ({"model": "r", "kind": "ablation", "changes": {}}, "origin.changes"),
        ({"model": "r", "kind": "ablation", "changes": {A: "x"}, "colour": 1}, "origin.colour"),
    ]
    for origin, path in bad:
        with pytest.raises(ConfigError) as info:
            parse_config({**base, "origin": origin}, check_target=False)
        assert path in dict(info.value.problems), (origin, info.value.problems)
    good = parse_config({**base, "origin": {"model": "r", "kind": "ablation", "changes": {A: "removed"}}})
    assert (
        good.origin.change_of({"architecture": A}) == "removed"
        and good.origin.change_of({"architecture": "[]"}) is None
    )
    assert parse_config(good.to_dict()).origin == good.origin  # stored and read back


def test_an_ablation_config_trains_each_child_once_with_everything_else_fixed():
    parent = parse_config({**copy.deepcopy(CONFIG), "tracking": {"uri": "sqlite:///unused.db"}})
    recorded = {"architecture": A, "lr": "0.003", "optimizer": "adam", "batch_size": "64"}
    raw = children_config(parent, "f" * 32, recorded, "ablation")
    config = parse_config(raw)
    children = config.space["architecture"].choices
    assert len(children) == 5 and A not in children and len(set(children)) == 5
    assert config.algorithm.name == "grid" and config.termination.max_trials == 5
    assert config.budget.min == config.budget.max == parent.budget.max
    assert {c for _, c in config.origin.changes} == {
        f"removed {d} at {i}" for i, d in enumerate(["conv(8,3x3)", "relu", "maxpool(2)", "dense(32)", "relu"])
    }
    assert config.space["lr"].kind == "fixed" and config.space["lr"].value == 0.003
    variations = parse_config(children_config(parent, "f" * 32, recorded, "variation", n=4, seed=3))
    assert len(variations.space["architecture"].choices) == 4 and variations.origin.kind == "variation"
    with pytest.raises(ChildrenError, match="no valid ablation"):
        children_config(parent, "f" * 32, {**recorded, "architecture": "[]"}, "ablation")
    with pytest.raises(ChildrenError, match="kind must be"):
        children_config(parent, "f" * 32, recorded, "rewrite")


# -- the page on a real architecture search ----------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from trellis.app.factory import create_app
    from trellis.search.engine.runner import run_search

    tmp, uri = module_store(tmp_path_factory, "models")
    raw = {
        **copy.deepcopy(CONFIG),
        "budget": {"resource": "epochs", "min": 1, "max": 2},
        "termination": {"max_trials": 6},
        "executor": {"kind": "local", "workers": 1},
        "tracking": {"uri": uri, "experiment": "arch"},
    }
    raw["space"]["architecture"]["max_layers"] = 4
    with contextlib.chdir(tmp):
        search = run_search(parse_config(raw))
    app = create_app(uri, cache=None)
    http = app.server.test_client()
    deps = json.loads(http.get("/_dash-dependencies").data)
    selection = {"experiments": [search.experiment_id], "searches": []}
    return SimpleNamespace(tmp=tmp, uri=uri, search=search, http=http, deps=deps, selection=selection)


def _render(s, selected=None):
    values = {"selection.data": s.selection, "md-objective.value": "val_accuracy", "md-direction.value": "max"}
    return post(s.http, s.deps, "md-selected.data", {**values, "md-selected.data": selected}, "md-overview.figure")


def test_the_page_draws_every_model_and_its_front(served):
    table = read_runs(served.uri, [served.search.experiment_id])
    assert architecture_param(table.trials, table.params) == "architecture"
    info = _get_models_info(table.trials, table.params, "val_accuracy", "max")
    assert len(info.run_ids) == 6 and info.pareto.any()
    assert np.all(np.isfinite(info.n_params))  # recorded by the trial as n_params
    out = _render(served)
    overview = out["md-overview"]["figure"]
    assert sum(len(t.get("customdata", [])) for t in overview["data"]) == 6
    assert any(t["name"] == "Pareto front" for t in overview["data"])
    assert overview["data"][0]["marker"]["reversescale"] is True  # plotly.js' Greys reversed: better is darker
    assert "6 models (0 children)" in out["md-info"]["children"]
    assert out["md-launch"]["disabled"] is True  # nothing picked yet
    assert _get_models_info(table.trials, ["lr"], "val_accuracy", "max").startswith("No architecture parameter")


def test_pick_a_model_run_its_ablation_through_an_agent_and_see_which_layers_matter(served):

    s, client = served, MlflowClient(served.uri)
    table = read_runs(s.uri, [s.search.experiment_id])
    trials = table.trials.assign(n=table.trials["params.architecture"].map(lambda t: len(parse_architecture(t))))
    pick = str(trials[trials["n"] >= 2].sort_values("n")["run_id"].iloc[0])
    layers = parse_architecture(str(trials.set_index("run_id").loc[pick, "params.architecture"]))

    clicked = post(
        s.http, s.deps, "md-overview.clickData", {"md-overview.clickData": {"points": [{"customdata": pick}]}}
    )
    assert clicked["md-selected"]["data"] == pick
    card = _render(s, pick)
    assert card["md-launch"]["disabled"] is False and "md-glyph" in json.dumps(card["md-card"])
    assert layers.describe() in json.dumps(card["md-card"])
    name = str(table.trials.set_index("run_id").loc[pick, "run_name"])
    assert f"Model {pick[:8]} ({name})" in json.dumps(card["md-card"])  # as the curves below name it

    searches = lambda: client.search_runs([s.search.experiment_id], f"tags.`{schema.TYPE}` = 'search'")  # noqa: E731
    before = len(searches())
    launch = {"md-selected.data": "0" * 32, "md-kind.value": "ablation", "md-n.value": 3, "selection.data": s.selection}
    refused = post(s.http, s.deps, "md-launch.n_clicks", {**launch, "md-launch.n_clicks": 1})
    assert "not among the runs shown" in json.dumps(refused) and len(searches()) == before

    launched = post(s.http, s.deps, "md-launch.n_clicks", {**launch, "md-selected.data": pick, "md-launch.n_clicks": 1})
    assert "launched as search" in json.dumps(launched), launched
    child_search = next(r for r in searches() if r.data.tags.get(schema.ORIGIN_MODEL) == pick)
    assert child_search.data.tags[schema.ORIGIN_KIND] == "ablation" and child_search.info.status == "SCHEDULED"
    queued = json.dumps(_render(s, pick)["md-card"])
    assert re.search(r"0 of (\d+) children ended, \1 waiting \(scheduled\)", queued), queued

    children = _trained_by_an_agent(s, child_search.info.run_id)
    repeats = sum(1 for i in range(1, len(layers)) if layers.layers[i] == layers.layers[i - 1])
    assert len(children) == len(layers) - repeats  # one per removable layer (a repeated layer gives one child)
    assert all(c.data.tags[schema.ORIGIN_MODEL] == pick for c in children)
    assert {c.data.tags[schema.ORIGIN_CHANGE] for c in children} <= {
        f"removed {layer.describe()} at {i}" for i, layer in enumerate(layers.layers)
    }

    table = read_runs(s.uri, [s.search.experiment_id])
    info = _get_models_info(table.trials, table.params, "val_accuracy", "max")
    rows = children_of(info, pick)
    assert len(rows) == len(children) and rows == sorted(rows, key=lambda r: r.delta)
    parent_score = info.score[info.run_ids.index(pick)]
    assert all(np.isclose(r.delta, r.score - parent_score) for r in rows)
    page = _render(s, pick)
    assert "Its children" in json.dumps(page["md-card"]) and rows[0].change in json.dumps(page["md-card"])
    assert f"({len(children)} children)" in page["md-info"]["children"]
    assert f"{len(children)} of {len(children)} children ended, none waiting" in json.dumps(page["md-card"])


# -- held-out predictions -------------------------------------------------------------------------------------


def test_confusion_per_class_accuracy_and_the_prediction_map_on_known_predictions():
    labels = np.array([0, 0, 1, 1, 2, 2, 2, 2])
    predicted = np.array([0, 1, 1, 1, 2, 2, 0, 2])
    info = _get_inspection_info(predicted, labels)
    assert info.confusion.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 3]]
    assert info.per_class.tolist() == [0.5, 1.0, 0.75] and info.accuracy == 6 / 8
    perfect, wrong = labels.copy(), (labels + 1) % 3
    preds = {"a": (predicted, labels), "b": (perfect, labels), "c": (wrong, labels), "d": None, "e": (perfect, labels)}
    ids = ["a", "b", "c", "d", "e"]
    got = class_accuracy(preds, ids, 2)
    assert got[:3].tolist() == [0.75, 1.0, 0.0] and np.isnan(got[3]) and got[4] == 1.0
    children = np.array([False, False, False, False, True])
    coords, drawn = prediction_map(preds, ids, children)
    assert drawn.tolist() == [True, True, True, False, True]
    assert np.allclose(coords[4], coords[1], atol=1e-9)  # the same predictions: the same place
    alone, _ = prediction_map({k: preds[k] for k in "abc"}, ["a", "b", "c"], np.zeros(3, dtype=bool))
    assert np.allclose(coords[:3], alone)  # a child never moves the others
    # b and c disagree everywhere, a and b on two examples in eight: the map keeps that order
    dist = lambda i, j: np.linalg.norm(coords[i] - coords[j])  # noqa: E731
    assert dist(1, 2) > dist(0, 1)
    for bad in ([], {"predicted": [1, 2]}, {"predicted": [1], "labels": [1, 2]}, {"predicted": ["x"], "labels": [1]}):
        assert parse_predictions(bad) is None
    assert parse_predictions({"predicted": [1, 0], "labels": [1, 1]})[0].tolist() == [1, 0]


def test_the_page_shows_the_picked_models_predictions_and_colours_by_class(served):
    s = served
    table = read_runs(s.uri, [s.search.experiment_id])
    pick = str(table.trials["run_id"].iloc[0])
    values = {"md-selected.data": pick, "md-objective.value": "val_accuracy", "selection.data": s.selection}
    shown = post(s.http, s.deps, "md-selected.data", values, "md-confusion.figure")
    confusion = shown["md-confusion"]["figure"]["data"][0]["customdata"]
    assert len(confusion) == 10 and "held-out examples" in shown["md-inspect-note"]["children"]
    n = sum(map(sum, confusion))
    assert f"{n} held-out examples" in shown["md-inspect-note"]["children"]
    assert {t["name"] for t in shown["md-curves"]["figure"]["data"]}  # the curves of the picked run
    crafted = post(
        s.http, s.deps, "md-selected.data", {**values, "md-selected.data": "../../etc"}, "md-confusion.figure"
    )
    assert "Pick a model" in json.dumps(crafted["md-confusion"]) and crafted["md-inspect-note"]["children"] == ""

    render = {
        "selection.data": s.selection,
        "md-objective.value": "val_accuracy",
        "md-direction.value": "max",
        "md-selected.data": None,
        "md-colour.value": "3",
        "md-map-kind.value": "predictions",
    }
    out = post(s.http, s.deps, "md-colour.value", render, "md-overview.figure")
    assert [o["value"] for o in out["md-colour"]["options"]] == ["score", *map(str, range(10))]
    marker = out["md-overview"]["figure"]["data"][0]["marker"]
    assert marker["colorbar"]["title"]["text"] == "class 3"
    assert len(out["md-map"]["figure"]["data"][0]["customdata"]) == len(table.trials.drop_duplicates("run_id"))
    assert out["md-map"]["figure"]["layout"]["xaxis"]["title"]["text"] == "predictions 1"


def test_the_drawer_keeps_picks_and_drops_models(served):
    s = served
    table = read_runs(s.uri, [s.search.experiment_id])
    first, second = (str(r) for r in table.trials["run_id"].iloc[:2])
    keep = {"md-selected.data": first, "md-drawer.data": [], "md-keep.n_clicks": 1}
    drawer = post(s.http, s.deps, "md-keep.n_clicks", keep)["md-drawer"]["data"]
    drawer = post(s.http, s.deps, "md-keep.n_clicks", {**keep, "md-selected.data": second, "md-drawer.data": drawer})
    drawer = drawer["md-drawer"]["data"]
    assert drawer == [first, second]
    values = {
        "md-drawer.data": [*drawer, "0" * 32],  # a kept model not in this view is not listed
        "selection.data": s.selection,
        "md-objective.value": "val_accuracy",
        "md-direction.value": "max",
        "md-selected.data": second,
    }
    shown = post(s.http, s.deps, "md-drawer.data", values, "md-drawer-list.options")
    options = shown["md-drawer-list"]["options"]
    assert [o["value"] for o in options] == [first, second] and shown["md-drawer-list"]["value"] == second
    assert "trellis-glyph" in json.dumps(options[0]["label"]) and first[:8] in json.dumps(options[0]["label"])
    picked = post(s.http, s.deps, "md-drawer-list.value", {"md-drawer-list.value": first, "md-selected.data": second})
    assert picked["md-selected"]["data"] == first
    dropped = post(s.http, s.deps, "md-drop.n_clicks", {**keep, "md-drawer.data": drawer, "md-drop.n_clicks": 1})
    assert dropped["md-drawer"]["data"] == [second]


def test_variations_change_only_the_layers_and_kinds_asked_for():
    parent = parse_config({**copy.deepcopy(CONFIG), "tracking": {"uri": "sqlite:///unused.db"}})
    recorded = {"architecture": A, "lr": "0.003", "optimizer": "adam", "batch_size": "64"}
    allowed, problem = allowed_changes(["reparameterize"], "0, 3")
    assert problem is None and allowed == {0: ("reparameterize",), 3: ("reparameterize",)}
    config = parse_config(children_config(parent, "f" * 32, recorded, "variation", n=6, seed=2, allowed=allowed))
    changes = [what for _, what in config.origin.changes]
    assert changes and all(re.fullmatch(r"reparameterized \S+ at [03] to \S+", what) for what in changes), changes
    assert allowed_changes([], "")[1].startswith("changes:")
    assert allowed_changes(["add"], "one")[1].startswith("layers:")
    assert allowed_changes(["add", "explode"], "")[1].startswith("changes:")
    assert allowed_changes(["add"], "-1")[1].startswith("layers:")
    assert allowed_changes(None, None) == (("add", "remove", "replace", "reparameterize"), None)


def test_grid_requeue_orders_and_drops_what_is_not_yet_proposed():
    from trellis.search.config import Objective
    from trellis.search.samplers.grid import GridSampler
    from trellis.search.space import Categorical, SearchSpace

    sampler = GridSampler(SearchSpace([Categorical("a", choices=("p", "q", "r", "s"))]), Objective("loss", "min"))
    assert sampler.propose(0) == {"a": "p"}
    assert sampler.requeue("a", ["s", "q"]) == ["r"]  # r left out: dropped; p already proposed: untouched
    assert [sampler.propose(i) for i in (1, 2, 3)] == [{"a": "s"}, {"a": "q"}, None]
    # A resumed search skipped its past proposals in the original order; what really ran is what counts.
    resumed = GridSampler(SearchSpace([Categorical("a", choices=("p", "q", "r", "s"))]), Objective("loss", "min"))
    resumed.skip(2)
    assert resumed.requeue("a", ["r", "p"], done={"q", "s"}) == []
    assert [resumed.propose(i) for i in (2, 3, 4)] == [{"a": "r"}, {"a": "p"}, None]


def test_waiting_children_are_reordered_and_cancelled_from_the_page_and_the_runner_follows(served):
    from trellis.app.pages.models_card import new_orders

    s, client = served, MlflowClient(served.uri)
    table = read_runs(s.uri, [s.search.experiment_id])
    trials = table.trials[table.trials["origin_model"].isna()]
    trials = trials.assign(n=trials["params.architecture"].map(lambda t: len(parse_architecture(t))))
    pick = str(trials.sort_values("n")["run_id"].iloc[-1])  # the deepest model: the most children
    launch = {"md-selected.data": pick, "md-kind.value": "ablation", "md-n.value": 3, "selection.data": s.selection}
    assert "launched as search" in json.dumps(
        post(s.http, s.deps, "md-launch.n_clicks", {**launch, "md-launch.n_clicks": 1})
    )
    search = next(
        r
        for r in client.search_runs([s.search.experiment_id], f"tags.`{schema.ORIGIN_MODEL}` = '{pick}'")
        if r.data.tags.get(schema.TYPE) == "search"
    )
    card = _render(s, pick)["md-card"]
    rows = _find(card, "md-waiting")["data"]
    assert len(rows) >= 3 and all(r["search_id"] == search.info.run_id for r in rows)

    cancelled, moved = rows[0], rows[-1]
    remaining = rows[1:]
    gone = post(s.http, s.deps, "md-waiting.data", {"md-waiting.data": remaining, "md-waiting.data_previous": rows})
    assert "Queue updated" in json.dumps(gone)
    first = post(
        s.http,
        s.deps,
        "md-first.n_clicks",
        {"md-waiting.data": remaining, "md-first.n_clicks": 1, "md-waiting.selected_rows": [len(remaining) - 1]},
    )
    assert "Queue updated" in json.dumps(first)
    assert new_orders(remaining, None, None) == {}  # a re-render writes nothing
    shown = _find(_render(s, pick)["md-card"], "md-waiting")["data"]
    assert [r["arch"] for r in shown] == [moved["arch"], *[r["arch"] for r in remaining[:-1]]]

    children = _trained_by_an_agent(s, search.info.run_id)
    trained = {c.data.params["architecture"] for c in children}
    assert cancelled["arch"] not in trained and trained == {r["arch"] for r in remaining}
    first_trial = next(c for c in children if c.data.tags[schema.TRIAL_NUMBER] == "0")
    assert first_trial.data.params["architecture"] == moved["arch"]  # moved to the front before it started
    ended = client.get_run(search.info.run_id)
    assert json.loads(ended.data.tags[schema.ORIGIN_CANCELLED]) == [cancelled["change"]]
    assert ended.info.status == "FINISHED"


def _trained_by_an_agent(s, search_id: str) -> list:
    """Let a real agent run the waiting search to its end; its trial runs."""
    from trellis.search.control.agent import Agent

    with contextlib.chdir(s.tmp):
        agent = Agent(s.uri, poll_s=0.2, log_dir=s.tmp / "agent-logs", echo=lambda *_: None)
        assert agent.step() == [search_id]
        deadline = time.time() + 240
        while agent.children and time.time() < deadline:
            time.sleep(0.5)
            agent.step()
    assert not agent.children, "the search did not end within 240 s"
    query = f"tags.`{schema.SEARCH_ID}` = '{search_id}' and tags.`{schema.TYPE}` = 'trial'"
    return MlflowClient(s.uri).search_runs([s.search.experiment_id], query)


def _find(component, id_):
    """The props of the component with this id inside a rendered layout (JSON as Dash sends it)."""
    if isinstance(component, dict):
        props = component.get("props", component)  # a component, or an output's {"children": ...}
        if props.get("id") == id_:
            return props
        children = props.get("children")
        return _find(children, id_) if children is not None else None
    if isinstance(component, list):
        return next((found for c in component if (found := _find(c, id_)) is not None), None)
    return None


def test_hover_cards_carry_the_glyph_of_each_model():
    from trellis.layouts.models import GLYPH_STYLE, hover_glyph

    arch = parse_architecture(A)
    text = hover_glyph(arch)
    assert text.count("■") == len(arch) == 5
    assert text.startswith(f"<span style='color:{GLYPH_STYLE['conv'][0]}'>■C</span>")
    assert hover_glyph(parse_architecture("[]")) == "(head only)"


def test_children_are_not_made_twice_and_layer_numbers_are_checked():
    parent = parse_config({**copy.deepcopy(CONFIG), "tracking": {"uri": "sqlite:///unused.db"}})
    recorded = {"architecture": A, "lr": "0.003", "optimizer": "adam", "batch_size": "64"}
    first = parse_config(children_config(parent, "f" * 32, recorded, "ablation"))
    made = [t for t, _ in first.origin.changes]
    with pytest.raises(ChildrenError, match="beyond the children it already has"):
        children_config(parent, "f" * 32, recorded, "ablation", exclude=made)
    again = parse_config(children_config(parent, "f" * 32, recorded, "ablation", exclude=made[:2]))
    assert [t for t, _ in again.origin.changes] == made[2:]
    variations = parse_config(children_config(parent, "f" * 32, recorded, "variation", n=4, seed=3, exclude=made))
    assert len(variations.space["architecture"].choices) == 4 and not set(
        variations.space["architecture"].choices
    ) & set(made)
    with pytest.raises(ChildrenError, match=r"layers: this model has 5 layers \(numbers 0-4\), got 5"):
        children_config(parent, "f" * 32, recorded, "variation", allowed={5: ("add",)})
