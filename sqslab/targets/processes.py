"""Child processes sqslab starts (consumer tasks, the emulator, Terraform's provider):
none may outlive sqslab, and signalling one that already exited is not an error.

A consumer task is a process group (`ProcessGroup`), as a container is all the processes in
it: a program that forks its workers (the dramatiq and celery CLIs do) is signalled, and
ended, whole.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

#: How often the waits below look again.
POLL_INTERVAL = 0.02


def die_with_parent(signum: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A preexec_fn that makes the child get `signum` when sqslab dies (Linux
    PR_SET_PDEATHSIG), or None where that does not exist. The signal is tied to the
    thread that forks: start such children from a thread that outlives them."""
    if not sys.platform.startswith("linux"):
        return None

    def preexec() -> None:
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signum)  # 1: PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass  # best effort: the runner's teardown stops its children anyway

    return preexec


def live_groups(pgids: set[int]) -> dict[int, list[int]]:
    """Of these process groups, those with a process that still runs, and the pids of those
    (a zombie, dead but not yet reaped by whoever adopted it, does not run). One look at
    /proc for all; without /proc, [pgid] for a group that answers a signal at all."""
    proc = Path("/proc")
    found: dict[int, list[int]] = {}
    if not pgids:
        return found
    if not proc.is_dir():
        for pgid in pgids:
            try:
                os.killpg(pgid, 0)
            except (ProcessLookupError, PermissionError):
                continue
            found[pgid] = [pgid]
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue  # gone while we looked
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        fields = text[text.rfind(")") + 2:].split()
        if len(fields) > 2 and fields[0] not in ("Z", "X") and fields[2].isdigit() and int(fields[2]) in pgids:
            found.setdefault(int(fields[2]), []).append(int(entry.name))
    return {pgid: sorted(pids) for pgid, pids in found.items()}


def group_members(pgid: int) -> list[int]:
    """The pids of the processes of process group `pgid` that still run."""
    return live_groups({pgid}).get(pgid, [])


class ProcessGroup:
    """A child started in a session of its own (`start_new_session=True`) and every process
    it forks, ended together as a container's processes are when its main process ends.

    The leader is reaped only after its group got SIGKILL: until then its zombie holds its
    pid, so the group id cannot name anyone else's processes when it is signalled.
    """

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        """`process` must lead its own process group (started with start_new_session=True)."""
        self.process = process
        self.pid = process.pid
        self.orphans = 0  # processes of the group still running when the leader exited, killed then

    @property
    def returncode(self) -> int | None:
        """The leader's exit code once the group has ended (see `poll`), else None."""
        return self.process.returncode

    def signal(self, signum: int) -> None:
        """Send `signum` to every process of the group; a group already ended is no error."""
        if self.process.returncode is not None:
            return  # reaped: the group was killed then, and its id may be reused
        try:
            os.killpg(self.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass  # PermissionError: macOS, for a group whose only member is a zombie

    def signal_leader(self, signum: int) -> None:
        """Send `signum` to the leader alone (`docker stop` signals a container's main
        process); one already ended is no error."""
        if self.process.returncode is not None:
            return
        try:
            self.process.send_signal(signum)
        except ProcessLookupError:
            pass

    def leader_exited(self) -> bool:
        """Whether the leader has exited; it is not reaped, so the group id stays its own."""
        if self.process.returncode is not None:
            return True
        if not hasattr(os, "waitid"):
            return self.process.poll() is not None  # no waitid: reaped now, the group's id is at risk
        try:
            return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True

    def poll(self) -> int | None:
        """The leader's exit code once it has exited, else None. When it has, whatever of
        its group still runs is SIGKILLed first (counted in `orphans`), then the leader is
        reaped: a task is over when its main process is, like a container."""
        if self.process.returncode is not None:
            return self.process.returncode
        if not self.leader_exited():
            return None
        self.orphans = len([pid for pid in group_members(self.pid) if pid != self.pid])
        self.signal(signal.SIGKILL)
        return self.process.wait()

    def kill(self) -> None:
        """SIGKILL every process of the group."""
        self.signal(signal.SIGKILL)

    def wait(self, timeout: float) -> int | None:
        """`poll` until the leader has exited, for at most `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while (code := self.poll()) is None and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)
        return code

    def members(self) -> list[int]:
        """The group's processes that still run (the leader's zombie does not)."""
        return group_members(self.pid)

    def wait_gone(self, timeout: float) -> list[int]:
        """Wait until no process of the group runs, for at most `timeout` seconds: SIGKILL
        takes a moment, longer for a process in uninterruptible sleep. The survivors, if any."""
        deadline = time.monotonic() + timeout
        while (left := self.members()) and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)
        return left
