"""A PostgreSQL server of the test's own (initdb + pg_ctl on a spare port in a temp folder), to stop and
restart under a running search; the machine's own server is never touched."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


class OwnPostgres:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "data"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.uri = f"postgresql://postgres@127.0.0.1:{self.port}/trellis"

    def _run(self, *cmd: str) -> None:
        # PostgreSQL refuses to run as root: run as the postgres user when we are root.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *cmd], check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
        self._run(_bin("initdb") or "initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self.start()
        self._run(_bin("createdb") or "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "trellis")

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self._run(_bin("pg_ctl") or "pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.folder / "log"),
                  "-w", "start")  # fmt: skip

    def stop(self) -> None:
        self._run(_bin("pg_ctl") or "pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


def available() -> str | None:
    """Why an own server cannot be started here, or None."""
    if _bin("initdb") is None or _bin("pg_ctl") is None:
        return "PostgreSQL's initdb/pg_ctl are not installed"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser"
    return None


@contextlib.contextmanager
def own_server() -> Iterator[OwnPostgres]:
    """A started server of the test's own in a temporary folder, stopped and removed after (the test is
    skipped, with the reason, where one cannot be started)."""
    if (why := available()) is not None:
        pytest.skip(why)
    folder = Path(tempfile.mkdtemp(prefix="trellis-pg-"))  # under /tmp: the postgres user must reach it
    server = OwnPostgres(folder)
    try:
        server.init()
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)
