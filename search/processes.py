"""The processes a trial leaves behind: reaped with it, so none holds a pipe open or outlives the search.

A Trellis worker is a child subreaper (Linux ``PR_SET_CHILD_SUBREAPER``): a process its trial started and
left running (a script's background child, a function trial's ``subprocess.Popen`` never waited on) is
reparented to the worker instead of to init, and stays in the worker's process group, so the runner's kill
of the group takes it too. After each job the worker kills what is left of its children
(``reap_children``). Elsewhere (no ``/proc``, no prctl) nothing happens and the group kill still applies.
"""

from __future__ import annotations

import contextlib
import os
import signal

PR_SET_CHILD_SUBREAPER = 36
_subreaper = False


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants; True when the kernel agreed."""
    global _subreaper
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        _subreaper = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        _subreaper = False
    return _subreaper


def is_subreaper() -> bool:
    return _subreaper


def children() -> list[int]:
    """The pids whose parent is this process (read from ``/proc``; empty where there is none)."""
    me, out = os.getpid(), []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return out
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rfind(b")") + 2 :].split()  # after "pid (comm) ": state, ppid, ...
        if len(fields) > 1 and int(fields[1]) == me:
            out.append(int(entry))
    return out


def reap_children(rounds: int = 5) -> int:
    """Kill (SIGKILL) and wait for every child of this process, again for those reparented meanwhile (an
    orphan's own children); returns how many were reaped."""
    reaped = 0
    for _ in range(rounds):
        pids = children()
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(OSError):
                os.waitpid(pid, 0)
                reaped += 1
    return reaped
