"""The `sqslab` command (and `python -m sqslab`): Ctrl-C and SIGTERM mean exit 130 from
the first line on, before the command line's modules are even imported."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any, NoReturn

from sqslab.contracts import Exit

_interrupted = False


def _interrupt(signum: int, frame: Any) -> NoReturn:
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def _leave(code: int) -> NoReturn:
    # After an interruption, skip interpreter teardown: a second signal there, or a thread
    # still winding down, must not turn exit 130 into a traceback or a death by signal.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def main() -> None:
    """Run the command line; an interruption at any moment exits 130 without a traceback."""
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)  # the runner installs its own while it runs
    try:
        from sqslab.cli import main as cli

        cli()
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted\n")
        _leave(Exit.INTERRUPTED)
    except SystemExit as exit_:
        if _interrupted:
            _leave(Exit.INTERRUPTED)
        raise exit_ from None


if __name__ == "__main__":
    main()
