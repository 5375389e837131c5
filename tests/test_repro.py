"""Reproducibility: what every trial records (code, versions, hardware, seed), ``ctx.seed``, ``trellis rerun``."""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import random
import subprocess
import sys
from types import SimpleNamespace

import mlflow
import numpy
import pytest
from mlflow import MlflowClient

from tests.conftest import BASE, ROOT, child_runs, module_store
from trellis.cli import main
from trellis.search.config import parse_config
from trellis.search.engine import repro
from trellis.search.engine.rerun import code_changes
from trellis.search.engine.runner import run_search
from trellis.tracking import schema

SYNTHETIC = ROOT / "examples" / "synthetic.py"


def noisy_config(uri: str, seed: int = 7, trials: int = 4, workers: int = 2):
    return parse_config(
        {
            **BASE,
            "space": {"x": {"type": "float", "low": -1.0, "high": 1.0}, "noise": {"type": "fixed", "value": 0.2}},
            "algorithm": {"name": "random", "seed": seed},
            "termination": {"max_trials": trials},
            "executor": {"kind": "local", "workers": workers},
            "trial": {"function": "trellis.examples.synthetic:noisy_quadratic"},
            "tracking": {"uri": uri},
        }
    )


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """One seeded search of ``noisy_quadratic`` (4 trials), run once for the tests that read it, counting how
    often the per-search part of the tags was computed."""
    folder, uri = module_store(tmp_path_factory, "repro")
    calls = []
    real = repro.search_repro_tags
    with contextlib.chdir(folder), pytest.MonkeyPatch.context() as mp:
        mp.setattr(repro, "search_repro_tags", lambda config: calls.append(1) or real(config))
        heads = {_head()}
        result = run_search(noisy_config(uri))
        heads.add(_head())  # another commit in this tree meanwhile is fine
    return SimpleNamespace(folder=folder, uri=uri, result=result, calls=len(calls), heads=heads)


def expected_noisy(x: float, noise: float, seed: int, epochs: int) -> tuple[list[float], float]:
    """``noisy_quadratic``'s losses and final draw, recomputed here from the seed alone."""
    rng = random.Random(seed)
    base = (x - 0.3) ** 2 + (-0.5 + 0.5) ** 2
    losses = [base + 2.0**-e + abs(rng.gauss(0.0, noise)) for e in range(1, epochs + 1)]
    return losses, rng.random()


def _head() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def history(client, run_id: str, key: str = "loss") -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def test_every_trial_records_code_versions_hardware_and_its_seed(searched):
    client = MlflowClient(searched.uri)
    assert searched.calls == 1  # per search, not per trial
    runs = child_runs(client, searched.result.search_id)
    assert len(runs) == 4
    seeds = set()
    for run in runs:
        tags = run.data.tags
        assert tags[schema.CODE_FILE] == str(SYNTHETIC)
        assert tags[schema.CODE_SHA256] == hashlib.sha256(SYNTHETIC.read_bytes()).hexdigest()
        assert tags[schema.CODE_COMMIT] == tags[schema.MLFLOW_GIT_COMMIT] in searched.heads
        assert tags[schema.CODE_REPO] == str(ROOT)
        assert tags[schema.CODE_DIRTY] in ("true", "false") and tags[schema.MLFLOW_GIT_DIRTY] == tags[schema.CODE_DIRTY]
        assert tags[schema.VERSION_PREFIX + "python"] == platform.python_version()
        assert tags[schema.VERSION_PREFIX + "mlflow"] == mlflow.__version__
        assert tags[schema.VERSION_PREFIX + "numpy"] == numpy.__version__
        assert schema.VERSION_PREFIX + "trellis" in tags
        assert tags[schema.HW_CPUS] == str(os.cpu_count())
        number, seed = int(tags[schema.TRIAL_NUMBER]), int(tags[schema.SEED])
        assert seed == repro.trial_seed(7, number)
        seeds.add(seed)
        # The trial drew its noise from exactly that seed.
        losses, draw = expected_noisy(float(run.data.params["x"]), 0.2, seed, 3)
        assert [v for _, v in history(client, run.info.run_id)] == losses
        assert run.data.metrics["draw"] == draw
    assert len(seeds) == 4
    assert client.get_run(searched.result.search_id).data.tags[schema.SEED] == "7"


def test_the_same_search_seed_gives_the_same_trial_seeds(searched, store):
    def seeds(uri: str, search_id: str) -> list[int]:
        return [int(r.data.tags[schema.SEED]) for r in child_runs(MlflowClient(uri), search_id)]

    first = seeds(searched.uri, searched.result.search_id)
    again = seeds(store, run_search(noisy_config(store, seed=7, trials=2, workers=1)).search_id)
    assert again == first[:2]
    assert len(set(first)) == 4
    other = [repro.trial_seed(8, n) for n in range(4)]
    assert not set(first) & set(other)
    assert all(0 <= s < 2**32 for s in first + other)


def test_without_a_search_seed_trials_seed_from_the_search_id():
    assert repro.trial_seed("abc", 0) == repro.trial_seed("abc", 0) != repro.trial_seed("abd", 0)


def test_rerun_reproduces_a_seeded_trial_exactly_and_links_it(searched, capsys, monkeypatch):
    monkeypatch.chdir(searched.folder)
    store, client = searched.uri, MlflowClient(searched.uri)
    original = child_runs(client, searched.result.search_id)[1]
    capsys.readouterr()
    assert main(["rerun", original.info.run_id, "--tracking-uri", store]) == 0
    out = capsys.readouterr()
    assert "code changed" not in out.err
    reruns = client.search_runs([original.info.experiment_id], f"tags.`{schema.RERUN_OF}` = '{original.info.run_id}'")
    assert len(reruns) == 1
    rerun = reruns[0]
    assert rerun.info.run_id in out.out
    assert rerun.info.run_id != original.info.run_id
    assert rerun.data.params == original.data.params
    assert rerun.data.tags[schema.SEED] == original.data.tags[schema.SEED]
    assert history(client, rerun.info.run_id) == history(client, original.info.run_id)
    assert rerun.data.metrics["draw"] == original.data.metrics["draw"]
    search = client.get_run(rerun.data.tags[schema.SEARCH_ID])
    assert search.data.tags[schema.SEARCH_NAME] == "t-rerun"
    assert rerun.data.tags[schema.MLFLOW_PARENT_RUN] == search.info.run_id

    # A longer budget: the same seed gives the same first epochs, then goes on.
    assert main(["rerun", original.info.run_id, "--tracking-uri", store, "--budget", "5"]) == 0
    linked = client.search_runs([original.info.experiment_id], f"tags.`{schema.RERUN_OF}` = '{original.info.run_id}'")
    longer = next(r for r in linked if r.info.run_id != rerun.info.run_id)
    steps = history(client, longer.info.run_id)
    assert [s for s, _ in steps] == [1, 2, 3, 4, 5]
    assert steps[:3] == history(client, original.info.run_id)


TRIAL_SOURCE = """
import random


def train(ctx):
    rng = random.Random(ctx.seed)
    for epoch in ctx.steps():
        ctx.report(epoch, loss=float(ctx.params["x"]) + OFFSET + rng.random())
    return {}


OFFSET = 0.0
"""


def test_rerun_warns_when_the_trials_code_changed(make_config, client, capsys, store, tmp_path):
    (tmp_path / "my_trial.py").write_text(TRIAL_SOURCE)
    config = make_config(
        space={"x": {"type": "float", "low": 0.0, "high": 1.0}},
        termination={"max_trials": 1},
        executor={"kind": "local", "workers": 1},
        trial={"function": "my_trial:train", "workdir": str(tmp_path)},
    )
    original = child_runs(client, run_search(config).search_id)[0]
    tags = original.data.tags
    assert tags[schema.CODE_FILE] == str(tmp_path / "my_trial.py")
    assert schema.CODE_COMMIT not in tags and schema.MLFLOW_GIT_COMMIT not in tags  # not in a git repository

    capsys.readouterr()
    assert main(["rerun", original.info.run_id, "--tracking-uri", store]) == 0
    assert "warning" not in capsys.readouterr().err

    (tmp_path / "my_trial.py").write_text(TRIAL_SOURCE.replace("OFFSET = 0.0", "OFFSET = 1.0"))
    assert main(["rerun", original.info.run_id, "--tracking-uri", store]) == 0
    err = capsys.readouterr().err
    assert "warning: the trial's code changed" in err and str(tmp_path / "my_trial.py") in err
    assert tags[schema.CODE_SHA256][:12] in err
    reruns = client.search_runs([original.info.experiment_id], f"tags.`{schema.RERUN_OF}` = '{original.info.run_id}'")
    values = sorted(r.data.metrics["loss"] for r in reruns)
    assert values == pytest.approx([original.data.metrics["loss"], original.data.metrics["loss"] + 1.0])


def test_code_changes_name_commit_and_package_changes():
    recorded = {
        schema.CODE_COMMIT: "a" * 40,
        schema.CODE_SHA256: "1" * 64,
        schema.VERSION_PREFIX + "torch": "2.12.0",
    }
    now = {schema.CODE_COMMIT: "b" * 40, schema.CODE_SHA256: "1" * 64}
    lines = code_changes(recorded, now, {schema.VERSION_PREFIX + "torch": "2.13.0"})
    assert lines == [
        "the code version changed: git commit aaaaaaaaaaaa then, bbbbbbbbbbbb now",
        "torch 2.12.0 then, 2.13.0 now",
    ]
    assert code_changes(recorded, {**now, schema.CODE_COMMIT: "a" * 40}, {}) == []


def test_rerun_refuses_what_is_not_a_trial_in_one_line(searched, capsys):
    for given, said in ((searched.result.search_id, "is not a Trellis trial run"), ("not-an-id", "is not a run id")):
        assert main(["rerun", given, "--tracking-uri", searched.uri]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and said in lines[0]
    done = subprocess.run(  # as a user runs it: one line, no traceback
        [sys.executable, "-m", "trellis.cli", "rerun", "0" * 32, "--tracking-uri", searched.uri],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=searched.folder,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no run 000000") and "Traceback" not in done.stderr


def test_the_selected_runs_table_offers_each_trials_rerun_command():
    import pandas as pd

    from trellis.layouts.labels import rerun_column

    runs = pd.DataFrame({"run_id": ["a" * 32, "b" * 32], "kind": ["trial", "run"]})
    rows = [{"run_id": "a" * 32, "status": "FINISHED"}, {"run_id": "b" * 32, "status": "FINISHED"}]
    out, columns = rerun_column(rows, [{"name": "run", "id": "run"}], runs, "postgresql://me:secret@db/mlflow")
    assert out[0]["rerun"] == f"trellis rerun {'a' * 32} --tracking-uri postgresql://me:***@db/mlflow"
    assert out[1]["rerun"] is None  # not a Trellis trial: nothing to rerun
    assert columns[-1] == {"name": "re-run", "id": "rerun"}
    only_foreign = rerun_column(rows[1:], [], runs, "sqlite:///mlruns.db")
    assert only_foreign == (rows[1:], [])


def test_the_overview_shows_a_selected_trials_rerun_command(searched, monkeypatch):
    """Through the app's own callback: the selected-runs table has the command that reruns the trial."""
    import json

    from tests.test_control_page import post
    from trellis.app.factory import create_app

    monkeypatch.chdir(searched.folder)
    app = create_app(searched.uri, cache=None)
    client = app.server.test_client()
    deps = json.loads(client.get("/_dash-dependencies").data)
    trial = child_runs(MlflowClient(searched.uri), searched.result.search_id)[0]
    values = {
        "selection.data": {"experiments": [searched.result.experiment_id], "searches": []},
        "selected-runs.data": [trial.info.run_id],
        "ov-objective.value": "loss",
    }
    table = post(client, deps, "selected-runs.data", values, "ov-table.data")["ov-table"]
    assert table["data"][0]["rerun"] == f"trellis rerun {trial.info.run_id} --tracking-uri {searched.uri}"
    assert {"name": "re-run", "id": "rerun"} in table["columns"]
