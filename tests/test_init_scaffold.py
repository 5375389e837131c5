"""``trellis init``: a dry run of the trial gives a config that validates and runs."""

from __future__ import annotations

import builtins
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import yaml
from mlflow import MlflowClient

from tests.conftest import ROOT, child_runs, module_store
from trellis.cli import main
from trellis.search.engine.scaffold import ParamFound, ProbeResult, parse_answer, pick_objective, propose
from trellis.search.engine.trial_probe import RecordingParams

EXAMPLES = ROOT / "examples"


# -- pure parts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("found", "proposal"),
    [
        (ParamFound("lr", 1e-3), {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}),
        (ParamFound("momentum", 0.9), {"type": "float", "low": 0.45, "high": 0.99}),
        (ParamFound("eps", 1e-8), {"type": "float", "low": 1e-9, "high": 1e-7, "log": True}),
        (ParamFound("weight_decay", 0.0), {"type": "float", "low": 1e-6, "high": 1e-2, "log": True}),
        (ParamFound("dropout", 0.0), {"type": "float", "low": 0.0, "high": 0.5}),
        (ParamFound("y", -0.5), {"type": "float", "low": -1.5, "high": 0.5}),
        (ParamFound("hidden", 64), {"type": "int", "low": 16, "high": 256, "log": True}),
        (ParamFound("layers", 1), {"type": "int", "low": 1, "high": 4}),
        (ParamFound("shuffle", True), {"type": "categorical", "choices": [True, False]}),
        (ParamFound("optimizer", "adam"), {"type": "fixed", "value": "adam"}),
        (ParamFound("x", None, "float", required=True), {"type": "float", "low": 0.0, "high": 1.0}),
        (ParamFound("lr", None, "float", required=True), {"type": "float", "low": 1e-5, "high": 1.0, "log": True}),
        (ParamFound("units", None, "int", required=True), {"type": "int", "low": 1, "high": 8}),
        (ParamFound("train_size", None), None),  # `.get(key)` alone: optional, nothing to start from
        (ParamFound("kind", None, "str", required=True), None),
    ],
)
def test_proposed_ranges(found, proposal):
    assert propose(found) == proposal


def test_recording_params_note_keys_defaults_and_conversions():
    params = RecordingParams({"given": 3})
    assert params.get("lr", 0.01) == 0.01
    assert params["given"] == 3
    assert int(params["units"]) == 1 and float(params["x"]) == 0.5 and str(params["kind"]) == ""
    assert params.get("optional") is None
    uses = params.uses
    assert uses["lr"] == {"name": "lr", "default": 0.01}
    assert uses["given"]["default"] == 3
    assert (uses["units"]["kind"], uses["x"]["kind"], uses["kind"]["kind"]) == ("int", "float", "str")
    assert uses["units"]["required"] and "default" not in uses["optional"]


def test_objective_is_a_validation_metric_and_losses_are_minimised():
    probe = ProbeResult([], ["train_loss", "val_loss", "val_accuracy"], ["n_params"])
    assert pick_objective(probe, None, None) == ("val_loss", "min")
    assert pick_objective(probe, "val_accuracy", None) == ("val_accuracy", "max")
    assert pick_objective(probe, "latency_ms", "max") == ("latency_ms", "max")


def test_interactive_answers():
    current = {"type": "int", "low": 1, "high": 4}
    assert parse_answer("", current) is current
    assert parse_answer("-", current) is None
    assert parse_answer("2 16 log", current) == {"type": "int", "low": 2, "high": 16, "log": True}
    assert parse_answer("0.5 2", current) == {"type": "float", "low": 0.5, "high": 2.0}
    assert parse_answer("relu, tanh", current) == {"type": "categorical", "choices": ["relu", "tanh"]}
    assert parse_answer("fixed 3", current) == {"type": "fixed", "value": 3}
    with pytest.raises(ValueError):
        parse_answer("3 1", current)


# -- on the examples, end to end ------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One store for the end-to-end tests (each search goes to its own experiment, named after the trial)."""
    folder, uri = module_store(tmp_path_factory, "init")
    return SimpleNamespace(folder=folder, uri=uri, client=MlflowClient(uri))


def _runs_two_trials(path, shared) -> list:
    assert main(["search", "validate", str(path)]) == 0
    assert main(["search", "run", str(path), "--quiet"]) == 0
    experiment = shared.client.get_experiment_by_name(yaml.safe_load(path.read_text())["tracking"]["experiment"])
    searches = shared.client.search_runs([experiment.experiment_id], "tags.`trellis.type` = 'search'")
    assert len(searches) == 1
    trials = child_runs(shared.client, searches[0].info.run_id)
    assert len(trials) == 2
    return trials


def test_init_on_a_function_trial_without_a_terminal(shared, tmp_path, monkeypatch):
    monkeypatch.chdir(shared.folder)
    store = shared.uri
    out = tmp_path / "quadratic.yaml"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "trellis.cli",
            "init",
            "--trial",
            "trellis.examples.synthetic:quadratic",
            "--out",
            str(out),
        ]
        + ["--budget", "2", "--max-trials", "2", "--tracking-uri", store],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert f"wrote {out}" in done.stdout
    config = yaml.safe_load(out.read_text())
    assert set(config["space"]) == {"shape", "x", "y", "z", "units"}  # every key quadratic reads
    assert config["space"]["units"] == {"type": "int", "low": 1, "high": 4}
    assert config["objective"] == {"metric": "loss", "direction": "min"}
    assert config["record"] == ["accuracy", "n_params"]
    trials = _runs_two_trials(out, shared)
    assert all(r.info.status == "FINISHED" and "loss" in r.data.metrics for r in trials)
    assert (
        main(["init", "--trial", "trellis.examples.synthetic:quadratic", "--out", str(out), "--no-input"]) == 2
    )  # exists


def test_init_on_the_digits_mlp(shared, tmp_path, monkeypatch):
    monkeypatch.chdir(shared.folder)
    store = shared.uri
    out = tmp_path / "mlp.yaml"
    argv = ["init", "--trial", "trellis.examples.digits_mlp:train", "--out", str(out), "--no-input"]
    assert main(argv + ["--budget", "1", "--max-trials", "2", "--tracking-uri", store]) == 0
    config = yaml.safe_load(out.read_text())
    assert config["space"]["lr"] == {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}
    assert config["space"]["hidden"] == {"type": "int", "low": 16, "high": 256, "log": True}
    assert "train_size" not in config["space"]  # read with .get() and no default
    assert config["objective"] == {"metric": "val_accuracy", "direction": "max"}
    assert {"val_loss", "n_params", "latency_ms"} <= set(config["record"])
    trials = _runs_two_trials(out, shared)
    assert all(0.0 < r.data.metrics["val_accuracy"] <= 1.0 for r in trials)


def test_init_on_a_script_trial(shared, tmp_path, monkeypatch):
    monkeypatch.chdir(shared.folder)
    store = shared.uri
    out = tmp_path / "script.yaml"
    argv = ["init", "--script", str(EXAMPLES / "synthetic_script.py"), "--out", str(out), "--no-input"]
    assert main(argv + ["--budget", "2", "--max-trials", "2", "--tracking-uri", store]) == 0
    config = yaml.safe_load(out.read_text())
    assert config["space"] == {"x": {"type": "float", "low": 0.0, "high": 1.0}}  # params["x"], as float
    assert config["objective"] == {"metric": "loss", "direction": "min"} and config["record"] == ["n_params"]
    assert config["trial"] == {"script": str(EXAMPLES / "synthetic_script.py")}
    trials = _runs_two_trials(out, shared)
    assert all("loss" in r.data.metrics for r in trials)


def test_init_from_a_script_sample_takes_its_values_as_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sample = tmp_path / "sample.json"
    sample.write_text('{"params": {"x": 0.4, "hidden": 32}}')
    out = tmp_path / "s.yaml"
    argv = ["init", "--script", str(EXAMPLES / "synthetic_script.py"), "--sample", str(sample), "--out", str(out)]
    assert main([*argv, "--no-input"]) == 0
    space = yaml.safe_load(out.read_text())["space"]
    assert space["x"] == {"type": "float", "low": 0.2, "high": 0.8}
    assert space["hidden"] == {"type": "int", "low": 8, "high": 128, "log": True}  # in the sample, never read


def test_init_asks_at_a_terminal(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    answers = iter(["bowl,ridge", "-1 1", "", "-", "fixed 2", "accuracy", ""])
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(builtins, "input", lambda prompt="": next(answers))
    assert main(["init", "--trial", "trellis.examples.synthetic:quadratic", "--out", "q.yaml"]) == 0
    config = yaml.safe_load((tmp_path / "q.yaml").read_text())
    assert config["space"] == {
        "shape": {"type": "categorical", "choices": ["bowl", "ridge"]},
        "x": {"type": "float", "low": -1.0, "high": 1.0},
        "y": {"type": "float", "low": -1.5, "high": 0.5},
        "units": {"type": "fixed", "value": 2},
    }
    assert config["objective"] == {"metric": "accuracy", "direction": "max"}
    assert config["record"] == ["loss", "n_params"]


def test_init_refuses_bad_input_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["init", "--trial", "no_colon_here", "--no-input"]) == 2
    assert main(["init", "--script", "missing.py", "--no-input"]) == 2
    assert main(["init", "--trial", "no_such_module_xyz:train", "--no-input"]) == 1
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("dry run")]
    assert err[0].startswith("error: --trial 'no_colon_here'") and err[1] == "error: --script missing.py: no such file"
    assert err[2] == (
        "error: the dry run failed before reading any parameter: "
        "ModuleNotFoundError: No module named 'no_such_module_xyz'"
    )
    assert len(err) == 3
