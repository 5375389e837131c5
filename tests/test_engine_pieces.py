"""The runner's small pure pieces and the registries, each checked on its own."""

import pytest

from trellis.search.config import Objective, Termination
from trellis.search.engine import run_tags, termination
from trellis.search.engine.checkpoints import CheckpointFolders
from trellis.search.engine.progress import Progress
from trellis.search.engine.resume import PastTrial, retries
from trellis.search.executors.base import Executor
from trellis.search.registry import ALGORITHMS, EXECUTORS, FIFO, resolve
from trellis.search.samplers.base import Sampler
from trellis.search.schedulers.base import Scheduler
from trellis.tracking import schema
from trellis.tracking.schema import EndReason


def test_progress_counts_trials_not_jobs():
    p = Progress()
    p.count(0, EndReason.COMPLETED)
    p.count(1, EndReason.FAILED)
    p.count(2, EndReason.KILLED)
    p.count(3, EndReason.PRUNED)  # pruned and early-stopped trials count as completed
    assert (p.completed, p.failed, p.killed, p.ended) == (2, 1, 1, 4)
    p.count(2, EndReason.COMPLETED)  # a killed trial continued by a resumed search, then completed
    p.count(0, EndReason.COMPLETED)  # a promoted trial completes its next rung: still one trial
    assert (p.completed, p.failed, p.killed, p.ended) == (3, 1, 0, 4)


@pytest.mark.parametrize(
    "direction,best,threshold,reached",
    [("max", 0.9, 0.9, True), ("max", 0.89, 0.9, False), ("min", 0.1, 0.2, True), ("min", 0.3, 0.2, False)],
)
def test_threshold_follows_the_direction(direction, best, threshold, reached):
    assert termination.threshold_reached(best, threshold, Objective("m", direction)) is reached


def test_launch_stop_reasons():
    obj = Objective("loss", "min")
    term = Termination(max_trials=5, max_time_s=10.0, threshold=0.1)
    assert termination.launch_stop(term, obj, best=0.5, elapsed_s=1.0) is None
    assert termination.launch_stop(term, obj, best=0.05, elapsed_s=1.0) == "threshold"
    assert termination.launch_stop(term, obj, best=None, elapsed_s=10.0) == "max_time"
    assert termination.trials_exhausted(term, 5) and not termination.trials_exhausted(term, 4)
    assert not termination.trials_exhausted(Termination(max_time_s=1.0), 10**6)


def test_trial_end_tags():
    tags = run_tags.trial_end_tags(EndReason.PRUNED, 3, "host:local-0", 10.0, 12.5, None)
    assert tags[schema.END_REASON] == "pruned" and tags[schema.STOPPED_AT_RUNG] == 3
    assert tags[schema.DURATION] == "2.500"
    done = run_tags.trial_end_tags(EndReason.COMPLETED, 9, "w", 0.0, 1.0, None)
    assert schema.STOPPED_AT_RUNG not in done
    assert run_tags.missing_metrics_tag(("a", "b"), {"a"}, EndReason.COMPLETED) == {schema.MISSING_METRICS: "b"}
    assert run_tags.missing_metrics_tag(("a", "b"), {"a"}, EndReason.FAILED) == {}
    assert run_tags.sampler_state(EndReason.EARLY_STOPPED) == "pruned" and run_tags.sampler_state("failed") == "failed"


def test_checkpoint_copy(tmp_path):
    folders = CheckpointFolders(tmp_path, "s1")
    src = folders.folder(3)
    src.mkdir(parents=True)
    (src / "step-000002.pt").write_bytes(b"weights")
    (src / "config-1.json").write_text("{}")  # a script trial's own config is not copied
    assert folders.folder(3).is_absolute() and folders.folder(3).name == "00003"
    assert folders.copy(3, 7)
    assert sorted(p.name for p in folders.folder(7).iterdir()) == ["step-000002.pt"]
    assert not folders.copy(99, 8) and not folders.folder(8).exists()


def _past(number, params, reason):
    return PastTrial(number, f"r{number}", params, reason, None, sampled=True)


def test_resume_reruns_each_interrupted_trial_once():
    past = [
        _past(0, {"x": 0.1}, EndReason.COMPLETED),
        _past(1, {"x": 0.2}, EndReason.KILLED),
        _past(2, {"x": 0.3}, "running"),  # left RUNNING by a crash
        _past(3, {"x": 0.4}, EndReason.KILLED),
        _past(4, {"x": 0.4}, EndReason.COMPLETED),  # 3 was already retried as 4
    ]
    assert retries(past) == [(1, {"x": 0.2}), (2, {"x": 0.3})]


def test_every_registry_row_resolves_to_its_seam():
    for name, spec in ALGORITHMS.items():
        assert issubclass(resolve(spec.sampler), Sampler), name
        assert issubclass(resolve(spec.scheduler), Scheduler), name
        assert set(spec.ranges) <= set(spec.settings), name
        if spec.budgeted:  # budgeted algorithms decide budgets: their scheduler is not FIFO
            assert spec.scheduler != FIFO and spec.self_ending, name
    for name, spec in EXECUTORS.items():
        assert issubclass(resolve(spec.executor), Executor), name
