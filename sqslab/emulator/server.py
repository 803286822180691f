"""The emulator's child process: moto's WSGI app on a werkzeug threaded server."""

from __future__ import annotations

import collections
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

from sqslab.credentials import DUMMY_ENV

READY_PREFIX = "SQSLAB_EMULATOR_READY "
#: How many answers of non-SQS calls are kept to replay to an SDK's retry of the same call.
REPLAYED_ANSWERS = 512
#: Environment variable: the child's GIL switch interval in seconds (tests amplify races with it).
SWITCH_INTERVAL_ENV = "SQSLAB_EMULATOR_SWITCH_INTERVAL"


def run(host: str, port: int, patched: bool = True, parent_pid: int | None = None, lab_config: dict[str, Any] | None = None,
        events_path: str | None = None, journal_path: str | None = None) -> None:
    """Bind host:port (0 = any free port), report the port on stdout and serve until signalled.

    With ``parent_pid``, exit as soon as that process is gone, so a killed runner never
    leaves an emulator behind. ``lab_config`` ({"behavior": {...}, "faults": [...],
    "seed": ...}) sets how SQS departs from exactness (lab.py); its events go to
    ``events_path`` (JSON lines); every SQS operation on a message to ``journal_path``
    (journal.py).
    """
    t0 = time.monotonic()
    switch = os.environ.get(SWITCH_INTERVAL_ENV)
    if switch:
        # Test-only: a shorter GIL time slice makes thread races show up at small sizes.
        sys.setswitchinterval(float(switch))
    os.environ.update(DUMMY_ENV)
    sock = _bind(host, port)
    port = sock.getsockname()[1]
    if patched:
        _patch(lab_config or {}, events_path, journal_path)

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        create_backend_app,
    )
    from werkzeug.serving import WSGIRequestHandler, make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app: Any = DomainDispatcherApplication(create_backend_app)
    if patched:
        sqs_app = app.get_application({"PATH_INFO": "/", "HTTP_AUTHORIZATION": _SQS_AUTH})  # build the SQS app now, not on the first call
        # moto runs its Flask apps in debug mode, which builds a class per request to explain
        # form-encoding errors; an escaping exception still reaches the middleware's net.
        sqs_app.debug = False
        sqs_app.config["PROPAGATE_EXCEPTIONS"] = True
        app = _application(app, sqs_app)
        server: Any = KeepAliveServer(app, sock)
    else:  # stock moto as moto serves itself: werkzeug, a connection and a thread per request (the benchmarks' baseline)
        server = make_server(host, port, app, threaded=True, request_handler=WSGIRequestHandler, fd=sock.fileno())
        server.daemon_threads = True  # threaded=True: a ThreadedWSGIServer

    def _stop(signum: int, frame: object) -> None:
        # shutdown() waits for serve_forever to return, so it must not run on its thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if parent_pid:
        threading.Thread(target=_watch_parent, args=(parent_pid, server), daemon=True).start()

    bound_port = sock.getsockname()[1]
    ready = {"port": bound_port, "patched": patched, "pid": os.getpid(), "startup_s": round(time.monotonic() - t0, 3)}
    sys.stdout.write(READY_PREFIX + json.dumps(ready) + "\n")
    sys.stdout.flush()
    # Nobody reads our stdout after the ready line: send later prints (moto has some) to stderr.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        server.serve_forever(poll_interval=0.05)
    finally:
        server.server_close()
        if patched:
            from sqslab.emulator import lab

            lab.current().close()
        sys.stderr.flush()
        # Skip interpreter teardown (moto's modules take ~0.5 s to unload): state is in memory only.
        os._exit(0)


#: Request threads of the patched emulator, a bounded pool: a long poll holds one for up to
#: 20 s, so the pool is wide enough for every poller of a large run.
REQUEST_THREADS = 128
#: The most connections held open at once (keep-alive); past it new ones wait in the backlog.
MAX_CONNECTIONS = 1024
#: The largest request body the server buffers (the middleware refuses past its own, smaller
#: MAX_REQUEST_BODY with SQS's error; past this the server answers 413 itself).
MAX_BUFFERED_BODY = 16 * 1024 * 1024


class KeepAliveServer:
    """waitress serving the patched emulator: HTTP/1.1 connections that stay open (boto3
    reuses its pooled connections instead of a TCP connect per call), served by a bounded
    pool of REQUEST_THREADS threads instead of a thread per connection. werkzeug's server,
    which stock moto uses, answers every request `Connection: close` whatever the handler
    says, so a client's keep-alive never held."""

    def __init__(self, app: Any, sock: socket.socket) -> None:
        from waitress.server import create_server

        self._server = create_server(app, sockets=[sock], threads=REQUEST_THREADS, connection_limit=MAX_CONNECTIONS,
                                     max_request_body_size=MAX_BUFFERED_BODY, channel_timeout=120, ident="sqslab-emulator",
                                     clear_untrusted_proxy_headers=False)
        self._stopping = threading.Event()

    def serve_forever(self, poll_interval: float = 0.05) -> None:
        """Serve until shutdown()."""
        from waitress import wasyncore

        server = self._server
        channels = server.map if hasattr(server, "map") else server._map  # several sockets, or one
        while not self._stopping.is_set():
            wasyncore.loop(timeout=poll_interval, map=channels, count=1)
        server.close()

    def shutdown(self) -> None:
        """Stop serving (from any thread)."""
        self._stopping.set()

    def server_close(self) -> None:
        """Nothing more: serve_forever closed the server."""


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, bound before the slow imports: a taken port fails
    at once (exit 2, saying so), a free one is ours early."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sys.stderr.write(f"sqslab emulator: cannot bind {host}:{port}: {exc}\n")
        sys.exit(2)
    sock.listen(128)
    return sock


def _patch(lab_config: dict[str, Any], events_path: str | None, journal_path: str | None = None) -> None:
    """Put the lab in force and patch moto; on a bad configuration or a moto the patches
    do not fit, one line on stderr (Emulator.start() quotes it) and exit 2."""
    from sqslab.emulator import lab, patches

    try:
        lab.configure(lab.from_config(lab_config, events_path, journal_path))
        patches.apply()
    except (ValueError, TypeError, OSError, patches.PatchError) as exc:
        what = "bad lab configuration: " if not isinstance(exc, patches.PatchError) else ""
        sys.stderr.write(f"sqslab emulator: {what}{exc}\n")
        sys.stderr.flush()
        os._exit(2)  # not sys.exit: unloading moto's modules takes ~0.5 s, for nothing


_SQS_AUTH = (
    "AWS4-HMAC-SHA256 Credential=testing/20240101/us-west-1/sqs/aws4_request, "
    "SignedHeaders=host, Signature=0"
)


def _application(dispatcher: Any, sqs_app: Any) -> Any:
    """The control endpoint, then SQS with the lab's faults and redrive in front
    (middleware.py). SQS has its own lock (patches.py); every other service (EC2, IAM,
    ECS... for the Terraform stack) runs one request at a time. moto's other backends are
    not thread safe: Terraform's parallel calls raced in EC2 (a default security group
    rule revoked while another request rebuilt it: InvalidPermission.NotFound, seen under
    load).

    Those services also answer an SDK's retry of a call they carried out (same
    `amz-sdk-invocation-id`, `amz-sdk-request: attempt=2` or later) with the first answer
    instead of carrying it out again: under load the terraform provider sometimes lost an
    answer (no response, a retry ~80 ms later), and its retry of AuthorizeSecurityGroupEgress
    or RevokeSecurityGroupEgress then failed with InvalidPermission.Duplicate / NotFound."""
    from sqslab.emulator import effects, middleware
    from sqslab.emulator.lab import current

    lock = threading.Lock()
    sqs = middleware.wrap(sqs_app)
    answers: collections.OrderedDict[str, tuple[str, list[Any], bytes]] = collections.OrderedDict()

    def application(environ: dict[str, Any], start_response: Any) -> Any:
        if middleware.is_control(environ):
            return middleware.control(environ, start_response)
        backend_app = dispatcher.get_application(environ)
        if backend_app is sqs_app:
            return sqs(environ, start_response)
        invocation = environ.get("HTTP_AMZ_SDK_INVOCATION_ID")
        with lock:
            retry = not str(environ.get("HTTP_AMZ_SDK_REQUEST", "attempt=1;")).startswith("attempt=1;")
            if invocation and retry and invocation in answers:
                status, headers, body = answers[invocation]  # a retry of a call already carried out
                start_response(status, headers)
                return [body]
            said: list[Any] = []

            def keep(status: str, headers: list[Any], exc_info: Any = None) -> Any:
                said[:] = [status, headers]
                return start_response(status, headers, exc_info)

            dynamodb = str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_")
            if dynamodb:
                effects.keep_dynamodb_body(environ, current())
            body = b"".join(backend_app(environ, keep))
            if dynamodb and said:
                effects.dynamodb_writes(environ, said[0], body, current(), middleware.caller(environ))
            if invocation and said:
                answers[invocation] = (said[0], said[1], body)
                while len(answers) > REPLAYED_ANSWERS:
                    answers.popitem(last=False)
            return [body]

    return application


def _watch_parent(parent_pid: int, server: Any) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            server.shutdown()
            return
