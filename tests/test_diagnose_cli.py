"""``trellis diagnose`` in a subprocess on a store with a real search (text, --json, bad names), and the same
findings at the top of the overview, through the app's own callback."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest
from mlflow import MlflowClient

from tests.conftest import BASE, child_runs, module_store
from trellis.search.config import parse_config
from trellis.search.engine.runner import run_search

SPACE = {"x": {"type": "float", "low": -1.0, "high": 1.0}, "y": {"type": "float", "low": -1.0, "high": 1.0}}


@pytest.fixture(scope="module")
def failing(tmp_path_factory):
    """A random search whose trials raise for x > 0.5, plus an experiment of runs no Trellis search wrote."""
    folder, uri = module_store(tmp_path_factory, "diagnose-cli")
    raw = {
        **BASE,
        "name": "failing",
        "space": SPACE,
        "termination": {"max_trials": 8},
        "executor": {"kind": "local", "workers": 1},
        "trial": {"function": "tests.diagnosis_trials:fragile"},
        "tracking": {"uri": uri, "experiment": "failing"},
    }
    with contextlib.chdir(folder):
        result = run_search(parse_config(raw))
    client = MlflowClient(tracking_uri=uri)
    failed = sorted(r.info.run_id for r in child_runs(client, result.search_id) if r.info.status == "FAILED")
    assert len(failed) >= 2, "the seed must give at least two trials with x > 0.5"
    foreign = client.create_experiment("foreign")
    run = client.create_run(foreign)
    client.log_metric(run.info.run_id, "loss", 0.5)
    client.set_terminated(run.info.run_id)
    experiment = client.get_experiment_by_name("failing").experiment_id
    return SimpleNamespace(folder=folder, uri=uri, search_id=result.search_id, failed=failed, experiment=experiment)


def _trellis(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "trellis.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_diagnose_prints_each_finding_with_evidence_and_fix(failing):
    out = _trellis("diagnose", "--tracking-uri", failing.uri, "--experiment", "failing", cwd=failing.folder)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert f"search failing · {failing.search_id[:6]} (random, 8 trials, id {failing.search_id})" in text
    assert f"[danger] {len(failing.failed)} of 8 trials failed" in text
    assert "evidence:" in text and "RuntimeError: CUDA out of memory (synthetic)" in text
    assert "fix: Read their stderr tails" in text and "config: space.x.high:" in text
    assert failing.failed[0] in text


def test_diagnose_json_has_the_findings_config_changes_and_failed_runs(failing):
    out = _trellis("diagnose", "--tracking-uri", failing.uri, "--experiment", "failing", "--json", cwd=failing.folder)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    (search,) = report["searches"]
    assert search["search_id"] == failing.search_id and search["algorithm"] == "random" and search["trials"] == 8
    failed = next(f for f in search["findings"] if f["rule"] == "failed_trials")
    assert sorted(failed["run_ids"]) == failing.failed
    assert set(failed["config_change"]) == {"space.x.high"} and failed["config_change"]["space.x.high"] <= 0.5
    assert failed["severity"] == "danger" and failed["search_id"] == failing.search_id


def test_diagnose_bad_names_are_one_line_with_exit_code_2(failing, capsys):
    out = _trellis("diagnose", "--tracking-uri", failing.uri, "--experiment", "nope", cwd=failing.folder)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith("error: no experiment 'nope' at") and len(out.stderr.strip().splitlines()) == 1
    assert "(have: Default, failing, foreign)" in out.stderr
    # The rest in-process (the same main() the command runs): a search id of no search here, one search, foreign runs.
    from trellis.cli import main

    args = ["diagnose", "--tracking-uri", failing.uri, "--experiment", "failing"]
    assert main([*args, "--search", "0123abcd"]) == 2
    err = capsys.readouterr().err
    assert err == "error: no search '0123abcd' in experiment 'failing'\n"
    assert main([*args, "--search", failing.search_id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["searches"][0]["search_id"] == failing.search_id
    assert main(["diagnose", "--tracking-uri", failing.uri, "--experiment", "foreign"]) == 0
    said = capsys.readouterr().out  # another tool's runs: one search, the rules that need lineage skipped
    assert "(runs of another tool, 1 trials" in said and "not applicable without Trellis' lineage" in said


def test_the_overview_shows_the_findings_first_and_links_the_failed_runs(failing, monkeypatch):
    from tests.test_control_page import post
    from trellis.app.factory import create_app

    monkeypatch.chdir(failing.folder)
    app = create_app(failing.uri, cache=None, mlflow_ui_url="http://mlflow.example:5000")
    client = app.server.test_client()
    deps = json.loads(client.get("/_dash-dependencies").data)
    values = {"selection.data": {"experiments": [failing.experiment], "searches": []}}
    panel = json.dumps(post(client, deps, "selection.data", values, "ov-diagnosis.children"))
    assert f"{len(failing.failed)} of 8 trials failed" in panel and "space.x.high" in panel
    run_link = f"http://mlflow.example:5000/#/experiments/{failing.experiment}/runs/{failing.failed[0]}"
    assert run_link in panel
    exploration = json.dumps(post(client, deps, "selection.data", values, "ex-findings.children"))
    assert exploration.replace("ex-findings", "ov-diagnosis") == panel  # the same panel atop the exploration page
    foreign = client.get("/").status_code  # the page itself is served as before
    assert foreign == 200
    experiments = MlflowClient(failing.uri).get_experiment_by_name("foreign").experiment_id
    values = {"selection.data": {"experiments": [experiments], "searches": []}}
    empty = json.dumps(post(client, deps, "selection.data", values, "ov-diagnosis.children"))
    assert "nothing to change that the rules can see" in empty  # another tool's runs are diagnosed too


def test_a_rule_added_by_a_plugin_shows_in_the_cli_and_on_the_overview(failing, monkeypatch, capsys):
    """A diagnosis rule is one row: registered, it runs in ``trellis diagnose`` and on the overview, with no
    other file touched."""
    from tests.test_control_page import post
    from trellis.app.factory import create_app
    from trellis.cli import main
    from trellis.search.analysis.diagnosis import Finding, Rule, register_rule, unregister_rule

    def few_trials(facts):
        n = len(facts.trials)
        return [Finding("few_trials", facts.search_id, "info", f"only {n} trials", f"{n} < 10", "Run more trials")]

    register_rule(Rule("few_trials", "a search ran fewer than ten trials", few_trials))
    try:
        assert main(["diagnose", "--tracking-uri", failing.uri, "--experiment", "failing"]) == 0
        assert "only 8 trials" in capsys.readouterr().out
        monkeypatch.chdir(failing.folder)
        client = create_app(failing.uri, cache=None).server.test_client()
        deps = json.loads(client.get("/_dash-dependencies").data)
        values = {"selection.data": {"experiments": [failing.experiment], "searches": []}}
        assert "only 8 trials" in json.dumps(post(client, deps, "selection.data", values, "ov-diagnosis.children"))
    finally:
        unregister_rule("few_trials")
    assert main(["diagnose", "--tracking-uri", failing.uri, "--experiment", "failing"]) == 0
    assert "only 8 trials" not in capsys.readouterr().out
