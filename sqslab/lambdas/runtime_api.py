"""The Lambda Runtime API, as Lambda serves it to one execution environment.

An environment's runtime interface client (awslambdaric, the one AWS ships) asks
`GET /2018-06-01/runtime/invocation/next` for its next event and answers with
`POST .../invocation/{id}/response` or `.../invocation/{id}/error`; a failed init posts
`/runtime/init/error` and exits. One server per environment, on a free loopback port:
an environment handles one invocation at a time, as on Lambda.

https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html
"""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/2018-06-01/runtime"
#: Lambda's limit on a synchronous invocation's response (and on the event).
MAX_PAYLOAD = 6 * 1024 * 1024
#: How long an idle `next` call waits before it is answered again (the client asks at once).
NEXT_WAIT_S = 1.0


@dataclass(frozen=True)
class Invocation:
    """What `next` hands the environment."""

    request_id: str
    event: bytes
    deadline_ms: int  # epoch ms
    function_arn: str
    trace_id: str = ""


@dataclass
class Answer:
    """What the environment said of one invocation (`kind`: response, error, init_error)."""

    kind: str
    body: bytes = b""
    error_type: str = ""
    at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None


class RuntimeApi:
    """The Runtime API of one execution environment: `hand` an invocation, `answers`
    receives what the environment posts back; `first_next` is set when its init is done
    (its first `next`)."""

    def __init__(self) -> None:
        self._pending: queue.Queue[Invocation] = queue.Queue(maxsize=1)
        self.answers: queue.Queue[Answer] = queue.Queue(maxsize=16)
        self.first_next = threading.Event()
        self.closed = threading.Event()
        self.current: str | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="lambda-runtime-api", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        """host:port, for AWS_LAMBDA_RUNTIME_API."""
        return f"127.0.0.1:{self._server.server_address[1]}"

    def hand(self, invocation: Invocation) -> None:
        """Give the environment its next invocation (it takes it with `next`)."""
        self._pending.put(invocation, timeout=1.0)

    def next(self) -> Invocation | None:
        """The invocation for a `next` call, after a short wait; None: ask again."""
        self.first_next.set()
        try:
            invocation = self._pending.get(timeout=NEXT_WAIT_S)
        except queue.Empty:
            return None
        self.current = invocation.request_id
        return invocation

    def close(self) -> None:
        """Stop serving."""
        self.closed.set()
        self._server.shutdown()
        self._server.server_close()


def _handler_for(api: RuntimeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # One segment per answer, sent at once: unbuffered writes of headers, then body,
        # meet the client's delayed ACK and cost ~40 ms each.
        wbufsize = 1 << 16
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the environment's own log says what happened

        def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path != f"{PREFIX}/invocation/next":
                self._reply(404, b'{"errorType": "InvalidRequest"}')
                return
            invocation = None
            while invocation is None:  # the client never gives up on next; neither do we
                if api.closed.is_set():
                    self._reply(500, b'{"errorType": "Runtime.Shutdown"}')
                    return
                invocation = api.next()
            self._reply(200, invocation.event, {
                "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": invocation.function_arn,
                "Lambda-Runtime-Trace-Id": invocation.trace_id,
            })

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_PAYLOAD:
                self.rfile.read(length)
                self._reply(413, b'{"errorType": "Function.ResponseSizeTooLarge"}')
                api.answers.put(Answer("error", b'{"errorMessage": "Response payload size exceeded maximum allowed '
                                                 b'payload size (6291556 bytes).", "errorType": "Function.ResponseSizeTooLarge"}',
                                       "Function.ResponseSizeTooLarge"))
                return
            body = self.rfile.read(length)
            error_type = self.headers.get("Lambda-Runtime-Function-Error-Type") or ""
            if self.path == f"{PREFIX}/init/error":
                api.answers.put(Answer("init_error", body, error_type))
            elif self.path == f"{PREFIX}/invocation/{api.current}/response":
                api.answers.put(Answer("response", body))
            elif self.path == f"{PREFIX}/invocation/{api.current}/error":
                api.answers.put(Answer("error", body, error_type))
            else:
                self._reply(400, b'{"errorType": "InvalidRequestID"}')
                return
            self._reply(202, b'{"status": "OK"}')

    return Handler
