"""The WSGI layer in front of moto's SQS app: API faults, the redrive API, and the
emulator's control endpoint.

* ``/_sqslab/lab`` (GET): the behaviour and fault rules in force, as JSON;
  ``/_sqslab/faults`` (POST a rule, sqsfaults.check_rule's format): add a fault rule
  now (the timed `sqs_fault` action); ``/_sqslab/behavior`` (POST settings): change
  behaviour settings; ``/_sqslab/journal/flush`` (POST): write the calls counted so
  far (usage.py) and the SQS journal's buffered lines now; ``/_sqslab/queues`` (POST ``{"names": [...], "messages": bool,
  "limit": N}``): each named queue's exact state (state.snapshot), the lab's own channel
  for settling and the final audit; ``/_sqslab/effects?id=PATH`` (POST a JSON object): one
  effect of a consumer's work (effects.py); ``/_sqslab/effects/table`` (POST ``{"table",
  "id"}``): a DynamoDB table whose writes are effects. Loopback only, as the emulator itself.
* Every SQS call is named (``X-Amz-Target`` for the JSON protocol, ``Action`` for the
  query protocol) and put to the lab's fault plan: a fired rule waits its latency,
  then answers with SQS's error response, or (``timeout``) lets the call take effect
  and closes the connection without an answer.
* StartMessageMoveTask, ListMessageMoveTasks and CancelMessageMoveTask are answered
  by redrive.py, in either protocol.
* Malformed requests: a body is read only up to MAX_REQUEST_BODY (a longer one gets
  SQS's error unread); an action SQS does not have is UnknownOperationException (JSON)
  or InvalidAction / MissingAction (query); whatever escapes moto, or a 5xx page it
  made, becomes SQS's InternalFailure in the request's protocol. The rest of SQS's
  validation is sqs_responses.py's.
"""

from __future__ import annotations

import io
import json
import socket
import sys
import time
import traceback
import urllib.parse
import zlib
from collections.abc import Callable, Iterable
from typing import Any

from sqslab.consumer.sqsfaults import ERRORS, SQS_APIS, TIMEOUT, error_response, shaped_error
from sqslab.contracts import ACCESS_KEY_PREFIX
from sqslab.emulator import effects, redrive
from sqslab.emulator.lab import Behavior, current

CONTROL_PREFIX = "/_sqslab/"
#: A request with this header is sqslab observing (its sampler, its audit): no fault hits it.
OBSERVER_HEADER = "X-Sqslab-Observer"
_OBSERVER_KEY = "HTTP_" + OBSERVER_HEADER.upper().replace("-", "_")
#: Callers that are the lab itself (their access keys: `sqslab-setup`, the observer header).
LAB_CALLERS = frozenset({"setup", "observer"})
#: The largest control request body read (a fault rule is a few hundred bytes; an effect's
#: body is the consumer's own result, refused above this with 413 and the limit named).
MAX_CONTROL_BODY = 64 * 1024
#: The largest SQS request body read. SQS caps a message (or a batch's messages) at 1 MiB;
#: encoded, that is up to 3 MiB (a query body percent-encodes a byte as %XX, a JSON body
#: escapes a non-BMP character as two \uXXXX), so every request SQS could take fits.
#: A longer one is refused unread (and the connection closed).
MAX_REQUEST_BODY = 3 * 1024 * 1024 + 64 * 1024
_JSON_PREFIX = "AmazonSQS."
_SQS_APIS = frozenset(SQS_APIS)

StartResponse = Callable[..., Any]
App = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def wrap(sqs_app: App) -> App:
    """moto's SQS app with faults and the redrive API in front of it, and a safety net
    behind it: every answer is in SQS's shape, whatever the request."""

    direct = _direct_app()

    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        protocol = "json" if environ.get("HTTP_X_AMZ_TARGET") else "query"
        refused = _read_body(environ, protocol)
        if refused is not None:
            return _send(start_response, *refused)
        api, protocol = _api(environ)
        refused = _unknown_api(api, protocol, environ)
        if refused is not None:
            return _send(start_response, *refused)
        assert api is not None
        to_root = environ.get("PATH_INFO") in ("/", "") and environ.get("REQUEST_METHOD") == "POST"
        answer = _netted(direct if protocol == "json" and to_root else sqs_app, protocol)
        if api in redrive.APIS:
            answer = _redrive_app(api, protocol)
        lab = current()
        observer = _OBSERVER_KEY in environ
        by = "observer" if observer else caller(environ)
        lab.begin_call(by)
        if not observer:
            lab.first_call(by, api)
        # Faults are for the system under test: never the lab's own setup and readings.
        ours = observer or by in LAB_CALLERS
        decision = lab.faults.decide(api) if lab.faults and not ours else None
        if decision is None:
            return _counted(lab, api, answer(environ, start_response))
        lab.emit(**decision.event(api))
        if decision.error in ERRORS:
            lab.record("fault", api=api, error=decision.error)
        if decision.latency:
            time.sleep(decision.latency)
        if decision.error in ERRORS:
            return _send(start_response, *error_response(decision.error, protocol))
        if decision.error == TIMEOUT:
            return _counted(lab, api, _drop_answer(answer, environ, start_response))
        return _counted(lab, api, answer(environ, start_response))

    return application


def _direct_app() -> App:
    """moto's SQS dispatch as its Flask app calls it for a JSON-protocol POST to ``/``
    (every current SDK's call), without Flask around it: routing, the request context,
    CORS hooks and the response class cost about a fifth of the time of such a request.
    The query protocol, and any other path or method, still go through the Flask app."""
    from moto.sqs.responses import SQSResponse
    from werkzeug.wrappers import Request, Response

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        result = SQSResponse.dispatch(request, request.url, dict(request.headers))
        status, headers, content = result if len(result) == 3 else (200, {}, result)  # as moto's Flask view reads it
        response: Iterable[bytes] = Response(response=content, status=status, headers=headers)(environ, start_response)
        return response

    return app


def _counted(lab: Any, api: str, body: Iterable[bytes]) -> Iterable[bytes]:
    """`body`, the answer to a call, once the call is counted in the lab's usage."""
    lab.end_call(api)
    return body


def caller(environ: dict[str, Any]) -> str:
    """Who signed a request: the access key id in its SigV4 Authorization header (the
    local target gives every task and sqslab's own clients one each), without the
    `sqslab-` prefix; `?` for an unsigned request."""
    auth = str(environ.get("HTTP_AUTHORIZATION", ""))
    start = auth.find("Credential=")
    if start < 0:
        return "?"
    key = auth[start + 11:].split("/", 1)[0].strip()
    return key[len(ACCESS_KEY_PREFIX):] if key.startswith(ACCESS_KEY_PREFIX) else key or "?"


def _redrive_app(api: str, protocol: str) -> App:
    """The message move task APIs, which moto does not have (redrive.py), in either protocol."""

    def answer(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        return _send(start_response, *redrive.answer(api, environ["wsgi.input"].getvalue(), protocol))

    return answer


def _api(environ: dict[str, Any]) -> tuple[str | None, str]:
    """(the SQS action a request calls, its protocol: json or query)."""
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.rsplit(".", 1)[-1], "json"
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" in query:
        return query["Action"][0], "query"
    if "form-urlencoded" in environ.get("CONTENT_TYPE", ""):
        form = urllib.parse.parse_qs(environ["wsgi.input"].getvalue().decode("utf-8", "replace"))
        if "Action" in form:
            return form["Action"][0], "query"
    return None, "query"


def _unknown_api(api: str | None, protocol: str, environ: dict[str, Any]) -> tuple[int, dict[str, str], bytes] | None:
    """SQS's answer to a request for no SQS action (None: the action is SQS's)."""
    if protocol == "json":
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        if not target.startswith(_JSON_PREFIX) or api not in _SQS_APIS:
            # AWS's JSON front end answers this itself, outside SQS's error model.
            return shaped_error(400, "UnknownOperationException", f"Unknown operation {target}.",
                                namespace="com.amazon.coral.service")
        return None
    if api is None:
        return shaped_error(400, "MissingAction", "The request must contain the parameter Action.",
                            query_code="MissingAction", protocol="query")
    if api not in _SQS_APIS:
        return shaped_error(400, "InvalidAction", f"The action {api[:100]} is not valid for this endpoint.",
                            query_code="InvalidAction", protocol="query")
    return None


def _read_body(environ: dict[str, Any], protocol: str) -> tuple[int, dict[str, str], bytes] | None:
    """Read the request body (at most MAX_REQUEST_BODY bytes, gzip inflated within the same
    limit) and leave it for the app as a BytesIO with its exact length; or, for a longer
    body, SQS's answer (the body is not read and the connection is closed)."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = -1
    stream = environ["wsgi.input"]
    if length > MAX_REQUEST_BODY:
        body = None
    elif length > 0:
        body = stream.read(length)
    elif environ.get("wsgi.input_terminated") or length < 0:  # chunked, or a length we cannot use
        body = stream.read(MAX_REQUEST_BODY + 1)
        body = body if len(body) <= MAX_REQUEST_BODY else None
    else:
        body = b""
    if body is not None and "gzip" in str(environ.get("HTTP_CONTENT_ENCODING", "")):
        body = _gunzip(body)
        if body is not None:
            environ.pop("HTTP_CONTENT_ENCODING", None)
    if body is None:
        refused = _too_long(environ, protocol)
        if "werkzeug.socket" in environ:
            refused[1]["Connection"] = "close"  # what is left of the body is not read (waitress read it, bounded)
        return refused
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    return None


def _gunzip(body: bytes) -> bytes | None:
    """body inflated, None if that is over MAX_REQUEST_BODY (never inflating more)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, MAX_REQUEST_BODY + 1)
    except zlib.error:
        return body  # not gzip after all: moto answers it as it is
    return out if len(out) <= MAX_REQUEST_BODY else None


def _too_long(environ: dict[str, Any], protocol: str) -> tuple[int, dict[str, str], bytes]:
    """SQS's answer to a request longer than any it takes."""
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    batch = target.endswith(".SendMessageBatch") or "Action=SendMessageBatch" in str(environ.get("QUERY_STRING", ""))
    if batch:
        return shaped_error(400, "BatchRequestTooLong", f"Batch requests cannot be longer than {MAX_MESSAGE_BYTES} bytes.",
                            query_code="BatchRequestTooLong", protocol=protocol)
    return shaped_error(400, "InvalidParameterValue", "One or more parameters are invalid. Reason: Message must be shorter "
                        f"than {MAX_MESSAGE_BYTES} bytes.", query_code="InvalidParameterValue", protocol=protocol)


#: SQS's largest message (MaximumMessageSize at most), and a batch's messages together.
MAX_MESSAGE_BYTES = 1024 * 1024


def _netted(app: App, protocol: str) -> App:
    """app, with anything that escapes it or any 5xx it answers on its own (Flask's HTML
    page) turned into SQS's InternalFailure, in the request's protocol, and logged.
    Malformed requests never get here as a 5xx: sqs_responses answers them with 400s."""

    def netted(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        said: list[Any] = []

        def keep(status: str, headers: list[Any], exc_info: Any = None) -> Callable[[bytes], None]:
            said[:] = [status, headers]
            return _no_write

        try:
            body = app(environ, keep)
            if not said:  # an app that answers lazily: take its body to see its status
                body = [b"".join(body)]
        except Exception as exc:  # noqa: BLE001  (the net: never an HTML 500)
            _log("an SQS request failed in the emulator", exc)
            return _send(start_response, *error_response("internal", protocol))
        status = str(said[0]) if said else "500"
        if status.startswith("5") and not any(str(k).lower() == "x-amzn-requestid" for k, _ in said[1]):
            _close(body)
            sys.stderr.write(f"sqslab emulator: moto answered {status} to {environ.get('HTTP_X_AMZ_TARGET') or 'a query'} "
                             "request; answered InternalFailure\n")
            return _send(start_response, *error_response("internal", protocol))
        start_response(said[0], said[1])
        return body

    return netted


def _no_write(data: bytes) -> None:
    raise RuntimeError("the SQS app wrote through write(); the safety net needs its answer returned")


def _close(body: Iterable[bytes]) -> None:
    close = getattr(body, "close", None)
    if close is not None:
        close()


def _log(what: str, exc: BaseException) -> None:
    sys.stderr.write(f"sqslab emulator: {what}:\n{''.join(traceback.format_exception(exc))}")
    sys.stderr.flush()


def _body(environ: dict[str, Any], limit: int) -> bytes:
    """The request body (at most limit bytes), left readable for the app after us."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(min(max(length, 0), limit)) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _send(start_response: StartResponse, status: int, headers: dict[str, str], body: bytes) -> list[bytes]:
    start_response(f"{status} {_REASONS.get(status, 'Error')}", list(headers.items()))
    return [body]


_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 500: "Internal Server Error",
            503: "Service Unavailable"}


def _drop_answer(sqs_app: App, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    """Carry the call out, then close the connection instead of answering. What the call
    received is journalled as not handed over (as SQS's own lost receives)."""
    lab = current()
    lab.calls.dropped = True
    try:
        list(sqs_app(environ, lambda *args, **kwargs: None))
    finally:
        lab.calls.dropped = False
    sock = environ.get("werkzeug.socket")
    if sock is None:  # waitress: the request's channel, reached through the one callable it hands over
        sock = getattr(getattr(environ.get("waitress.client_disconnected"), "__self__", None), "socket", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    start_response("200 OK", [("Content-Length", "0")])
    return []


# ---------------------------------------------------------------- control


def is_control(environ: dict[str, Any]) -> bool:
    """Whether a request is for the control endpoint."""
    return str(environ.get("PATH_INFO", "")).startswith(CONTROL_PREFIX)


def control(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    """Answer a control request."""
    path = environ.get("PATH_INFO", "")[len(CONTROL_PREFIX):]
    method = environ.get("REQUEST_METHOD", "GET")
    lab = current()
    try:
        if path == "lab" and method == "GET":
            return _json(start_response, 200, {"behavior": lab.behavior.as_dict(), "faults": lab.faults.rules(), "seed": lab.seed})
        if path == "journal/flush" and method == "POST":
            lab.write_usage()
            lab.journal.flush()
            return _json(start_response, 200, {"flushed": True})
        if path == "effects" and method == "POST":
            status, answer = effects.post(environ, _body(environ, MAX_CONTROL_BODY), lab)
            return _json(start_response, status, answer)
        if path == "effects/table" and method == "POST":
            return _json(start_response, 200, effects.register_table(json.loads(_body(environ, MAX_CONTROL_BODY) or b"{}"), lab))
        if path == "queues" and method == "POST":
            return _json(start_response, 200, _queue_states(json.loads(_body(environ, MAX_CONTROL_BODY) or b"{}")))
        if path == "faults" and method == "POST":
            rule = lab.faults.add(json.loads(_body(environ, MAX_CONTROL_BODY) or b"{}"))
            lab.emit("sqs_fault_rule", rule=rule)
            return _json(start_response, 200, rule)
        if path == "behavior" and method == "POST":
            # {"behavior": "aws"} starts again from that profile; other keys change one setting each.
            settings = json.loads(_body(environ, MAX_CONTROL_BODY) or b"{}")
            if not isinstance(settings, dict):
                raise ValueError("POST a JSON object of behaviour settings")
            profile = settings.pop("behavior", None)
            base = Behavior.resolve(profile).as_dict() if profile is not None else lab.behavior.as_dict()
            lab.behavior = Behavior.resolve("exact", **{**base, **settings})
            return _json(start_response, 200, lab.behavior.as_dict())
    except (ValueError, TypeError) as exc:
        return _json(start_response, 400, {"error": str(exc)})
    return _json(start_response, 404, {"error": f"no control endpoint {method} {CONTROL_PREFIX}{path}"})


#: The most messages one `queues` control request lists per queue (the audit's own limit).
MAX_LISTED = 1_000_000


def _queue_states(request: Any) -> dict[str, Any]:
    """The exact state of each queue named in the request, by name (null: no such queue)."""
    from moto.sqs.models import sqs_backends

    from sqslab.emulator.state import snapshot

    if not isinstance(request, dict) or not isinstance(request.get("names"), list):
        raise ValueError('POST {"names": [queue names], "messages": true|false, "limit": N}')
    limit = request.get("limit", MAX_LISTED)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= MAX_LISTED:
        raise ValueError(f"limit must be a whole number from 0 to {MAX_LISTED}")
    queues = {}
    for account in list(sqs_backends.values()):
        for backend in list(account.values()):
            queues.update(backend.queues)
    states = {str(name): snapshot(queues[name], bool(request.get("messages")), limit) if name in queues else None
              for name in request["names"]}
    if request.get("messages"):
        current().journal.flush()  # the expiries this read applied are in the journal before the ledger reads it
    return states


def _json(start_response: StartResponse, status: int, data: Any) -> list[bytes]:
    body = json.dumps(data).encode()
    return _send(start_response, status, {"Content-Type": "application/json", "Content-Length": str(len(body))}, body)
