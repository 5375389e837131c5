"""GPUs and CPUs per trial: fake GPU ids on this CPU machine, real searches into a SQLite store.

Each trial (tests/resource_trials.py) writes the ``CUDA_VISIBLE_DEVICES`` and CPU affinity it saw with its
start and end time; the tests check that against what the config allows and against the ``trellis.gpu`` tag.
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import os
import shutil
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import BASE, child_runs, module_store
from tests.resource_trials import SEEN
from trellis.search.config import ConfigError, parse_config
from trellis.search.engine.runner import run_search
from trellis.search.executors import resources
from trellis.search.executors.resources import Place, plan_places
from trellis.tracking import schema
from trellis.tracking.reader import read_runs

ROOT = Path(__file__).resolve().parent.parent
RECORD = {"function": "tests.resource_trials:record"}


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory):
    """One SQLite store for the file's searches (each in its own experiment): a store costs seconds to create."""
    return module_store(tmp_path_factory, "resources")


@pytest.fixture
def client(shared_store):
    return MlflowClient(tracking_uri=shared_store[1])


@pytest.fixture
def make_config(shared_store, monkeypatch, request):
    """Like conftest's, on the shared store, run from its folder (checkpoints land there)."""
    folder, uri = shared_store
    monkeypatch.chdir(folder)

    def make(**changes):
        raw = copy.deepcopy(BASE)
        raw.update(copy.deepcopy(changes))
        raw["tracking"] = {"uri": uri, "experiment": request.node.name[:200]}
        return parse_config(raw)

    return make


def seen_by_trial(client, search_id: str) -> dict[int, dict]:
    """Trial number -> what it recorded (absent for a trial that died first), with its run's tags and status."""
    out = {}
    for run in child_runs(client, search_id):
        number = int(run.data.tags[schema.TRIAL_NUMBER])
        path = Path(run.data.tags[schema.CHECKPOINT]) / SEEN
        seen = json.loads(path.read_text()) if path.exists() else {}
        out[number] = {**seen, "tags": run.data.tags, "status": run.info.status, "run_id": run.info.run_id}
    return out


def overlapping(a: dict, b: dict) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]


def most_at_once(records: list[dict]) -> int:
    edges = sorted([(r["start"], 1) for r in records] + [(r["end"], -1) for r in records])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def test_each_trial_sees_one_gpu_never_shared_and_a_dead_trial_frees_its_gpu(make_config, client, shared_store):
    config = make_config(
        space={"x": {"low": -1.0, "high": 1.0}, "die_at": 2},
        termination={"max_trials": 6},
        budget={"max": 1},
        executor={"kind": "local", "workers": 4, "gpus": [0, 1], "per_gpu": 1},
        trial=RECORD,
    )
    result = run_search(config)
    trials = seen_by_trial(client, result.search_id)
    assert len(trials) == 6
    dead = trials.pop(2)
    assert dead["status"] == "FAILED" and "worker process died" in dead["tags"][schema.ERROR]
    assert dead["tags"][schema.GPU] in {"0", "1"}  # placed before it died
    for t in trials.values():
        assert t["status"] == "FINISHED"
        assert t["cuda"] in {"0", "1"}, t  # exactly one id, one of the configured ones
        assert t["tags"][schema.GPU] == t["cuda"]  # the tag says what the trial saw
    for a, b in itertools.combinations(trials.values(), 2):
        if overlapping(a, b):
            assert a["cuda"] != b["cuda"], (a, b)
    assert most_at_once(list(trials.values())) <= 2  # min(workers 4, 2 GPUs x per_gpu 1)
    # The dead trial's GPU went on serving: later trials ran on it, in a fresh worker process.
    died_at = float(dead["tags"][schema.ENDED_AT])
    after = [t for t in trials.values() if t["cuda"] == dead["cuda"] and t["start"] > died_at]
    assert after and all(t["pid"] != dead["pid"] for t in after)
    # The app's run table reads the tag: the GPU column the overview shows.
    table = read_runs(shared_store[1], [result.experiment_id])
    gpu_of = dict(zip(table.trials["run_id"], table.trials["gpu"], strict=True))
    assert all(gpu_of[t["run_id"]] == t["cuda"] for t in [*trials.values(), dead])


def test_per_gpu_two_allows_two_trials_on_a_gpu_and_a_script_trial_sees_its_gpu(make_config, client):
    config = make_config(
        space={"x": {"low": -1.0, "high": 1.0}},
        termination={"max_trials": 4},
        budget={"max": 1},
        executor={"kind": "local", "workers": 3, "gpus": "7", "per_gpu": 2},
        trial={"script": str(ROOT / "tests" / "resource_trials.py"), "workdir": str(ROOT)},
    )
    result = run_search(config)
    trials = seen_by_trial(client, result.search_id)
    assert len(trials) == 4 and {t["status"] for t in trials.values()} == {"FINISHED"}
    assert {t["cuda"] for t in trials.values()} == {"7"}  # a script trial inherits its worker's GPU
    assert {t["tags"][schema.GPU] for t in trials.values()} == {"7"}
    assert most_at_once(list(trials.values())) <= 2  # min(workers 3, 1 GPU x per_gpu 2)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs")
def test_cpus_per_trial_pins_disjoint_cpu_sets_and_gpus_auto_runs_without_gpus(make_config, client, monkeypatch):
    """On this CPU-only machine ``gpus: auto`` finds none: the search runs, no trial gets a GPU or the tag."""
    resources.detect_gpus.cache_clear()
    cpu_only(monkeypatch)
    usable = set(os.sched_getaffinity(0))
    config = make_config(
        space={"x": {"low": -1.0, "high": 1.0}},
        termination={"max_trials": 4},
        budget={"max": 1},
        executor={"kind": "local", "workers": 2, "cpus_per_trial": 1, "gpus": "auto"},
        trial=RECORD,
    )
    result = run_search(config)
    resources.detect_gpus.cache_clear()
    trials = list(seen_by_trial(client, result.search_id).values())
    assert len(trials) == 4 and {t["status"] for t in trials} == {"FINISHED"}
    for t in trials:
        assert len(t["cpus"]) == 1 and set(t["cpus"]) <= usable
        assert t["cuda"] is None and schema.GPU not in t["tags"]
    for a, b in itertools.combinations(trials, 2):
        if overlapping(a, b):
            assert set(a["cpus"]).isdisjoint(b["cpus"]), (a, b)
    assert len({c for t in trials for c in t["cpus"]}) == 2  # both workers ran, each on its own CPU


def test_plan_places_deals_gpus_round_robin_and_cpus_disjoint():
    places = plan_places(8, ("0", "1"), 2, 1, cpus=[0, 1, 2, 3, 4, 5])
    assert [p.gpus for p in places] == [("0",), ("1",), ("0",), ("1",)]  # min(8, 2 x 2, 6 // 1)
    assert [p.cpus for p in places] == [(0,), (1,), (2,), (3,)]
    assert len(plan_places(8, (), 1, 2, cpus=[0, 1, 2, 3, 4])) == 2  # 5 CPUs // 2
    assert plan_places(2, ("3",), 1, None) == [Place(gpus=("3",))]
    with pytest.raises(ValueError, match="executor.cpus_per_trial"):
        plan_places(1, (), 1, 3, cpus=[0, 1])
    assert Place(gpus=("2", "5")).environment()["CUDA_VISIBLE_DEVICES"] == "2,5"


def cpu_only(monkeypatch) -> None:
    """Make ``gpus: auto`` see the machine as CPU-only, whatever it has (the runner runs in this process)."""
    resources.detect_gpus.cache_clear()
    monkeypatch.setattr(resources, "_nvidia_smi_ids", list)
    monkeypatch.setattr(resources, "_torch_count", lambda: 0)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has GPUs")
def test_gpus_auto_on_this_cpu_machine_is_none(caplog):
    if resources._torch_count():
        pytest.skip("torch sees CUDA here")
    resources.detect_gpus.cache_clear()
    with caplog.at_level(logging.INFO, logger="trellis.search.executors.resources"):
        assert resources.resolve_gpus("auto") == ()
    assert any("auto found no GPU" in r.getMessage() for r in caplog.records)
    resources.detect_gpus.cache_clear()


def test_gpus_auto_is_said_once_and_follows_the_runners_visible_devices(monkeypatch, caplog):
    """Without CUDA and without nvidia-smi, auto means no GPUs, said once in the log; with a GPU runner's
    own CUDA_VISIBLE_DEVICES (torch counting 2) auto shares out those ids."""
    resources.detect_gpus.cache_clear()
    monkeypatch.setattr(resources, "_nvidia_smi_ids", list)
    monkeypatch.setattr(resources, "_torch_count", lambda: 0)
    with caplog.at_level(logging.INFO, logger="trellis.search.executors.resources"):
        assert resources.resolve_gpus("auto") == ()
        assert resources.resolve_gpus("auto") == ()
    said = [r for r in caplog.records if "auto found no GPU" in r.getMessage()]
    assert len(said) == 1
    resources.detect_gpus.cache_clear()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6,-1,7")
    monkeypatch.setattr(resources, "_torch_count", lambda: 2)
    assert resources.resolve_gpus("auto") == ("4", "6")
    resources.detect_gpus.cache_clear()


def test_gpus_auto_reads_nvidia_smi_when_torch_sees_no_cuda(monkeypatch, tmp_path):
    fake = tmp_path / "nvidia-smi"
    fake.write_text(
        "#!/bin/sh\necho 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-aaaa)'\n"
        "echo 'GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-bbbb)'\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(resources, "_torch_count", lambda: None)  # as without torch
    resources.detect_gpus.cache_clear()
    assert resources.resolve_gpus("auto") == ("0", "1")
    resources.detect_gpus.cache_clear()


@pytest.mark.parametrize(
    "executor, problem",
    [
        ({"gpus": [0, 0]}, "executor.gpus: GPU 0 is listed twice"),
        ({"gpus": [-1]}, "executor.gpus: item 0: -1 is not a GPU id"),
        ({"gpus": "some"}, "executor.gpus: item 0: 'some' is not a GPU id"),
        ({"gpus": {"a": 1}}, "executor.gpus: must be a list of GPU ids"),
        ({"gpus": [0], "per_gpu": 0}, "executor.per_gpu: must be > 0"),
        ({"per_gpu": 2}, "executor.per_gpu: needs executor.gpus"),
        ({"cpus_per_trial": 1.5}, "executor.cpus_per_trial: must be an integer"),
        ({"kind": "dask", "cpus_per_trial": 1}, "executor.cpus_per_trial: is for kind: local"),
        ({"kind": "dask", "address": "tcp://h:8786", "gpus": [0]}, "executor.gpus: with executor.address"),
    ],
)
def test_bad_resource_configs_say_which_key(executor, problem):
    with pytest.raises(ConfigError) as info:
        parse_config({**BASE, "executor": {"kind": "local", "workers": 2, **executor}}, check_target=False)
    assert problem in str(info.value)


def test_resource_keys_round_trip_through_the_stored_config():
    exe = {"kind": "local", "workers": 4, "gpus": "0,GPU-1a2b", "cpus_per_trial": 1}
    config = parse_config({**BASE, "executor": exe}, check_target=False)
    stored = config.to_dict()
    assert stored["executor"] == {
        "kind": "local",
        "workers": 4,
        "address": None,
        "gpus": ["0", "GPU-1a2b"],
        "per_gpu": 1,
        "cpus_per_trial": 1,
    }
    assert parse_config(stored, check_target=False).executor == config.executor
    plain = parse_config(BASE, check_target=False)
    assert plain.to_dict()["executor"] == {"kind": "local", "workers": 2, "address": None}


distributed = pytest.importorskip("distributed")


def test_dask_local_cluster_gives_each_trial_one_of_the_configured_gpus(make_config, client):
    config = make_config(
        space={"x": {"low": -1.0, "high": 1.0}},
        termination={"max_trials": 4},
        budget={"max": 1},
        executor={"kind": "dask", "workers": 2, "gpus": [0, 1]},
        trial={"function": "tests.resource_trials:on_dask"},
    )
    result = run_search(config)
    trials = list(seen_by_trial(client, result.search_id).values())
    assert len(trials) == 4 and {t["status"] for t in trials} == {"FINISHED"}
    for t in trials:
        assert t["cuda"] in {"0", "1"} and t["tags"][schema.GPU] == t["cuda"]
    assert {t["worker"] for t in trials} == {"gpu-0", "gpu-1"}  # one worker per GPU, both used
    assert all(t["worker"] == f"gpu-{t['cuda']}" for t in trials)  # each trial on its worker's GPU
    for a, b in itertools.combinations(trials, 2):
        if overlapping(a, b):
            assert a["cuda"] != b["cuda"]


def test_dask_cluster_with_gpu_resources_by_address(make_config, client):
    """Workers that declare ``resources={"GPU": 1}`` (no ids: each has GPU 0 of its machine) get the trials
    of a search with ``gpus: auto``, one GPU each."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, resources={"GPU": 1}, dashboard_address=None, processes=True
    ) as cluster:
        config = make_config(
            space={"x": {"low": -1.0, "high": 1.0}},
            termination={"max_trials": 4},
            budget={"max": 1},
            executor={"kind": "dask", "workers": 2, "address": cluster.scheduler_address, "gpus": "auto"},
            trial={"function": "tests.resource_trials:on_dask"},
        )
        result = run_search(config)
    trials = list(seen_by_trial(client, result.search_id).values())
    assert len(trials) == 4 and {t["status"] for t in trials} == {"FINISHED"}
    assert {t["cuda"] for t in trials} == {"0"} and {t["tags"][schema.GPU] for t in trials} == {"0"}


def test_more_cpus_per_trial_than_this_machine_has_is_refused_before_the_search_starts(make_config, client):
    from trellis.search.engine.runner import SearchRunner

    config = make_config(executor={"kind": "local", "workers": 1, "cpus_per_trial": len(resources.usable_cpus()) + 1})
    with pytest.raises(ConfigError, match="executor.cpus_per_trial: .* CPUs per trial, but this search may use"):
        SearchRunner(config)
    assert client.get_experiment_by_name(config.tracking.experiment) is None  # nothing was written


def test_the_gpus_auto_example_runs_on_this_cpu_only_machine(make_config, client, shared_store, monkeypatch):
    from trellis.search.config import load_config

    resources.detect_gpus.cache_clear()
    cpu_only(monkeypatch)
    overrides = {
        "tracking.uri": shared_store[1],
        "tracking.experiment": "example-gpus-auto",
        "termination.max_trials": 1,
        "budget.max": 1,
        "executor.workers": 1,
        "space": {"lr": 0.01, "hidden": 32, "layers": 1, "optimizer": "adam", "dropout": 0.0},
    }
    config = load_config(ROOT / "examples" / "configs" / "digits_mlp_gpus.yaml", overrides)
    assert config.executor.gpus == "auto"
    result = run_search(config)
    resources.detect_gpus.cache_clear()
    runs = child_runs(client, result.search_id)
    assert [r.info.status for r in runs] == ["FINISHED"], [r.data.tags.get(schema.ERROR) for r in runs]
    assert runs[0].data.metrics["val_accuracy"] > 0.3 and schema.GPU not in runs[0].data.tags  # chance: 0.1


def test_the_overview_shows_each_trials_gpu_in_the_table_and_the_tradeoff_hover():
    import pandas as pd

    from trellis.layouts.overview import selected_rows, tradeoff_info, tradeoff_plot

    runs = pd.DataFrame(
        {
            "run_id": ["r0", "r1", "r2"],
            "run_name": ["trial-0000", "trial-0001", "trial-0002"],
            "search_id": ["s", "s", "s"],
            "experiment": ["e", "e", "e"],
            "status": ["FINISHED", "RUNNING", "FINISHED"],
            "gpu": ["1", "0", None],  # r2 ran before the search had GPUs
            "metrics.loss": [0.5, 0.2, 0.9],
            "metrics.seconds": [3.0, 1.0, 2.0],
        }
    )
    rows, columns = selected_rows(runs, ["r0", "r1", "r2"], [], ["loss"], lambda r: "http://x")
    assert {"name": "GPU", "id": "gpu"} in columns
    assert [r["gpu"] for r in rows] == ["1", "0", None]
    info = tradeoff_info(runs, "seconds", "loss", "min", "min", {})
    assert dict(zip(info.run_ids, info.gpus, strict=True)) == {"r0": "1", "r1": "0", "r2": None}
    (trace,) = [t for t in tradeoff_plot(info)["data"] if t.get("customdata")]
    assert dict(zip(trace["customdata"], trace["text"], strict=True)) == {"r0": "GPU 1", "r1": "GPU 0", "r2": "no GPU"}
    assert "%{text}" in trace["hovertemplate"]
    plain = runs.drop(columns="gpu")  # runs without GPUs: no column, no hover line
    assert all(c["id"] != "gpu" for c in selected_rows(plain, ["r0"], [], ["loss"], lambda r: "x")[1])
    assert "text" not in tradeoff_plot(tradeoff_info(plain, "seconds", "loss", "min", "min", {}))["data"][0]


def test_a_workers_edit_adds_workers_on_free_gpus_only():
    from trellis.search.executors.local import LocalExecutor

    executor = LocalExecutor(1, gpus=("0", "1"), per_gpu=1)
    executor.start()
    try:
        assert executor.free_slots() == 1 and [s.place.gpus for s in executor._slots] == [("0",)]
        executor.resize(4)  # an edit from the app: 2 GPUs x per_gpu 1 still allow two trials at once
        assert executor.free_slots() == 2 and [s.place.gpus for s in executor._slots] == [("0",), ("1",)]
    finally:
        executor.shutdown()
