"""Search diagnosis: each rule fires on a search the engine ran that was built to trigger it, and stays quiet on
a healthy search of the same algorithm. Synthetic trials (tests/diagnosis_trials.py, examples/synthetic.py)."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from scipy.stats import spearmanr

from tests.conftest import BASE, child_runs, module_store
from trellis.search.analysis.diagnosis import Finding, diagnose, history_request
from trellis.search.analysis.diagnosis.base import spearman
from trellis.search.analysis.diagnosis.population import founders
from trellis.search.analysis.verdicts import widened
from trellis.search.config import parse_config
from trellis.search.engine.runner import run_search
from trellis.tracking import schema
from trellis.tracking.histories import read_histories
from trellis.tracking.reader import read_runs

ES = {"rule": "median", "step": 1, "min_trials": 6}
QUADRATIC = {"x": {"type": "float", "low": -1.0, "high": 1.0}, "y": {"type": "float", "low": -1.0, "high": 1.0}}


class Lab:
    """Runs each named search once into one store (its own experiment) and diagnoses it as the CLI does."""

    def __init__(self, folder, uri: str) -> None:
        self.folder, self.uri = folder, uri
        self.client = MlflowClient(tracking_uri=uri)
        self._done: dict[str, tuple[str, list[Finding]]] = {}

    def run(self, name: str, **changes: Any) -> tuple[str, list[Finding]]:
        if name not in self._done:
            raw = copy.deepcopy(BASE)
            raw.update(name=name, executor={"kind": "local", "workers": 1})
            raw.update(changes)
            raw["tracking"] = {"uri": self.uri, "experiment": name}
            with contextlib.chdir(self.folder):
                search_id = run_search(parse_config(raw)).search_id
            self._done[name] = (search_id, self.diagnose(name))
        return self._done[name]

    def diagnose(self, name: str) -> list[Finding]:
        table = read_runs(self.uri, [self.client.get_experiment_by_name(name).experiment_id])
        run_ids, keys = history_request(table, table.trials)
        history = read_histories(self.uri, run_ids, keys, max_points=100_000) if run_ids else None
        return diagnose(table, table.trials, history=history)


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Lab:
    return Lab(*module_store(tmp_path_factory, "diagnosis"))


def _rules(findings: list[Finding]) -> set[str]:
    return {f.rule for f in findings}


def _one(findings: list[Finding], rule: str) -> Finding:
    found = [f for f in findings if f.rule == rule]
    assert len(found) == 1, [f.title for f in findings]
    return found[0]


def edge_search(lab: Lab):
    """Random search on the quadratic bowl (optimum x = 0.3) over x in [-1, 0], plus an inert parameter u."""
    space = {"x": {"type": "float", "low": -1.0, "high": 0.0}, "u": {"type": "float", "low": 0.0, "high": 1.0}}
    return lab.run("edge", space={**space, "y": -0.5}, termination={"max_trials": 24})


def healthy_random(lab: Lab):
    return lab.run("healthy-random", space=QUADRATIC, termination={"max_trials": 24})


def test_best_values_at_the_high_edge_are_found_and_the_widened_range_holds_the_optimum(lab):
    search_id, findings = edge_search(lab)
    edge = _one(findings, "range_edge")
    assert edge.search_id == search_id and edge.config_change.keys() == {"space.x.high"}
    new_high = edge.config_change["space.x.high"]
    assert new_high == pytest.approx(0.5)  # half the range again: past the optimum at 0.3
    assert new_high > 0.3 and "x" in edge.title and "[-1, 0]" in edge.evidence
    # The runs it names are the best trials near the edge: each has x in the top tenth of [-1, 0].
    xs = [float(lab.client.get_run(r).data.params["x"]) for r in edge.run_ids]
    assert xs and all(x >= -0.1 for x in xs)
    assert "range_edge" not in _rules(healthy_random(lab)[1])  # optimum inside [-1, 1]: nothing to widen


def test_a_parameter_the_objective_ignores_is_fixed_at_the_best_value(lab):
    search_id, findings = edge_search(lab)
    negligible = _one(findings, "negligible_parameter")
    assert negligible.title.startswith("u ") and negligible.config_change.keys() == {"space.u"}
    best = min(
        (r for r in child_runs(lab.client, search_id) if r.data.tags[schema.END_REASON] == "completed"),
        key=lambda r: r.data.metrics["loss"],
    )
    assert negligible.config_change["space.u"] == pytest.approx(float(best.data.params["u"]), rel=1e-5)
    assert "R²" in negligible.evidence
    assert "negligible_parameter" not in _rules(healthy_random(lab)[1])  # x and y both shape the bowl


def test_many_failed_trials_give_the_commonest_error_and_the_failed_runs(lab):
    search_id, findings = lab.run(
        "failing",
        trial={"function": "tests.diagnosis_trials:fragile"},
        space=QUADRATIC,
        termination={"max_trials": 10},
    )
    failed = _one(findings, "failed_trials")
    runs = child_runs(lab.client, search_id)
    failed_ids = {r.info.run_id for r in runs if r.info.status == "FAILED"}
    assert set(failed.run_ids) == failed_ids and len(failed_ids) >= 2
    assert f"{len(failed_ids)} of {len(runs)} trials failed" == failed.title
    assert "RuntimeError: CUDA out of memory (synthetic)" in failed.evidence
    # Every failure had x > 0.5 and none that worked did: the fix leaves out x above the highest that worked.
    worked = max(float(r.data.params["x"]) for r in runs if r.info.run_id not in failed_ids)
    assert failed.config_change == {"space.x.high": pytest.approx(worked, rel=1e-5)}
    assert "failed_trials" not in _rules(healthy_random(lab)[1])


def slow_starters_search(lab: Lab):
    """Early stopping at step 1 on curves whose best configurations start worst (tests/diagnosis_trials.py)."""
    return lab.run(
        "slow-starters",
        trial={"function": "tests.diagnosis_trials:slow_starter"},
        space={"x": {"type": "float", "low": 0.0, "high": 1.0}},
        budget={"resource": "epochs", "min": 1, "max": 9},
        termination={"max_trials": 14},
        early_stopping=ES,
    )


def healthy_early_stopping(lab: Lab):
    return lab.run(
        "healthy-es",
        space={"x": {"type": "float", "low": -1.0, "high": 1.0}, "y": -0.5},
        budget={"resource": "epochs", "min": 1, "max": 9},
        termination={"max_trials": 14},
        early_stopping=ES,
    )


def test_early_stopping_step_that_ranks_trials_against_their_end_is_raised_to_where_ranks_agree(lab):
    _, findings = slow_starters_search(lab)
    low = _one(findings, "low_rung_correlation")
    # loss = (1 - x) + 2.5x/epoch: steps 1 and 2 rank exactly against the end (rho = -1); from step 3 on the
    # ranking is the final one.
    assert "-1.00" in low.evidence
    assert low.config_change == {"early_stopping.step": 3}
    assert "low_rung_correlation" not in _rules(healthy_early_stopping(lab)[1])


def test_slow_starters_cut_off_by_early_stopping_are_found(lab):
    search_id, findings = slow_starters_search(lab)
    slow = _one(findings, "slow_starters")
    runs = {r.info.run_id: r for r in child_runs(lab.client, search_id)}
    named = [runs[r] for r in slow.run_ids]
    stopped = [r for r in named if r.data.tags[schema.END_REASON] == "early_stopped"]
    ran_on = [r for r in named if r.data.tags[schema.END_REASON] == "completed"]
    assert stopped and ran_on
    # The slow starters that ran on are among the first min_trials trials (nobody to compare with yet); each
    # stopped trial named started no worse than the slowest of them (a loss at step 1 rising with x: no larger x).
    assert all(int(r.data.tags[schema.TRIAL_NUMBER]) < ES["min_trials"] for r in ran_on)
    slowest = max(float(r.data.params["x"]) for r in ran_on)
    assert all(float(r.data.params["x"]) <= slowest + 1e-12 for r in stopped)
    assert slow.config_change == {"early_stopping.step": 3}
    assert "slow_starters" not in _rules(healthy_early_stopping(lab)[1])


def test_hyperband_first_rung_that_does_not_predict_the_last_raises_budget_min(lab):
    budget = {"resource": "epochs", "min": 1, "max": 9}
    _, findings = lab.run(
        "hyperband-slow",
        trial={"function": "tests.diagnosis_trials:slow_starter"},
        algorithm={"name": "hyperband", "seed": 0},
        space={"x": {"type": "float", "low": 0.0, "high": 1.0}},
        budget=budget,
        termination={},
    )
    assert _one(findings, "low_rung_correlation").config_change == {"budget.min": 3}
    _, healthy = lab.run(
        "hyperband-healthy",
        trial={"function": "trellis.examples.synthetic:resumable"},
        algorithm={"name": "hyperband", "seed": 0},
        space={"x": {"type": "float", "low": -1.0, "high": 1.0}},
        budget=budget,
        termination={},
    )
    assert "low_rung_correlation" not in _rules(healthy)


def _pbt(lab: Lab, name: str, budget_max: int, **settings):
    return lab.run(
        name,
        trial={"function": "trellis.examples.synthetic:pbt_member"},
        objective={"metric": "score", "direction": "max"},
        algorithm={"name": "pbt", "seed": 0, **settings},
        space={"lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True}},
        budget={"resource": "epochs", "min": 1, "max": budget_max},
        termination={},
    )


def test_pbt_population_collapsing_onto_one_founder_is_found(lab):
    search_id, findings = _pbt(lab, "pbt-collapse", 8, population_size=6, quantile=0.5, resample_probability=0.0)
    collapse = _one(findings, "pbt_collapse")
    assert collapse.config_change["algorithm.quantile"] < 0.5
    assert collapse.config_change["algorithm.resample_probability"] > 0.0
    # The founder it names: walk the lineage tags in MLflow from every member that ended the search.
    runs = child_runs(lab.client, search_id)
    by_trial = {int(r.data.tags[schema.TRIAL_NUMBER]): r for r in runs}
    last = [r for r in runs if r.data.tags[schema.END_REASON] == "completed"]
    assert len(last) == 6

    def founder(run) -> str:
        while schema.PBT_PARENT in run.data.tags:
            run = by_trial[int(run.data.tags[schema.PBT_PARENT])]
        return run.info.run_id

    roots = pd.Series([founder(r) for r in last]).value_counts()
    assert collapse.run_ids == (roots.index[0],) and roots.iloc[0] / len(last) >= 0.75
    assert f"{roots.iloc[0]} of the 6 members" in collapse.evidence
    _, healthy = _pbt(lab, "pbt-healthy", 3, population_size=8, quantile=0.25)
    assert "pbt_collapse" not in _rules(healthy)


def test_tpe_no_better_than_its_random_start_is_found_on_a_structureless_objective(lab):
    tpe = {"name": "tpe", "seed": 0, "n_startup_trials": 8}
    budget = {"resource": "epochs", "min": 1, "max": 1}
    _, rough = lab.run(
        "tpe-rough",
        trial={"function": "tests.diagnosis_trials:rough"},
        algorithm=tpe,
        space=QUADRATIC,
        budget=budget,
        termination={"max_trials": 24},
    )
    finding = _one(rough, "tpe_no_better")
    assert finding.config_change == {"termination.max_trials": 48}
    assert "Mann-Whitney" in finding.evidence and "8 random start-up trials" in finding.evidence
    # A structureless objective gives the forest nothing to fit: the importance rule keeps quiet.
    assert "negligible_parameter" not in _rules(rough)
    _, bowl = lab.run(
        "tpe-bowl", algorithm=tpe, space={**QUADRATIC, "shape": "bowl"}, budget=budget, termination={"max_trials": 24}
    )
    assert "tpe_no_better" not in _rules(bowl)


# -- pure pieces -----------------------------------------------------------------------------------------


def test_spearman_matches_scipy_and_is_none_for_constant_input():
    rng = np.random.default_rng(0)
    a, b = rng.random(20), rng.random(20)
    b[:5] = b[0]  # ties
    assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic)
    assert spearman(a, np.ones(20)) is None and spearman(a[:2], b[:2]) is None


def test_widening_is_on_the_parameter_scale():
    assert widened("float", 1e-4, 1e-2, True, "high") == pytest.approx(1e-1)
    assert widened("float", 1e-4, 1e-2, True, "low") == pytest.approx(1e-5)
    assert widened("int", 8, 13, False, "high") == 16  # 13 + 2.5, rounded out
    assert widened("float", -1.0, 1.0, False, "low") == -2.0
    # ... but a non-negative range stays so: a dropout rate at 0, a count of layers at 1 cannot go lower.
    assert widened("float", 0.0, 1.0, False, "low") == 0
    assert widened("float", 0.2, 1.0, False, "low") == 0
    assert widened("int", 1, 4, False, "low") == 1
    assert widened("int", 0, 4, False, "low") == 0
    assert widened("float", -1.0, 0.0, False, "low") == -1.5  # a range below 0 may go further down
    assert widened("int", 1, 4, False, "high") == 6
    assert widened("int", 2, 64, True, "low") >= 1  # a log count stays positive


def test_founders_follow_parents_back_to_the_initial_population():
    frame = pd.DataFrame({"trial": [0, 1, 2, 3, 4], "pbt_parent": [None, None, 0, 2, 1]})
    assert founders(frame) == {0: 0, 1: 1, 2: 0, 3: 0, 4: 1}


def test_noise_in_a_large_early_stopping_search_is_no_slow_starter_and_no_low_correlation():
    """600 trials whose curves keep their ranking up to noise: some trials swap places by chance, which neither
    early-decision rule may take for slow starters or a step that does not predict the end."""
    from trellis.search.analysis.diagnosis.base import SearchFacts
    from trellis.search.analysis.diagnosis.budget import low_rung_correlation, slow_starters

    rng = np.random.default_rng(0)
    n, top = 600, 12
    x = rng.random(n)
    final = (x - 0.3) ** 2 + rng.normal(0, 0.01, n)
    completed = rng.random(n) < 0.4
    ids = [f"{i:032x}" for i in range(n)]
    trials = pd.DataFrame(
        {
            "run_id": ids,
            "trial": np.arange(n),
            "status": "FINISHED",
            "end_reason": np.where(completed, "completed", "early_stopped"),
            "budget_reached": np.where(completed, top, 2),
            "params.x": x,
            "metrics.loss": final,
        }
    )
    rows = [
        (ids[i], s, final[i] + 1 / s + rng.normal(0, 0.05))
        for i in range(n)
        for s in (range(1, top + 1) if completed[i] else (1, 2))
    ]
    history = pd.DataFrame(rows, columns=["run_id", "step", "value"])
    config = {
        "algorithm": {"name": "random"},
        "budget": {"min": 1, "max": top},
        "early_stopping": {"rule": "median", "step": 2},
        "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        "objective": {"metric": "loss", "direction": "min"},
    }
    facts = SearchFacts("s" * 32, "s", config, trials, "loss", "min", history)
    assert slow_starters(facts) == [] and low_rung_correlation(facts) == []


def test_findings_panel_groups_by_search_and_links_only_failed_runs():
    from trellis.layouts.diagnosis import finding_links, findings_panel

    failed = Finding("failed_trials", "a" * 32, "danger", "2 of 4 failed", "50% failed", "fix it", {}, ("r1", "r2"))
    edge = Finding("range_edge", "b" * 32, "warning", "x at edge", "3 of 3", "widen", {"space.x.high": 2.0}, ("r3",))
    runs = pd.DataFrame({"run_id": ["r1", "r2", "r3"], "experiment_id": ["7", "7", "7"]})
    labels = {"a" * 32: "first · aaaaaa", "b" * 32: "second · bbbbbb"}
    links = finding_links([failed, edge], runs, "http://ui:5000", labels)
    assert links.runs["r1"] == "http://ui:5000/#/experiments/7/runs/r1"
    text = str(findings_panel([failed, edge], links, 2).to_plotly_json())
    assert "first · aaaaaa" in text and "second · bbbbbb" in text  # a heading per search when there are several
    assert "http://ui:5000/#/experiments/7/runs/r2" in text and "/runs/r3" not in text  # only failed runs linked
    assert "space.x.high: 2.0" in text and "Search diagnosis (2)" in text
    without_ui = str(findings_panel([failed], finding_links([failed], runs, None, labels), 1).to_plotly_json())
    assert "http" not in without_ui and "r1" in without_ui  # no MLflow UI address: the ids, no broken links
    quiet = str(findings_panel([], links, 3).to_plotly_json())
    assert "nothing to change" in quiet and "3 searches" in quiet
    assert findings_panel([], links, 0).children is None  # no Trellis search: nothing at all
