"""Trellis as a user installs it: the wheel built from this checkout, installed (not editable) into a fresh venv
whose PATH has a ``swig`` and a C++ compiler that fail, used from the user's own project folder, which has its
own ``app.py``, ``search.py``, ``tracking.py``, ``layouts/`` and ``examples/`` (each raising on import) beside
the user's trial module. Nothing of the user's may be shadowed, nothing of Trellis' may be hidden."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import zipfile

import pytest
from mlflow import MlflowClient

from tests.browser import free_port
from tests.conftest import ROOT

RAISES = 'raise RuntimeError("the user\'s own {name} was imported")\n'
TRIAL = """
import math

from helpers import shifted  # a sibling module of the user's project


def train(ctx):
    x, y = ctx.params["x"], ctx.params["y"]
    for step in ctx.steps():
        ctx.report(step, loss=shifted(x) ** 2 + (y - 0.1) ** 2 + 1.0 / step, other=math.pi)
"""
CONFIG = {
    "name": "user-search",
    "objective": {"metric": "loss", "direction": "min"},
    "space": {"x": {"type": "float", "low": -1.0, "high": 1.0}, "y": {"type": "float", "low": -1.0, "high": 1.0}},
    "algorithm": {"name": "random", "seed": 3},
    "budget": {"resource": "epochs", "min": 1, "max": 2},
    "termination": {"max_trials": 6},
    "executor": {"kind": "local", "workers": 2},
    "trial": {"function": "mytrial:train"},
    "tracking": {"uri": "sqlite:///runs.db", "experiment": "user-exp"},
}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory):
    """(venv python, env, project folder): the core wheel, no extras."""
    base = tmp_path_factory.mktemp("wheel")
    dist = base / "dist"
    command = [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)]
    built = subprocess.run([*command, "--no-isolation"], capture_output=True, text=True, timeout=600)
    if built.returncode != 0:  # this venv lacks the build requirements (setuptools>=68): an isolated build
        built = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = dist.glob("trellis_hpo-*.whl")
    failing = base / "failing-tools"
    failing.mkdir()
    for tool in ("swig", "swig4.0", "gcc", "g++", "cc", "c++"):
        (failing / tool).write_text('#!/bin/sh\necho "$0: not here" >&2\nexit 1\n')
        (failing / tool).chmod(0o755)
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    env = {
        "PATH": f"{failing}:{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", str(base)),
        "LANG": "C.UTF-8",
        "GIT_PYTHON_REFRESH": "quiet",
    }
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
    )
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
    project = base / "project"
    project.mkdir()
    for name in ("app.py", "search.py", "tracking.py"):
        (project / name).write_text(RAISES.format(name=name))
    for package in ("layouts", "examples"):
        (project / package).mkdir()
        (project / package / "__init__.py").write_text(RAISES.format(name=f"{package}/"))
    (project / "helpers.py").write_text("def shifted(x):\n    return x - 0.2\n")
    (project / "mytrial.py").write_text(TRIAL)
    (project / "search.yaml").write_text(json.dumps(CONFIG))
    return venv / "bin" / "python", env, project, wheel


def _run(installed, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    python, env, project, _ = installed
    return subprocess.run(
        [str(python.parent / "trellis"), *args], cwd=project, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_the_wheel_adds_one_import_name_and_ships_its_static_files(installed):
    _, _, _, wheel = installed
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"trellis"}
    for shipped in ("assets/00-bootstrap.min.css", "assets/glyphs.css", "examples/configs/digits_mlp_tpe.yaml"):
        assert f"trellis/{shipped}" in names


def test_import_trellis_from_a_project_with_its_own_app_and_search(installed):
    python, env, project, _ = installed
    code = "import trellis, trellis.app.factory, trellis.search.engine.runner; print(trellis.TrialContext.__module__)"
    done = subprocess.run([str(python), "-c", code], cwd=project, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "trellis.search.trial"


def test_validate_run_submit_and_agent_from_the_users_folder(installed):
    python, env, project, _ = installed
    checked = _run(installed, "search", "validate", "search.yaml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    scaffold = _run(installed, "init", "--trial", "mytrial:train", "--out", "init.yaml", "--no-input")
    assert scaffold.returncode == 0, scaffold.stdout + scaffold.stderr
    assert _run(installed, "search", "validate", "init.yaml").returncode == 0
    ran = _run(installed, "search", "run", "search.yaml", "--quiet")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    search_id = re.search(r"search ([0-9a-f]{32}) completed", ran.stdout).group(1)
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'runs.db'}")
    assert _trial_statuses(client, search_id) == ["FINISHED"] * 6

    submitted = _run(installed, "search", "submit", "search.yaml")
    assert submitted.returncode == 0, submitted.stderr
    queued = re.search(r"search ([0-9a-f]{32}) waits", submitted.stdout).group(1)
    agent = subprocess.Popen(
        [
            str(python.parent / "trellis"),
            "agent",
            "--tracking-uri",
            "sqlite:///runs.db",
            "--poll",
            "0.5",
            "--allow-trial",
            "mytrial:train",
        ],  # agents run only allowed trials
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and client.get_run(queued).info.status not in ("FINISHED", "FAILED"):
            time.sleep(1)
        assert client.get_run(queued).info.status == "FINISHED", client.get_run(queued).data.tags.get("trellis.error")
        assert _trial_statuses(client, queued) == ["FINISHED"] * 6
    finally:
        agent.terminate()
        out, _ = agent.communicate(timeout=60)
    assert "Traceback" not in out


def _trial_statuses(client: MlflowClient, search_id: str) -> list[str]:
    exp = client.get_run(search_id).info.experiment_id
    runs = client.search_runs([exp], f"tags.`trellis.search_id` = '{search_id}' and tags.`trellis.type` = 'trial'")
    return sorted(r.info.status for r in runs)


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["one-process", "gunicorn"])
def test_serve_answers_with_the_same_stylesheets_as_the_checkout(installed, workers):
    python, env, project, _ = installed
    if not (project / "runs.db").exists():
        ran = _run(installed, "search", "run", "search.yaml", "--quiet")
        assert ran.returncode == 0, ran.stderr
    queued = None
    if not workers:  # the agent beside the app runs the user's own trial when serve allows it
        submitted = _run(installed, "search", "submit", "search.yaml")
        queued = re.search(r"search ([0-9a-f]{32}) waits", submitted.stdout).group(1)
    port = free_port()
    serve = subprocess.Popen(
        [str(python.parent / "trellis"), "serve", "--tracking-uri", "sqlite:///runs.db", "--port", str(port),
         "--allow-trial", "mytrial:train", *workers],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        page = _get_when_up(f"http://127.0.0.1:{port}/", serve)
        sheets = re.findall(r'<link[^>]+href="(/assets/[^"]+\.css[^"]*)"', page)
        assert any("00-bootstrap.min.css" in s for s in sheets), page[:2000]
        for sheet in sheets:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{sheet}", timeout=10) as resp:
                assert resp.status == 200
                body = resp.read()
            name = sheet.split("/assets/")[1].split("?")[0]
            assert body == (ROOT / "assets" / name).read_bytes()  # styled exactly like the checkout
        if queued:
            client = MlflowClient(tracking_uri=f"sqlite:///{project / 'runs.db'}")
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and client.get_run(queued).info.status not in ("FINISHED", "FAILED"):
                time.sleep(1)
            assert _trial_statuses(client, queued) == ["FINISHED"] * 6, client.get_run(queued).data.tags
    finally:
        serve.terminate()
        out, _ = serve.communicate(timeout=90)
    assert "Traceback" not in out and "imported" not in out, out[-3000:]


def _get_when_up(url: str, proc: subprocess.Popen, timeout_s: float = 120) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.read().decode()
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer in {timeout_s} s")


@pytest.mark.parametrize(
    ("change", "line"),
    [
        (
            {"algorithm": {"name": "bohb"}, "budget": {"resource": "epochs", "min": 1, "max": 9}, "termination": {}},
            "algorithm.name: bohb needs the 'bohb' extra: pip install \"trellis-hpo[bohb]\"",
        ),
        (
            {"executor": {"kind": "dask", "workers": 1}},
            "executor.kind: dask needs the 'dask' extra: pip install \"trellis-hpo[dask]\"",
        ),
        (
            {"trial": {"entry_point": "digits-mlp"}},
            "trial.entry_point: trial 'digits-mlp' needs the 'torch' extra: pip install \"trellis-hpo[torch]\"",
        ),
        (
            {"tracking": {"uri": "postgresql://nobody@127.0.0.1:1/none"}},
            "tracking.uri: a postgresql:// store needs the 'team' extra: pip install \"trellis-hpo[team]\"",
        ),
    ],
)
def test_a_missing_extra_is_one_line_at_validation(installed, change, line):
    _, _, project, _ = installed
    path = project / f"extra-{abs(hash(line))}.yaml"
    path.write_text(json.dumps({**CONFIG, **change}))
    done = _run(installed, "search", "validate", path.name)
    assert done.returncode == 2
    assert line in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_a_missing_extra_of_a_command_is_one_line(installed):
    demo = _run(installed, "demo", "--tracking-uri", "sqlite:///demo.db", "--no-serve")
    assert demo.returncode == 2
    assert demo.stderr.strip() == "error: trellis demo needs the 'torch' extra: pip install \"trellis-hpo[torch]\""
    redis = _run(installed, "serve", "--tracking-uri", "sqlite:///runs.db", "--cache", "redis://127.0.0.1:1/0")
    assert redis.returncode == 2 and "Traceback" not in redis.stderr
    assert redis.stderr.strip().endswith(
        "a redis:// run cache needs the 'team' extra: pip install \"trellis-hpo[team]\""
    )
    python, env, project, _ = installed
    users = subprocess.run(
        [str(python.parent / "trellis"), "serve", "--tracking-uri", "sqlite:///runs.db", "--no-agent"],
        cwd=project,
        env={**env, "TRELLIS_USERS_FILE": str(project / "users")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert users.returncode == 2 and "Traceback" not in users.stderr
    assert "a users file (sign-in with hashed passwords) needs the 'team' extra" in users.stderr
