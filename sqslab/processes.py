"""Child processes sqslab starts (consumer tasks, the emulator, Terraform's provider):
none may outlive sqslab, and signalling one that already exited is not an error."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable


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


def send_signal(process: subprocess.Popen[bytes], signum: int) -> None:
    """Signal a child; one that has exited already is not an error."""
    try:
        process.send_signal(signum)
    except ProcessLookupError:
        pass
