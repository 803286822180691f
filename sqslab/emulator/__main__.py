"""Child entry point: ``python -m sqslab.emulator [--host H] [--port N] [--stock] [--lab JSON] [--events PATH] [--journal PATH]``.

Binds the port itself, prints one ``SQSLAB_EMULATOR_READY {"port": N}`` line on stdout
and serves until SIGTERM or SIGINT. Run by ``Emulator``; not meant for people (use
``sqslab emulator``).
"""

from __future__ import annotations

import argparse
import json
import sys

from sqslab.emulator.server import run


def main(argv: list[str] | None = None) -> None:
    """Parse the child's arguments and serve."""
    parser = argparse.ArgumentParser(prog="python -m sqslab.emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--stock", action="store_true", help="stock moto, without sqslab's patches")
    parser.add_argument("--parent-pid", type=int, default=None, help="exit when this process is gone")
    parser.add_argument("--lab", default=None, help='JSON: {"behavior": {...}, "faults": [...], "seed": N} (sqslab.emulator.lab)')
    parser.add_argument("--events", default=None, help="append the lab's events (JSON lines) to this file")
    parser.add_argument("--journal", default=None, help="append the SQS journal (JSON lines) to this file")
    args = parser.parse_args(argv)
    if not _loopback(args.host):
        parser.error(f"--host {args.host}: the emulator serves loopback addresses only (127.0.0.0/8, ::1, localhost)")
    try:
        lab_config = json.loads(args.lab) if args.lab else None
    except ValueError as exc:
        parser.error(f"--lab is not JSON: {exc}")
    run(args.host, args.port, patched=not args.stock, parent_pid=args.parent_pid, lab_config=lab_config, events_path=args.events,
        journal_path=args.journal)


def _loopback(host: str) -> bool:
    """Whether host is a loopback address (or `localhost`): nothing else may reach the emulator."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


if __name__ == "__main__":
    main(sys.argv[1:])
