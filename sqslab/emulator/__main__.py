"""Child entry point: ``python -m sqslab.emulator [--host H] [--port N] [--stock]``.

Binds the port itself, prints one ``SQSLAB_EMULATOR_READY {"port": N}`` line on stdout
and serves until SIGTERM or SIGINT. Run by ``Emulator``; not meant for people (use
``sqslab emulator``).
"""

from __future__ import annotations

import argparse
import sys

from sqslab.emulator.server import run


def main(argv: list[str] | None = None) -> None:
    """Parse the child's arguments and serve."""
    parser = argparse.ArgumentParser(prog="python -m sqslab.emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--stock", action="store_true", help="stock moto, without sqslab's patches")
    parser.add_argument("--parent-pid", type=int, default=None, help="exit when this process is gone")
    args = parser.parse_args(argv)
    run(args.host, args.port, patched=not args.stock, parent_pid=args.parent_pid)


if __name__ == "__main__":
    main(sys.argv[1:])
