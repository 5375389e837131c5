"""The search id is printed as a search starts, and any unique prefix of it names the search."""

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from tests.conftest import BASE
from trellis.cli.search_commands import ui_hint
from trellis.search.engine.resume import ResumeError, resolve_search_id
from trellis.tracking import schema


def test_the_id_and_the_stop_command_come_first_and_a_prefix_stops_it(tmp_path, store, client):
    raw = {**BASE, "space": {"x": {"low": 0.0, "high": 1.0}, "seconds": 0.5},
           "trial": {"function": "trellis.examples.synthetic:slow"}, "termination": {"max_trials": 40},
           "tracking": {"uri": store, "experiment": "ids"}}  # fmt: skip
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(raw))
    cmd = [sys.executable, "-m", "trellis.cli", "search", "run", "s.yaml", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first = proc.stdout.readline()
    assert first.startswith("search ") and " started " in first and proc.poll() is None  # still running
    search_id = first.split()[1]
    assert len(search_id) == 32 and f"trellis search stop {search_id}" in proc.stdout.readline()
    stop = subprocess.run([sys.executable, "-m", "trellis.cli", "search", "stop", search_id[:6], "--tracking-uri",
                           store], cwd=tmp_path, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert stop.returncode == 0, stop.stderr
    assert proc.wait(60) == 130
    assert client.get_run(search_id).data.tags[schema.SEARCH_STOP_REASON] == "stopped"


def test_unknown_and_ambiguous_prefixes_are_refused_clearly(store):
    client = MlflowClient(tracking_uri=store)
    exp = client.create_experiment("many")
    ids = [client.create_run(exp, tags={schema.TYPE: "search"}).info.run_id for _ in range(17)]
    first_chars = [i[0] for i in ids]
    shared = next(c for c in first_chars if first_chars.count(c) > 1)  # 17 ids, 16 hex digits
    with pytest.raises(ResumeError, match="ambiguous"):
        resolve_search_id(client, shared)
    unique = next(i for i in ids if sum(j.startswith(i[:8]) for j in ids) == 1)
    assert resolve_search_id(client, unique[:8]) == unique
    with pytest.raises(ResumeError, match="no search id starts with"):
        resolve_search_id(client, "f" * 20 if not any(i.startswith("f" * 20) for i in ids) else "0" * 20)
    with pytest.raises(ResumeError, match="not a search id"):
        resolve_search_id(client, "trial-0004")


def test_the_mlflow_ui_hint_works_as_printed():
    command = shlex.split(ui_hint("sqlite:///mlruns.db"))
    assert Path(command[0]).is_file() and command[1:4] == ["-m", "mlflow", "ui"]
