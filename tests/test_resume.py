"""Interrupt a search (Ctrl-C, `trellis search stop`) and resume it: nothing finished is lost or repeated."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
from mlflow import MlflowClient

from tests.conftest import BASE, child_runs, duplicate_steps
from trellis.search.config import parse_config
from trellis.search.engine.resume import ResumeError, recorded_config
from trellis.search.engine.runner import Progress, SearchRunner
from trellis.tracking import schema

SLOW = {
    "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}, "seconds": {"type": "fixed", "value": 0.15}},
    "trial": {"function": "trellis.examples.synthetic:slow"},
    "budget": {"max": 3},
}


def interrupt_after(completed: int):
    """Raise what Ctrl-C raises in the runner's thread, right after a job starts once ``completed`` jobs ended.

    Firing on a start, not an end, makes the cut deterministic: the job just handed to a worker cannot have
    finished yet, so the interruption always kills a running job, however slow or loaded the machine is.
    """
    state = {"running": 0, "fired": False}

    def on_progress(p: Progress) -> None:
        just_started = p.running > state["running"]
        state["running"] = p.running
        if just_started and p.completed >= completed and not state["fired"]:
            state["fired"] = True
            raise KeyboardInterrupt

    return on_progress


def finished_snapshot(runs) -> dict[str, tuple]:
    return {
        r.info.run_id: (r.info.end_time, r.data.tags[schema.END_REASON])
        for r in runs
        if r.data.tags[schema.END_REASON] in ("completed", "failed")
    }


def test_interrupted_search_resumes_without_losing_or_repeating_trials(make_config, client):
    config = make_config(**SLOW, termination={"max_trials": 8}, algorithm={"name": "random", "seed": 4})
    interrupted = SearchRunner(config, on_progress=interrupt_after(3)).run()
    assert interrupted.state == "killed" and interrupted.stop_reason == "interrupted"
    before = child_runs(client, interrupted.search_id)
    killed = [r for r in before if r.data.tags[schema.END_REASON] == "killed"]
    done_before = finished_snapshot(before)
    assert len(done_before) >= 3 and killed  # two workers: one trial was cut off

    resumed_config = recorded_config(client, interrupted.search_id)
    result = SearchRunner(resumed_config, resume=interrupted.search_id).run()
    assert result.search_id == interrupted.search_id
    assert result.state == "completed" and result.stop_reason == "max_trials"
    after = child_runs(client, interrupted.search_id)
    assert {k: v for k, v in finished_snapshot(after).items() if k in done_before} == done_before  # untouched
    sampled = [r for r in after if schema.RETRY_OF not in r.data.tags]
    retries = [r for r in after if schema.RETRY_OF in r.data.tags]
    assert len(sampled) == 8  # max_trials counts configurations, not reruns
    for run in killed:  # each interrupted trial ran again once, with the same configuration
        again = [r for r in retries if r.data.tags[schema.RETRY_OF] == run.data.tags[schema.TRIAL_NUMBER]]
        assert len(again) == 1 and again[0].data.params == run.data.params
        assert again[0].data.tags[schema.END_REASON] == "completed"
    numbers = [int(r.data.tags[schema.TRIAL_NUMBER]) for r in after]
    assert sorted(numbers) == list(range(len(after)))  # numbering goes on, never reused
    parent = client.get_run(interrupted.search_id)
    assert parent.info.status == "FINISHED" and parent.data.tags[schema.SEARCH_STATE] == "completed"

    # The seeded random sequence went on where it stopped: the same configurations as one unbroken search.
    unbroken = SearchRunner(
        make_config(
            **SLOW,
            termination={"max_trials": 8},
            algorithm={"name": "random", "seed": 4},
            tracking={"experiment": "unbroken"},
        )
    ).run()
    xs = sorted(float(r.data.params["x"]) for r in child_runs(client, unbroken.search_id))
    assert sorted(float(r.data.params["x"]) for r in sampled) == pytest.approx(xs)


def test_tpe_resume_tells_the_model_what_finished(make_config, client):
    config = make_config(**SLOW, termination={"max_trials": 6}, algorithm={"name": "tpe", "seed": 1})
    interrupted = SearchRunner(config, on_progress=interrupt_after(2)).run()
    runner = SearchRunner(recorded_config(client, interrupted.search_id), resume=interrupted.search_id)
    finished = [r for r in child_runs(client, interrupted.search_id) if r.data.tags[schema.END_REASON] == "completed"]
    result = runner.run()
    assert result.state == "completed"
    told = runner.sampler.study.get_trials(deepcopy=False)
    assert sum(t.state.name == "COMPLETE" for t in told) >= len(finished) + 1


def test_a_trial_run_is_not_a_search_to_resume(make_config, client):
    result = SearchRunner(make_config(termination={"max_trials": 1})).run()
    with pytest.raises(ResumeError, match="not a Trellis search run"):
        recorded_config(client, child_runs(client, result.search_id)[0].info.run_id)


def _cli(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "trellis.cli", *args],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        **kwargs,
    )


def _wait_for_search(client: MlflowClient, done: int, timeout: float = 60.0) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        exp = client.get_experiment_by_name("cli")
        if exp is not None:
            searches = client.search_runs([exp.experiment_id], f"tags.`{schema.TYPE}` = 'search'")
            if searches:
                search_id = searches[0].info.run_id
                ended = [r for r in child_runs(client, search_id) if r.info.status != "RUNNING"]
                if len(ended) >= done:
                    return search_id
        time.sleep(0.3)
    raise AssertionError("the search did not get going")


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm", "sighup", "ctrl-c then sigterm", "trellis search stop"])
def test_cli_interrupt_then_resume(tmp_path, store, client, how):
    slower = {**SLOW["space"], "seconds": {"type": "fixed", "value": 0.5}}  # outlasts the stop command's start-up
    total = (
        20 if how == "trellis search stop" else 10
    )  # the stop command must start up and be seen before the search ends
    raw = {
        **BASE,
        **SLOW,
        "space": slower,
        "termination": {"max_trials": total},
        "tracking": {"uri": store, "experiment": "cli"},
        "executor": {"kind": "local", "workers": 2},
    }
    parse_config(raw)  # valid before it goes to the command line
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(json.loads(json.dumps(raw))))
    proc = _cli("search", "run", str(path), "--quiet", cwd=tmp_path)
    search_id = _wait_for_search(client, done=2)
    if how == "ctrl-c":
        proc.send_signal(signal.SIGINT)
    elif how in ("sigterm", "sighup"):  # what systemd, docker, Kubernetes and batch schedulers send
        proc.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGHUP)
    elif how == "ctrl-c then sigterm":  # an impatient second signal must not cut the cleanup short
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
    else:
        stopper = _cli("search", "stop", search_id, "--tracking-uri", store, cwd=tmp_path)
        assert stopper.wait(60) == 0, stopper.stdout.read()
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert f"trellis search resume {search_id}" in out
    parent = client.get_run(search_id)
    assert parent.info.status == "KILLED"
    assert parent.data.tags[schema.SEARCH_STOP_REASON] == ("stopped" if how == "trellis search stop" else "interrupted")
    assert all(r.info.status != "RUNNING" for r in child_runs(client, search_id))  # nothing left dangling

    resumed = _cli("search", "resume", search_id, "--tracking-uri", store, "--quiet", cwd=tmp_path)
    out, _ = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, out
    runs = child_runs(client, search_id)
    assert sum(schema.RETRY_OF not in r.data.tags for r in runs) == total
    assert all(r.data.tags[schema.END_REASON] in ("completed", "killed") for r in runs)
    assert client.get_run(search_id).data.tags[schema.SEARCH_STATE] == "completed"
    assert duplicate_steps(store) == []


def _signature(client: MlflowClient, search_id: str) -> list[tuple]:
    """What a budgeted search decided, per trial: its configuration, how it ended, how far it got."""
    return [
        (
            r.data.params["x"],
            r.data.tags[schema.END_REASON],
            r.data.tags[schema.BUDGET_REACHED],
            r.data.tags.get(schema.RUNG),
        )
        for r in child_runs(client, search_id)
    ]


# Cut points: mid-bracket, and as the last job of a rung starts (the whole rung then waits on the cut job).
@pytest.mark.parametrize("algorithm, cut_after", [("hyperband", 5), ("hyperband", 7), ("bohb", 5)])
def test_interrupted_budgeted_search_replays_its_brackets_and_goes_on(make_config, client, algorithm, cut_after):
    space = {"x": {"low": -1.0, "high": 1.0}, "seconds": {"type": "fixed", "value": 0.05}}
    config = make_config(
        algorithm={"name": algorithm, "eta": 3, "seed": 6},
        budget={"min": 1, "max": 9},
        termination={},
        space=space,
        trial={"function": "trellis.examples.synthetic:resumable"},
    )
    interrupted = SearchRunner(config, on_progress=interrupt_after(cut_after)).run()
    assert interrupted.state == "killed"
    before = child_runs(client, interrupted.search_id)
    cut = [r for r in before if r.data.tags[schema.END_REASON] == "killed"]
    assert cut, "the interruption should cut off a running job"

    result = SearchRunner(recorded_config(client, interrupted.search_id), resume=interrupted.search_id).run()
    assert result.state == "completed" and result.stop_reason == "exhausted"
    runs = child_runs(client, interrupted.search_id)
    errors = [r.data.tags.get(schema.ERROR) for r in runs]
    assert len(runs) == 17 and all(r.info.status == "FINISHED" for r in runs), errors  # a wrong resume step fails
    for run in runs:  # nothing ran twice: every step of every curve is logged once
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "loss")]
        assert sorted(steps) == list(range(1, int(run.data.tags[schema.BUDGET_REACHED]) + 1))
    for run in cut:
        assert next(r for r in runs if r.info.run_id == run.info.run_id).data.tags[schema.END_REASON] != "killed"
    assert duplicate_steps(config.tracking.uri) == []  # trials and the search run's best_loss alike
    if algorithm == "hyperband":  # a seeded Hyperband decides exactly as an unbroken one
        unbroken = SearchRunner(
            make_config(
                algorithm={"name": algorithm, "eta": 3, "seed": 6},
                budget={"min": 1, "max": 9},
                termination={},
                space=space,
                trial={"function": "trellis.examples.synthetic:resumable"},
                tracking={"experiment": "unbroken"},
            )
        ).run()
        assert _signature(client, interrupted.search_id) == _signature(client, unbroken.search_id)


@pytest.mark.parametrize("cut_after", [2, 5])  # within the first generation; as the second one starts
def test_interrupted_pbt_search_keeps_its_lineage(make_config, client, cut_after):
    config = make_config(
        algorithm={"name": "pbt", "seed": 1, "population_size": 4, "interval": 2, "resample_probability": 0.0},
        objective={"metric": "score", "direction": "max"},
        budget={"min": 1, "max": 6},
        termination={},
        space={"lr": {"low": 1e-4, "high": 1.0, "log": True}, "seconds": {"type": "fixed", "value": 0.05}},
        trial={"function": "trellis.examples.synthetic:pbt_member"},
    )
    unbroken = SearchRunner(config).run()
    interrupted = SearchRunner(config, on_progress=interrupt_after(cut_after)).run()
    assert interrupted.state == "killed"
    before = child_runs(client, interrupted.search_id)
    assert any(r.data.tags[schema.END_REASON] == "killed" for r in before) and len(before) < 6
    result = SearchRunner(recorded_config(client, interrupted.search_id), resume=interrupted.search_id).run()
    assert result.state == "completed"
    runs = child_runs(client, interrupted.search_id)
    assert all(r.info.status == "FINISHED" for r in runs), [r.data.tags.get(schema.ERROR) for r in runs]
    assert len(runs) == 6  # four members and one exploit in each of the two later generations
    for child in (r for r in runs if schema.PBT_PARENT in r.data.tags):
        first = min(client.get_metric_history(child.info.run_id, "inherited_from"), key=lambda m: m.step)
        assert int(first.value) == int(child.data.tags[schema.PBT_PARENT])
    for run in runs:  # nothing ran twice
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "score")]
        assert len(steps) == len(set(steps))
    assert duplicate_steps(config.tracking.uri) == []
    # A seeded PBT exploits and explores exactly as an unbroken one: same members, parents, values.
    assert _lineage(client, interrupted.search_id) == _lineage(client, unbroken.search_id)


def _lineage(client: MlflowClient, search_id: str) -> list[tuple]:
    keys = (schema.PBT_GENERATION, schema.PBT_PARENT, schema.PBT_REPLACED, schema.END_REASON, schema.BUDGET_REACHED)
    return [
        (r.data.params["lr"], *(r.data.tags.get(k) for k in keys), round(r.data.metrics["score"], 9))
        for r in child_runs(client, search_id)
    ]


def test_workers_do_not_outlive_a_killed_runner(tmp_path, store, client):
    raw = {
        **BASE,
        "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}, "seconds": 120.0},
        "trial": {"function": "trellis.examples.synthetic:silent_sleeper"},
        "termination": {"max_trials": 4},
        "tracking": {"uri": store, "experiment": "cli"},
        "executor": {"kind": "local", "workers": 2},
    }
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(json.loads(json.dumps(raw))))
    proc = _cli("search", "run", str(path), "--quiet", cwd=tmp_path)
    deadline = time.time() + 240  # a loaded machine (parallel tests) can take a minute to start the process
    while len(pid_files := list(tmp_path.glob(".trellis/checkpoints/*/*/pid"))) < 2 and time.time() < deadline:
        time.sleep(0.2)
    pids = [int(p.read_text()) for p in pid_files]
    assert len(pids) == 2, "both workers should be running a trial"
    proc.kill()  # SIGKILL: no cleanup at all in the runner
    proc.wait(10)
    deadline = time.time() + 10
    while any(_alive(pid) for pid in pids) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in pids), "a worker lived on after its runner died"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie waiting for its reaper is gone for our purpose
        return fh.read().split()[2] != "Z"
