"""The control page without a browser: its pure builders, and its callbacks posted as the browser posts them."""

from __future__ import annotations

import copy
import json
import time
from types import SimpleNamespace

import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.conftest import BASE
from trellis.layouts import control as lc
from trellis.search.control import relaunch
from trellis.search.control.policy import ServerPolicy
from trellis.search.control.relaunch import form_from_config
from trellis.tracking import schema

# -- posting callbacks as Dash's renderer does --------------------------------------------------------


def callback_payload(deps: list[dict], trigger: str, values: dict, output: str = "") -> dict:
    """The JSON the renderer posts to ``/_dash-update-component`` for the callback that ``trigger`` (``id.prop``)
    fires (the one whose outputs name ``output``, where several do); ``values`` maps ``id.prop`` to the value
    of each input and state (missing ones are None)."""
    fired = [d for d in deps if trigger in [f"{i['id']}.{i['property']}" for i in d["inputs"]]]
    dep = next(d for d in fired if output in d["output"])

    def props(items):
        return [
            {"id": i["id"], "property": i["property"], "value": values.get(f"{i['id']}.{i['property']}")} for i in items
        ]

    names = dep["output"].removeprefix("..").removesuffix("..").split("...")
    outputs = [dict(zip(("id", "property"), name.split(".", 1), strict=True)) for name in names]
    return {
        "output": dep["output"],
        "outputs": outputs if dep["output"].startswith("..") else outputs[0],
        "inputs": props(dep["inputs"]),
        "changedPropIds": [trigger],
        "state": props(dep["state"]),
    }


def post(client, deps, trigger: str, values: dict, output: str = "") -> dict:
    response = client.post("/_dash-update-component", json=callback_payload(deps, trigger, values, output))
    assert response.status_code in (200, 204), response.data[:500]
    return json.loads(response.data)["response"] if response.status_code == 200 else {}


# -- the searches table -------------------------------------------------------------------------------


def _record(run_id, start, parent=None, status="FINISHED", tags=None, metrics=None):
    tags = {schema.SEARCH_NAME: f"s-{run_id}", **(tags or {})}
    if parent:
        tags[schema.RELAUNCHED_FROM] = parent
    return {"run_id": run_id, "status": status, "start_time": start, "tags": tags, "metrics": metrics or {}}


def test_lineage_puts_each_relaunch_under_its_parent():
    records = [
        _record("a", 1),
        _record("b", 2),
        _record("a2", 5, parent="a"),
        _record("a1", 3, parent="a"),
        _record("a11", 4, parent="a1"),
        _record("x", 6, parent="gone"),  # its parent is not listed: a root
    ]
    order = [(r["run_id"], depth) for r, depth in lc.lineage(records)]
    assert order == [("x", 0), ("b", 0), ("a", 0), ("a1", 1), ("a11", 2), ("a2", 1)]


def test_lineage_survives_a_loop_of_relaunch_tags():
    records = [_record("p", 1, parent="q"), _record("q", 2, parent="p"), _record("self", 3, parent="self")]
    ids = [r["run_id"] for r, _ in lc.lineage(records)]
    assert sorted(ids) == ["p", "q", "self"]


def test_search_row_reads_status_progress_best_and_who():
    config = {"termination": {"max_trials": 12}, "objective": {"metric": "loss"}, "algorithm": {"name": "tpe"}}
    now = time.time()
    tags = {
        schema.SEARCH_STATE: "running",
        schema.HEARTBEAT: f"{now - 3:.0f}",
        schema.CONFIG_JSON: json.dumps(config),
        schema.OBJECTIVE: "loss",
        schema.ALGORITHM: "tpe",
        schema.LAUNCHED_BY: "ann",
        schema.AGENT: "host:42",
    }
    record = _record("abcdef0123456789", 1_700_000_000_000, "p", "RUNNING", tags, {"best_loss": 0.123456})
    row = lc.search_row(record, 2, 5, now)
    assert row["status"] == "running" and row["progress"] == "5 / 12" and row["best"] == "0.12346"
    assert row["short"] == "abcdef01" and row["id"] == "abcdef0123456789"
    assert (row["launched_by"], row["agent"], row["algorithm"]) == ("ann", "host:42", "tpe")
    assert row["name"].endswith("└\u00a0s-abcdef0123456789") and row["name"].startswith("\u00a0")
    assert row["started"].startswith("2023-11-")
    silent = lc.search_row({**record, "tags": {**record["tags"], schema.HEARTBEAT: f"{now - 300:.0f}"}}, 0, 0, now)
    assert silent["status"] == "orphaned" and silent["name"] == "s-abcdef0123456789"
    scheduled = lc.search_row(_record("s", 0, status="SCHEDULED", tags={schema.SEARCH_STATE: "scheduled"}), 0, 0, now)
    assert scheduled["status"] == "scheduled" and scheduled["progress"] == "0 / —" and scheduled["best"] == "—"
    assert scheduled["launched_by"] == "cli" and scheduled["started"] == ""
    submitted = {**record, "tags": {**record["tags"], schema.SEARCH_STARTED: "1800000000.0"}}  # an agent took it
    assert lc.search_row(submitted, 0, 0, now)["started"] == time.strftime("%Y-%m-%d %H:%M:%S",
                                                                            time.localtime(1_800_000_000))  # fmt: skip


def test_ended_counts_tick_and_options():
    trials = pd.DataFrame(
        {"search_id": list("aaab"), "status": ["FINISHED", "FAILED", "RUNNING", "KILLED"], "run_id": list("wxyz")}
    )
    assert lc.ended_counts(trials) == {"a": 2, "b": 1}
    assert lc.ended_counts(trials.iloc[0:0]) == {}
    rows = lc.table_rows([_record("a", 1), _record("a1", 2, "a", "RUNNING")], {"a": 3}, time.time())
    assert [r["progress"] for r in rows] == ["3 / —", "0 / —"]
    assert lc.tick_interval(rows) == lc.FAST_TICK_MS
    assert lc.tick_interval(rows[:1]) == lc.SLOW_TICK_MS
    assert [o["label"] for o in lc.pick_options(rows)] == ["s-a · a (finished)", "s-a1 · a1 (running)"]


def test_what_a_picked_search_allows_and_its_edit_form():
    assert lc.allowed_actions("running") == {"stop": True, "resume": False, "edit": True}
    assert lc.allowed_actions("scheduled")["stop"] and lc.stop_label("scheduled") == "Cancel"
    for label in ("stopped", "orphaned", "failed"):
        assert lc.allowed_actions(label) == {"stop": False, "resume": True, "edit": False}
    assert lc.allowed_actions("finished") == {"stop": False, "resume": False, "edit": False}
    assert lc.allowed_actions(None)["stop"] is False and lc.stop_label(None) == "Stop"
    config = {"termination": {"max_trials": 8, "max_time_s": 60.0}, "executor": {"workers": 2}}
    assert lc.edit_prefill(config) == (8, 60.0, 2)
    assert lc.edit_limits(20, None, "") == {"max_trials": 20}
    assert lc.edit_limits(None, "90", 3) == {"max_time_s": 90, "workers": 3}
    assert ServerPolicy(max_workers=4).edit_problems(lc.edit_limits(None, None, 9)) == [
        ("workers", "at most 4 on this server")
    ]
    assert lc.changed_limits({"max_trials": 20, "max_time_s": 60.0, "workers": 2}, config) == {"max_trials": 20}
    assert lc.changed_limits({"workers": 2}, config) == {}
    assert lc.problem_lines([("space.x.low", "must be < high")]) == ["space.x.low: must be < high"]


# -- the relaunch form <-> widgets ---------------------------------------------------------------------


def _parent() -> dict:
    parent = copy.deepcopy(BASE)
    parent["space"]["z"] = {"type": "float", "low": 0.0, "high": 1.0, "log": False, "when": {"shape": "ridge"}}
    parent["space"]["batch"] = 32
    parent["algorithm"] = {"name": "tpe", "seed": 4, "n_startup_trials": 5}
    parent["termination"] = {"max_trials": 10, "threshold": 0.01}
    parent["tracking"] = {"uri": "sqlite:///x.db", "experiment": "e"}
    return parent


def test_widgets_show_the_form_and_give_it_back():
    form = form_from_config(_parent(), {"x": 0.25, "shape": "bowl"})
    widgets = lc.widgets_from_form(form)
    assert set(widgets) == set(lc.WIDGETS)
    by_name = {r["name"]: r for r in widgets["params"]}
    assert by_name["x"]["log"] == "no" and by_name["x"]["value"] == 0.25 and by_name["y"]["value"] == ""
    assert by_name["z"]["when"] == {"shape": "ridge"} and by_name["batch"]["action"] == "fix"
    assert {r["key"]: r["value"] for r in widgets["settings"]} == {
        "n_startup_trials": 5,
        "multivariate": "True",
        "early_stopping.rule": "median",
        "early_stopping.step": -1,
    }
    assert widgets["warm_start"] == ["on"] and widgets["seed"] == "" and widgets["max_trials"] == 10
    back = lc.form_from_widgets(form, widgets)
    assert [r["name"] for r in back["rows"]] == [r["name"] for r in form["rows"]]
    assert back["termination"] == {"max_trials": 10, "max_time_s": None, "threshold": 0.01}  # threshold kept
    raw, problems = relaunch.config_from_form(_parent(), back, "p" * 32, 7)
    assert problems == []
    assert raw["space"]["z"] == _parent()["space"]["z"] and raw["space"]["batch"] == {"type": "fixed", "value": 32}
    assert raw["algorithm"] == {"name": "tpe", "seed": 7, "n_startup_trials": 5, "multivariate": True}
    assert raw["termination"] == {"max_trials": 10, "threshold": 0.01} and raw["warm_start"] is True


def test_edited_cells_become_the_rows_config_from_form_reads():
    form = form_from_config(_parent())
    widgets = lc.widgets_from_form(form)
    for cell in widgets["params"]:
        if cell["name"] == "x":
            cell.update(low="0.1", high=" 0.5 ", log="yes")
        if cell["name"] == "y":
            cell.update(action="fix", value="-0.5")
        if cell["name"] == "shape":
            cell.update(action="drop")
    widgets.update(warm_start=[], seed="11", max_trials="", settings=[{"key": "n_startup_trials", "value": "3"}])
    raw, problems = relaunch.config_from_form(_parent(), lc.form_from_widgets(form, widgets), "p", 99)
    assert problems == []
    assert raw["space"]["x"] == {"type": "float", "low": 0.1, "high": 0.5, "log": True}
    assert raw["space"]["y"] == {"type": "fixed", "value": -0.5} and "shape" not in raw["space"]
    assert raw["algorithm"] == {"name": "tpe", "seed": 11, "n_startup_trials": 3} and raw["warm_start"] is False
    assert raw["termination"] == {"threshold": 0.01}


def test_only_the_trial_key_is_taken_from_outside_the_widgets():
    form = form_from_config(_parent())
    widgets = lc.widgets_from_form(form)
    out = lc.form_from_widgets(form, widgets, {"trial": "os:system", "name": "other", "rows": []})
    assert out["trial"] == "os:system" and out["name"] == form["name"] and len(out["rows"]) == len(form["rows"])
    assert "trial" not in lc.form_from_widgets({**form, "trial": "x:y"}, widgets, None)
    assert lc.rows_from_table([{"name": ""}, "junk", {"name": "x", "when": "not a dict"}])[0]["when"] is None


def test_settings_table_follows_the_algorithm():
    off = [{"key": "early_stopping.rule", "value": "median"}, {"key": "early_stopping.step", "value": -1}]
    assert lc.settings_table("grid", {"points": 3, "unknown": 1}) == [
        {"key": "points", "value": 3},
        {"key": "shuffle", "value": "False"},
        *off,
    ]
    assert lc.settings_table("random") == off and lc.settings_table("no-such") == []
    assert [r["key"] for r in lc.settings_table("hyperband")] == ["eta"]  # budgeted: no early stopping


def test_early_stopping_rule_and_step_are_edited_in_the_settings_table():
    parent = _parent()
    base = form_from_config(parent)
    widgets = lc.widgets_from_form(base)
    rows = [r for r in widgets["settings"] if not r["key"].startswith(lc.EARLY)]
    on = [
        *rows,
        {"key": "early_stopping.rule", "value": "successive_halving"},
        {"key": "early_stopping.step", "value": "2"},
    ]
    raw, _ = relaunch.config_from_form(parent, lc.form_from_widgets(base, {**widgets, "settings": on}), "p", 1)
    assert raw["early_stopping"] == {"rule": "successive_halving", "step": 2}
    off = lc.form_from_widgets(base, widgets)  # the default rows: step -1, the parent had none
    assert "early_stopping" not in relaunch.config_from_form(parent, off, "p", 1)[0]
    bad = [*rows, {"key": "early_stopping.rule", "value": "coin-flip"}, {"key": "early_stopping.step", "value": "2"}]
    raw, problems = relaunch.config_from_form(parent, lc.form_from_widgets(base, {**widgets, "settings": bad}), "p", 1)
    _, problems = relaunch.validate_launch(raw, problems, ServerPolicy(), "trellis.examples.synthetic:quadratic")
    assert any(path.startswith("early_stopping.rule") for path, _ in problems), problems
    assert lc.settings_from_table([{"key": "points", "value": "4"}, {"key": "shuffle", "value": " "}, {}]) == {
        "points": "4"
    }


def test_diff_rows_show_missing_values_and_lists():
    rows = lc.diff_rows([("space.x.high", 1.0, 0.5), ("warm_start", None, True), ("space.s.choices", ["a"], None)])
    assert rows == [
        {"key": "space.x.high", "parent": "1.0", "relaunch": "0.5"},
        {"key": "warm_start", "parent": "—", "relaunch": "True"},
        {"key": "space.s.choices", "parent": '["a"]', "relaunch": "—"},
    ]


def test_best_and_selected_params_from_the_trials_table():
    trials = pd.DataFrame(
        {
            "run_id": ["r1", "r2", "r3", "r4"],
            "search_id": ["s", "s", "s", "t"],
            "status": ["FINISHED", "FINISHED", "FAILED", "FINISHED"],
            "metrics.loss": [0.5, 0.2, 0.01, 0.0],
            "params.x": [0.1, 0.3, 0.9, 0.0],
            "params.shape": ["bowl", "ridge", None, "flat"],
        }
    )
    assert lc.best_params(trials, "s", "loss", "min") == {"x": 0.3, "shape": "ridge"}  # failed r3 not counted
    assert lc.best_params(trials, "s", "loss", "max") == {"x": 0.1, "shape": "bowl"}
    assert lc.best_params(trials, "s", "acc", "max") == {} and lc.best_params(trials, "none", "loss", "min") == {}
    assert lc.selected_params(trials, ["r3", "r4", "elsewhere"]) == [{"x": 0.9}, {"x": 0.0, "shape": "flat"}]
    assert lc.selected_params(trials, None) == []


def test_a_trial_off_the_allow_list_is_refused_before_the_parser_looks_for_it(monkeypatch, tmp_path):
    package = tmp_path / "evil_pkg"
    package.mkdir()
    marker = tmp_path / "imported"
    (package / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (package / "mod.py").write_text("def run(ctx):\n    return 0.0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    form = {**form_from_config(_parent()), "trial": "evil_pkg.mod:run"}
    raw, problems = relaunch.config_from_form(_parent(), form, "p", 1)
    raw["executor"]["workers"] = 99
    config, problems = relaunch.validate_launch(raw, problems, ServerPolicy(), "trellis.examples.synthetic:quadratic")
    assert config is None
    assert ("trial", "evil_pkg.mod:run is not on this server's allow-list of trials") in problems
    assert ("executor.workers", "at most 4 on this server, got 99") in problems
    assert not marker.exists()  # finding the module would have imported its package


# -- the callbacks, posted in-process --------------------------------------------------------------------


@pytest.fixture
def served(make_config, store):
    from trellis.app.factory import create_app
    from trellis.search.engine.runner import run_search

    search = run_search(make_config(termination={"max_trials": 6}, executor={"kind": "local", "workers": 1}))
    app = create_app(store, cache=None)
    client = app.server.test_client()
    deps = json.loads(client.get("/_dash-dependencies").data)
    return SimpleNamespace(app=app, http=client, deps=deps, search=search, mlflow=MlflowClient(store))


def _search_count(s) -> int:
    return len(s.mlflow.search_runs([s.search.experiment_id], f"tags.`{schema.TYPE}` = 'search'"))


def _widget_values(widgets: dict) -> dict:
    from trellis.app.pages.control_relaunch import WIDGET_PROPS

    return {f"{i}.{p}": widgets[k] for (i, p), k in zip(WIDGET_PROPS, lc.WIDGETS, strict=True)}


def test_table_prefill_launch_and_refusals_through_the_callbacks(served):
    s = served
    sid, exp = s.search.search_id, s.search.experiment_id
    table = post(s.http, s.deps, "ctl-tick.n_intervals", {"selection.data": {"experiments": [exp], "searches": []}})
    rows = table["ctl-table"]["data"]
    assert [(r["id"], r["status"], r["progress"]) for r in rows] == [(sid, "finished", "6 / 6")]

    pick = {"ctl-pick.value": sid, "selection.data": {"experiments": [exp], "searches": []}}
    filled = post(s.http, s.deps, "ctl-pick.value", pick, output="ctl-name.value")
    widgets = {k: filled[i][p] for (i, p), k in zip(_ids(), lc.WIDGETS, strict=True)}
    assert widgets["name"] == "t-refined" and widgets["algorithm"] == "random"
    values = {"ctl-pick.value": sid, **_widget_values(widgets), "ctl-extra.data": {}}

    preview = post(s.http, s.deps, "ctl-name.value", values, output="ctl-yaml")
    assert preview["ctl-launch"]["disabled"] is False and "space:" in preview["ctl-yaml"]["children"]
    text = preview["ctl-yaml"]["children"]
    download = post(s.http, s.deps, "ctl-download-btn.n_clicks", {"ctl-yaml.children": text, "ctl-name.value": "r"})
    assert download["ctl-download"]["data"] == {"content": text, "filename": "r.yaml", "type": "text/yaml"}

    # Another algorithm brings its own settings; the selected runs narrow the ranges to theirs.
    algo = post(s.http, s.deps, "ctl-algo.value", {**pick, **values, "ctl-algo.value": "grid"}, "ctl-name.value")
    assert algo["ctl-settings"]["data"][:2] == [{"key": "points", "value": 5}, {"key": "shuffle", "value": "False"}]
    assert set(algo) == {"ctl-settings"}
    trials = s.mlflow.search_runs([exp], f"tags.`{schema.TYPE}` = 'trial'")[:2]
    xs = sorted(float(t.data.params["x"]) for t in trials)
    runs = {**pick, **values, "selected-runs.data": [t.info.run_id for t in trials]}
    narrowed = post(s.http, s.deps, "ctl-fill-runs.n_clicks", runs, "ctl-name.value")
    x_row = next(r for r in narrowed["ctl-params"]["data"] if r["name"] == "x")
    assert (x_row["low"], x_row["high"]) == pytest.approx(xs, rel=1e-3) and "2 selected runs" in json.dumps(narrowed)
    assert x_row["low"] <= min(xs) and x_row["high"] >= max(xs) and len(str(x_row["low"])) <= 8  # 4 digits, outwards
    nothing = post(s.http, s.deps, "ctl-fill-runs.n_clicks", {**runs, "selected-runs.data": []}, "ctl-name.value")
    assert "ctl-params" not in nothing and "No selected runs" in json.dumps(nothing)
    bounds = post(s.http, s.deps, "ctl-fill-bounds.n_clicks", {**pick, **values}, "ctl-name.value")
    note = json.dumps(bounds["ctl-fill-note"])
    # Six runs for three parameters: below the runs the forest is trusted from, so nothing is narrowed.
    assert "too few runs to rank or narrow: 6 runs" in note and "ctl-params" not in bounds

    before = _search_count(s)
    bad = copy.deepcopy(widgets)
    next(r for r in bad["params"] if r["name"] == "x").update(low=2.0, high=1.0)
    refused = post(s.http, s.deps, "ctl-launch.n_clicks", {**values, **_widget_values(bad), "ctl-launch.n_clicks": 1})
    assert "space.x" in json.dumps(refused) and _search_count(s) == before
    crafted = {**values, "ctl-extra.data": {"trial": "os:system"}, "ctl-launch.n_clicks": 1}
    refused = post(s.http, s.deps, "ctl-launch.n_clicks", crafted)
    assert "os:system is not on this server" in json.dumps(refused) and _search_count(s) == before

    launched = post(s.http, s.deps, "ctl-launch.n_clicks", {**values, "ctl-launch.n_clicks": 1})
    new_id = launched["ctl-refresh"]["data"]
    assert new_id in json.dumps(launched["ctl-launch-msg"]) and _search_count(s) == before + 1
    run = s.mlflow.get_run(new_id)
    assert run.info.status == "SCHEDULED" and run.data.tags[schema.LAUNCHED_BY] == "anonymous"
    assert run.data.tags[schema.RELAUNCHED_FROM] == sid

    # The new search shows under its parent; an edit beyond the caps is refused; then it is cancelled.
    rows = post(s.http, s.deps, "ctl-refresh.data", {"selection.data": {"experiments": [exp], "searches": []}})[
        "ctl-table"
    ]["data"]
    assert [(r["id"], r["depth"], r["status"]) for r in rows] == [(sid, 0, "finished"), (new_id, 1, "scheduled")]
    action = {"ctl-pick.value": new_id, "ctl-edit-workers.value": 99}
    msg = post(s.http, s.deps, "ctl-edit-apply.n_clicks", action)
    assert "workers: at most 4 on this server" in json.dumps(msg)
    msg = post(s.http, s.deps, "ctl-stop.n_clicks", action)
    assert f"search {new_id[:8]} cancelled" in json.dumps(msg)
    assert s.mlflow.get_run(new_id).info.status == "KILLED"


def _ids():
    from trellis.app.pages.control_relaunch import WIDGET_PROPS

    return WIDGET_PROPS


def test_with_auth_on_nothing_is_done_without_a_signed_in_user(store):
    from trellis.app.factory import create_app
    from trellis.app.pages.control_relaunch import signed_in_refusal

    app = create_app(store, cache=None, users={"u": "p"})
    anonymous = app.server.test_client().post("/_dash-update-component", json={})
    assert anonymous.status_code == 401
    context = app.trellis_context
    with app.server.test_request_context("/"):
        assert context.current_user() is None and signed_in_refusal(context) is not None
    with app.server.test_request_context("/", headers={"Authorization": "Basic dTpw"}):  # u:p
        assert app.server.preprocess_request() is None  # the sign-in hook lets u in
        assert context.current_user() == "u" and signed_in_refusal(context) is None
    open_app = create_app(store, cache=None)
    with open_app.server.test_request_context("/"):
        assert signed_in_refusal(open_app.trellis_context) is None
