"""Checkpoints are kept per step, and a killed job's last reports still reach the runner.

Together they make an interrupted job resumable at exactly the step MLflow recorded, even when the kill
lands between a checkpoint save and its report.
"""

from pathlib import Path

from trellis.search.config import TrialSpec
from trellis.search.engine.checkpoints import CheckpointFolders
from trellis.search.executors.base import Ended, Report
from trellis.search.executors.local import LocalExecutor
from trellis.search.trial import TrialContext, TrialJob


def _job(tmp_path: Path, start: int = 0, stop: int = 5, **params) -> TrialJob:
    return TrialJob(
        key=f"0.{start}",
        number=0,
        params={"x": 0.1, **params},
        objective="loss",
        spec=TrialSpec(function="trellis.examples.synthetic:resumable"),
        budget_start=start,
        budget_stop=stop,
        resource="epochs",
        checkpoint_dir=str(tmp_path / "ckpt"),
    )


def test_each_step_has_its_checkpoint_until_the_runner_prunes_below_the_durable_step(tmp_path):
    ctx = TrialContext(_job(tmp_path), reporter=lambda step, metrics: "continue")
    for epoch in ctx.steps():
        ctx.save_checkpoint({"step": epoch})
        ctx.report(epoch, loss=1.0 / epoch)
    assert len(list(ctx.checkpoint_dir.glob("step-*.pt"))) == 5  # the trial itself deletes nothing
    folders = CheckpointFolders(tmp_path, "s")
    folder = folders.folder(0)
    folder.parent.mkdir(parents=True)
    ctx.checkpoint_dir.rename(folder)
    assert folders.prune(0, durable_step=4) == 3  # MLflow holds step 4: 1-3 go, 4 and the newer 5 stay
    assert sorted(p.name for p in folder.glob("step-*.pt")) == ["step-000004.pt", "step-000005.pt"]
    folder.rename(ctx.checkpoint_dir)

    # A job continuing from step 4 loads step 4, not the newer step 5 whose report might have been lost.
    later = TrialContext(_job(tmp_path, start=4, stop=6), reporter=lambda step, metrics: "continue")
    assert later.load_checkpoint() == {"step": 4}
    assert later.load_checkpoint(step=5) == {"step": 5}
    assert later.load_checkpoint(step=2) is None  # pruned
    assert later.checkpoint_path.name == "step-000004.pt"


def test_a_save_after_the_loop_is_the_last_step(tmp_path):
    ctx = TrialContext(_job(tmp_path, stop=3), reporter=lambda step, metrics: "continue")
    for epoch in ctx.steps():
        ctx.report(epoch, loss=1.0)
    assert ctx.save_checkpoint({"done": True}).name == "step-000003.pt"
    assert ctx.save_checkpoint({"at": 1}, step=1).name == "step-000001.pt"


def test_killing_a_local_job_returns_the_reports_it_sent(tmp_path):
    executor = LocalExecutor(workers=1)
    executor.start()
    try:
        job = _job(tmp_path, stop=3, seconds=60.0)  # reports step 1, then sleeps a minute
        executor.submit(job)
        assert executor.has_unread(job.key, timeout=60), "the job should report its first step"  # not read yet
        late = executor.kill(job.key)
        assert [(e.key, e.step) for e in late if isinstance(e, Report)] == [(job.key, 1)]
        assert not any(isinstance(e, Ended) for e in late)
        assert executor.free_slots() == 1 and executor._slots[0].proc.is_alive()  # a fresh worker took its place
        assert (tmp_path / "ckpt" / "step-000001.pt").is_file()
    finally:
        executor.shutdown()
