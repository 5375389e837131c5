import json
from pathlib import Path

import pytest

from tests.conftest import BASE, ROOT
from trellis.cli import main
from trellis.search.config import ConfigError, load_config, parse_config

EXAMPLE_CONFIGS = sorted((ROOT / "examples" / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLE_CONFIGS, ids=lambda p: p.name)
def test_example_configs_are_valid_and_round_trip(path):
    config = load_config(path)
    again = parse_config(config.to_dict())
    assert again.to_dict() == config.to_dict()


def test_shorthands_and_aliases():
    raw = {
        **BASE,
        "objective": {"metric": "acc", "direction": "maximize"},
        "space": {"a": {"low": 1, "high": 5}, "b": {"low": 0, "high": 0.5}, "c": {"choices": [1, 2]}, "d": "const"},
    }
    c = parse_config(raw)
    assert c.objective.direction == "max"
    assert [p.kind for p in c.space] == ["int", "float", "categorical", "fixed"]


def _problems(raw) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    return dict(info.value.problems)


@pytest.mark.parametrize(
    "change, path, reason",
    [
        ({"objective": {"direction": "up"}}, "objective.metric", "required"),
        ({"objective": {"metric": "loss", "direction": "up"}}, "objective.direction", "'max' or 'min'"),
        ({"space": {"lr": {"type": "float", "low": 0.1, "high": 0.01}}}, "space.lr.high", "greater than low"),
        ({"space": {"lr": {"type": "float", "low": 0.0, "high": 1.0, "log": True}}}, "space.lr.low", "> 0 on a log"),
        ({"space": {"lr": {"type": "float", "low": "a", "high": 1.0}}}, "space.lr.low", "must be a number"),
        ({"space": {"o": {"type": "categorical", "choices": []}}}, "space.o.choices", "non-empty"),
        ({"space": {"o": {"type": "weird"}}}, "space.o.type", "float, int, categorical, fixed or architecture"),
        ({"space": {"m": {"low": 0.0, "high": 1.0, "when": {"nope": "x"}}}}, "space.m.when.nope", "not in the space"),
        ({"space": {"o": [1, 2]}}, "space.o", "ambiguous"),
        ({"algorithm": {"name": "genetic"}}, "algorithm.name", "must be one of"),
        ({"algorithm": {"name": "random", "points": 3}}, "algorithm.points", "not a setting of 'random'"),
        ({"algorithm": {"name": "tpe", "n_startup_trials": "ten"}}, "algorithm.n_startup_trials", "must be int"),
        ({"budget": {"min": 5, "max": 2}}, "budget.min", "<= budget.max"),
        ({"termination": {}}, "termination", "never end"),
        ({"termination": {"max_trials": -3}}, "termination.max_trials", "> 0"),
        ({"executor": {"kind": "slurm"}}, "executor.kind", "must be one of"),
        ({"executor": {"workers": 0}}, "executor.workers", "> 0"),
        ({"trial": {"function": "no_colon"}}, "trial.function", "package.module:function"),
        ({"trial": {"function": "a:b", "script": "x.py"}}, "trial", "exactly one"),
        ({"trial": {"function": "not_a_module_anywhere:f"}}, "trial.function", "cannot find module"),
        ({"trial": {"script": "/nonexistent/train.py"}}, "trial.script", "no such file"),
        ({"trial": {"entry_point": "not-registered"}}, "trial.entry_point", "not registered"),
        ({"colour": "blue"}, "colour", "unknown key"),
        ({"space": {"l*r": {"low": 0.0, "high": 1.0}}}, "space.l*r", "MLflow's rule"),
    ],
)
def test_bad_config_is_refused_with_path_and_reason(change, path, reason):
    problems = _problems({**BASE, **change})
    assert path in problems, problems
    assert reason in problems[path]


def test_every_problem_is_reported_at_once():
    problems = _problems({**BASE, "executor": {"workers": 0}, "budget": {"min": 0}, "objective": {}})
    assert {"executor.workers", "budget.min", "objective.metric"} <= set(problems)


def test_yaml_syntax_error_is_refused(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("space: {x: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_json_config_and_relative_script_path(tmp_path: Path):
    (tmp_path / "train.py").write_text("print('hi')\n")
    raw = {**BASE, "trial": {"script": "train.py"}}
    path = tmp_path / "s.json"
    path.write_text(json.dumps(raw))
    config = load_config(path)
    assert config.trial.script == str(tmp_path / "train.py")


def test_cli_refuses_bad_config_before_running(tmp_path: Path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("objective: {metric: loss}\nspace: {x: {low: 1, high: 0}}\ntrial: {function: 'a:b'}\n")
    db = tmp_path / "never.db"
    assert main(["search", "run", str(bad), "--tracking-uri", f"sqlite:///{db}"]) == 2
    err = capsys.readouterr().err
    assert "space.x.high" in err and "termination" in err
    assert not db.exists()  # nothing ran, no store was created
