"""The emulator's child process: moto's WSGI app on a werkzeug threaded server."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from typing import Any

READY_PREFIX = "SQSLAB_EMULATOR_READY "


def run(host: str, port: int, patched: bool = True) -> None:
    """Bind host:port (0 = any free port), report the port on stdout and serve until signalled."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-west-1",
    }.items():
        os.environ.setdefault(key, value)
    if patched:
        from sqslab.emulator import patches

        patches.apply()

    from werkzeug.serving import make_server
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app: Any = DomainDispatcherApplication(create_backend_app)
    server = make_server(host, port, app, threaded=True)
    server.daemon_threads = True

    def _stop(signum: int, frame: object) -> None:
        # shutdown() blocks until serve_forever returns, so call it from another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    bound_port = server.socket.getsockname()[1]
    sys.stdout.write(READY_PREFIX + json.dumps({"port": bound_port, "patched": patched, "pid": os.getpid()}) + "\n")
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
