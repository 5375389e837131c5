"""Where each trial of a search keeps its checkpoints, and PBT's copy of one member's into another's."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)


def default_root() -> Path:
    return Path(os.environ.get("TRELLIS_CHECKPOINTS", ".trellis/checkpoints"))


class CheckpointFolders:
    def __init__(self, root: str | Path | None, search_id: str) -> None:
        self.root = Path(root) if root is not None else default_root()
        self.search_id = search_id

    def folder(self, number: int) -> Path:
        """Trial ``number``'s folder, absolute (remote workers get the same path)."""
        return (self.root / self.search_id / f"{number:05d}").resolve()

    def prune(self, number: int, durable_step: int) -> int:
        """Delete trial ``number``'s step files older than ``durable_step``, the last step MLflow holds for
        it (a resumed job starts there). Returns how many were deleted."""
        deleted = 0
        for path in self.folder(number).glob("step-*.pt"):
            try:
                step = int(path.stem.split("-", 1)[1])
            except ValueError:
                continue
            if step < durable_step:
                path.unlink(missing_ok=True)
                deleted += 1
        return deleted

    def copy(self, source: int, target: int) -> bool:
        """PBT's exploit: the new member starts from the checkpoint of the member it copies.

        Returns False (and logs) when the source has no checkpoint, so the target starts from scratch."""
        src, dst = self.folder(source), self.folder(target)
        if dst.exists():
            shutil.rmtree(dst)
        if not src.exists():
            log.warning("trial %s has no checkpoint to copy into trial %s; it starts from scratch", source, target)
            return False
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("config-*.json"))
        return True
