"""One import name, and a user's project that shadows nothing: the package list, no folder put first on
``sys.path``, trial modules found in the project without hiding Trellis or the standard library, and a worker
that dies before its trial says why."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import ROOT
from trellis.search.config import ConfigError, TrialSpec, load_config
from trellis.search.config.trial_module import find_trial_module
from trellis.search.trial import resolve_function
from trellis.tracking import schema

PACKAGED = {"trellis": "trellis", "app": "trellis.app", "search": "trellis.search", "tracking": "trellis.tracking"}
PACKAGED |= {"layouts": "trellis.layouts", "examples": "trellis.examples", "assets": "trellis.assets"}


def test_every_package_folder_is_in_the_wheel_under_trellis():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = set()
    for folder, name in PACKAGED.items():
        assert setuptools["package-dir"][name] == folder
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([name, *rel.parts]))
    assert found == set(setuptools["packages"])


def test_no_code_puts_a_folder_first_on_sys_path():
    offenders = []
    for folder in PACKAGED:
        for path in (ROOT / folder).rglob("*.py"):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if re.search(r"sys\.path\.insert\(\s*0", line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}")
    # ``trellis init``'s probe runs a user's script as ``python script.py`` would: its own folder first.
    assert all(o.startswith("search/engine/trial_probe.py:") for o in offenders), offenders


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's folder with modules named like Trellis' folders and a standard-library module, each raising."""
    for name in ("search", "tracking", "app", "json", "trellis"):
        (tmp_path / f"{name}.py").write_text(f"raise RuntimeError('the project shadowed {name}')\n")
    (tmp_path / "helpers.py").write_text("OFFSET = 0.5\n")
    (tmp_path / "mytrial.py").write_text(
        "import json\nfrom helpers import OFFSET\n\ndef train(ctx):\n    return json.dumps({'x': OFFSET})\n"
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_trial_module_in_the_project_imports_its_siblings_and_hides_nothing(project: Path):
    func = resolve_function(TrialSpec(function="mytrial:train"))
    assert func(None) == '{"x": 0.5}'  # the real json, the project's helpers
    import json

    assert Path(json.__file__).parent != project and "search" not in sys.modules


def test_a_trial_module_beside_the_config_is_found_from_another_folder(tmp_path: Path, monkeypatch):
    home = tmp_path / "proj"
    home.mkdir()
    (home / "beside.py").write_text("def train(ctx):\n    return 7\n")
    config = home / "c.yaml"
    config.write_text(
        "objective: {metric: loss}\nspace: {x: {type: float, low: 0, high: 1}}\n"
        "termination: {max_trials: 1}\ntrial: {function: 'beside:train'}\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    spec = load_config(config).trial
    assert find_trial_module(spec).origin == str(home / "beside.py")
    assert resolve_function(spec)(None) == 7
    # stored with the search (the config's source), so an agent elsewhere finds it too
    assert load_config(config).to_dict()["source"] == str(config.resolve())


def test_a_trial_module_that_imports_what_is_not_installed_is_refused_with_its_name(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "needs.py").write_text("import surely_not_installed_xyz\n\ndef train(ctx):\n    pass\n")
    config = tmp_path / "c.yaml"
    config.write_text(
        "objective: {metric: loss}\nspace: {x: {type: float, low: 0, high: 1}}\n"
        "termination: {max_trials: 1}\ntrial: {function: 'needs:train'}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert "trial.function: module 'needs' imports 'surely_not_installed_xyz', which is not installed here" in str(
        err.value
    )


RUN_PY = """
import multiprocessing

if multiprocessing.current_process().name != "MainProcess":  # this script cannot start in a worker process
    raise ImportError("no module named 'gpu_only_lib' (imported by run.py)")

if __name__ == "__main__":
    import trellis

    trellis.run_search({CONFIG!r})
"""


def test_a_worker_that_dies_before_its_trial_stores_the_real_error_line(tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'runs.db'}"
    config = {
        "name": "dies",
        "objective": {"metric": "loss", "direction": "min"},
        "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        "termination": {"max_trials": 2},
        "executor": {"kind": "local", "workers": 1},
        "trial": {"function": "trellis.examples.synthetic:quadratic"},
        "tracking": {"uri": uri, "experiment": "dies"},
    }
    (tmp_path / "run.py").write_text(RUN_PY.replace("{CONFIG!r}", repr(config)))
    done = subprocess.run([sys.executable, "run.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert "gpu_only_lib" in done.stderr  # the runner's terminal shows it as it happens
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("dies").experiment_id
    trials = client.search_runs([exp], f"tags.`{schema.TYPE}` = 'trial'")
    assert len(trials) == 2 and {t.info.status for t in trials} == {"FAILED"}
    for trial in trials:
        assert "ImportError: no module named 'gpu_only_lib'" in trial.data.tags[schema.ERROR]
        tail = Path(client.download_artifacts(trial.info.run_id, schema.STDERR_ARTIFACT, str(tmp_path))).read_text()
        assert "ImportError: no module named 'gpu_only_lib' (imported by run.py)" in tail
        assert "exited with code 1" in tail


def test_a_module_over_400_lines_says_why_in_its_docstring():
    import ast

    unexplained = []
    for folder in PACKAGED:
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            if text.count("\n") > 400 and "Over 400 lines" not in (ast.get_docstring(ast.parse(text)) or ""):
                unexplained.append(str(path.relative_to(ROOT)))
    assert unexplained == []
