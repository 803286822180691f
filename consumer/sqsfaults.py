"""SQS API faults on demand: which calls fail, how, and the responses SQS gives for them.

One module for both places a fault is made:

* server side, in sqslab's SQS emulator, so any client in any language sees it;
* client side, in a boto3 client (``install``), through botocore's ``before-send``
  event, for endpoints sqslab does not run (the aws target): the client gets the same
  HTTP response the emulator would send, parses it and retries it exactly as it would
  an answer from SQS.

A rule is a plain dict (JSON in the environment, on the emulator's command line):

    {"api": ["DeleteMessage"] | ["*"], "error": "throttling" | ... | None, "rate": 0.1,
     "latency": [low_s, high_s] | None, "start": epoch_s | None, "end": epoch_s | None,
     "label": "sqs.faults[0]"}

Rules are checked in order for each call; a rule in its window whose draw falls under
its rate fires and decides the call (the rest are not drawn). Draws come from one
``random.Random`` seeded by the scenario's seed: the same sequence of calls gets the
same faults (threads interleave calls, so a concurrent run is only statistically the
same).

This file needs the standard library only (botocore for ``install``); the consumer
image ships it beside consume.py.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

#: Every SQS API (botocore's SQS operation names; a test keeps this list equal to them).
SQS_APIS = (
    "AddPermission", "CancelMessageMoveTask", "ChangeMessageVisibility", "ChangeMessageVisibilityBatch", "CreateQueue",
    "DeleteMessage", "DeleteMessageBatch", "DeleteQueue", "GetQueueAttributes", "GetQueueUrl", "ListDeadLetterSourceQueues",
    "ListMessageMoveTasks", "ListQueueTags", "ListQueues", "PurgeQueue", "ReceiveMessage", "RemovePermission", "SendMessage",
    "SendMessageBatch", "SetQueueAttributes", "StartMessageMoveTask", "TagQueue", "UntagQueue",
)  # fmt: skip

#: Error kind -> (HTTP status, error code, its awsQuery code or None, fault side, message),
#: as SQS answers: RequestThrottled is a modelled SQS error (the Smithy model gives 403 and
#: the query code); the others are the common errors of SQS's API reference.
ERRORS: dict[str, tuple[int, str, str | None, str, str]] = {
    "throttling": (403, "RequestThrottled", "RequestThrottled", "Sender", "Rate exceeded"),
    "internal": (500, "InternalFailure", None, "Receiver",
                 "The request processing has failed because of an unknown error, exception or failure."),
    "unavailable": (503, "ServiceUnavailable", None, "Receiver", "The request has failed due to a temporary failure of the server."),
    "access_denied": (400, "AccessDeniedException", None, "Sender", "You do not have sufficient access to perform this action."),
}
#: `timeout`: the call is carried out, but no answer comes (the connection is closed after
#: the rule's latency, 1 s by default), as when a response is lost on the way.
TIMEOUT = "timeout"
KINDS = (*ERRORS, TIMEOUT)
DEFAULT_TIMEOUT_LATENCY = 1.0


def error_response(kind: str, protocol: str = "json", request_id: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of SQS's answer for an error kind, in the request's
    protocol: `json` (AWS JSON 1.0, what current SDKs send) or `query` (XML)."""
    status, code, query_code, side, message = ERRORS[kind]
    return shaped_error(status, code, message, query_code=query_code, side=side, protocol=protocol, request_id=request_id)


def shaped_error(status: int, code: str, message: str, query_code: str | None = None, side: str = "Sender",
                 protocol: str = "json", request_id: str | None = None,
                 namespace: str = "com.amazonaws.sqs") -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of an SQS error response: `__type` and, for SQS's modelled
    errors, the `x-amzn-query-error` header (JSON), or an ErrorResponse document (query).
    `namespace` prefixes `__type`: SQS's own errors are `com.amazonaws.sqs`, the errors of
    AWS's JSON front end itself (SerializationException, UnknownOperationException)
    `com.amazon.coral.service`."""
    request_id = request_id or str(uuid.uuid4())
    if protocol == "json":
        body = json.dumps({"__type": f"{namespace}#{code}", "message": message}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": request_id}
        if query_code:
            headers["x-amzn-query-error"] = f"{query_code};{side}"
    else:
        text = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        body = (f'<?xml version="1.0"?><ErrorResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/">'
                f"<Error><Type>{side}</Type><Code>{query_code or code}</Code><Message>{text}</Message><Detail/></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>").encode()
        headers = {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}
    headers["Content-Length"] = str(len(body))
    return status, headers, body


class Decision:
    """What a fired rule does to one call: wait `latency` seconds, then fail with
    `error` (an ERRORS kind, `timeout`, or None: the call goes on, only later)."""

    __slots__ = ("error", "label", "latency")

    def __init__(self, error: str | None, latency: float, label: str) -> None:
        self.error, self.latency, self.label = error, latency, label

    def event(self, api: str) -> dict[str, Any]:
        """The event that tells of this fault."""
        return {"event": "sqs_fault", "api": api, "kind": self.error or "latency", "latency": round(self.latency, 3),
                "rule": self.label}


class FaultPlan:
    """The rules in force, and the seeded draws that decide each call. Thread safe;
    rules can be added while calls go on (a timed `sqs_fault` action)."""

    def __init__(self, rules: list[dict[str, Any]] | None = None, seed: Any = None) -> None:
        self._rules: list[dict[str, Any]] = []
        self._rng = random.Random(f"sqs-faults:{seed}") if seed is not None else random.Random()
        self._lock = threading.Lock()
        for rule in rules or []:
            self.add(rule)

    def add(self, rule: dict[str, Any]) -> dict[str, Any]:
        """Put a rule in force (checked: ValueError names what is wrong); returns it normalized."""
        rule = check_rule(rule)
        with self._lock:
            self._rules.append(rule)
        return rule

    def rules(self) -> list[dict[str, Any]]:
        """The rules, in order (copies)."""
        with self._lock:
            return [dict(r) for r in self._rules]

    def __bool__(self) -> bool:
        return bool(self._rules)

    def decide(self, api: str, now: float | None = None) -> Decision | None:
        """Whether a call to `api` at `now` (epoch seconds) is faulted, and how."""
        if not self._rules:
            return None
        now = time.time() if now is None else now
        with self._lock:
            for rule in self._rules:
                if rule["api"] != ["*"] and api not in rule["api"]:
                    continue
                if (rule["start"] is not None and now < rule["start"]) or (rule["end"] is not None and now >= rule["end"]):
                    continue
                if self._rng.random() >= rule["rate"]:
                    continue
                low, high = rule["latency"] or ((DEFAULT_TIMEOUT_LATENCY,) * 2 if rule["error"] == TIMEOUT else (0.0, 0.0))
                latency = low if high <= low else self._rng.uniform(low, high)
                return Decision(rule["error"], latency, rule["label"])
        return None


def check_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A rule with every key, checked; ValueError says what is wrong."""
    if not isinstance(rule, dict):
        raise ValueError(f"a fault rule is an object, not {type(rule).__name__}")
    unknown = set(rule) - {"api", "error", "rate", "latency", "start", "end", "label"}
    if unknown:
        raise ValueError(f"unknown key(s) in a fault rule: {', '.join(sorted(unknown))}")
    apis = rule.get("api", "*")
    apis = [apis] if isinstance(apis, str) else list(apis)
    bad = [a for a in apis if a != "*" and a not in SQS_APIS]
    if not apis or bad:
        raise ValueError(f"not an SQS API: {', '.join(map(str, bad)) or '(none given)'}")
    error = rule.get("error")
    if error is not None and error not in KINDS:
        raise ValueError(f"error {error!r} is not one of {', '.join(KINDS)}")
    rate = float(rule.get("rate", 1.0))
    if not 0 <= rate <= 1:
        raise ValueError(f"rate {rate} is not from 0 to 1")
    latency = rule.get("latency")
    if latency is not None:
        low, high = (float(latency), float(latency)) if isinstance(latency, (int, float)) else (float(latency[0]), float(latency[1]))
        if not 0 <= low <= high:
            raise ValueError(f"latency {latency!r} is not LOW..HIGH seconds with 0 <= LOW <= HIGH")
        latency = [low, high]
    if error is None and latency is None:
        raise ValueError("a fault rule needs an error, a latency, or both")
    return {"api": ["*"] if "*" in apis else apis, "error": error, "rate": rate, "latency": latency,
            "start": _epoch(rule.get("start")), "end": _epoch(rule.get("end")), "label": str(rule.get("label") or "fault")}


def _epoch(value: Any) -> float | None:
    return None if value is None else float(value)


def describe_fault(rule: dict[str, Any]) -> str:
    """A rule in words: `DeleteMessage: throttling at 10%`, `*: latency 10ms..20ms at 50%`."""
    parts = [rule["error"]] if rule["error"] else []
    if rule["latency"]:
        low, high = (f"{round(v * 1000)}ms" if v < 1 else f"{v:g}s" for v in rule["latency"])
        parts.append(f"latency {low}" + (f"..{high}" if high != low else ""))
    return f"{', '.join(rule['api'])}: {' + '.join(parts)} at {rule['rate']:.0%}"


def rules_from_env(text: str | None) -> list[dict[str, Any]]:
    """The rules in SQSLAB_SQS_FAULTS (a JSON list), checked; ValueError when malformed."""
    if not text or not text.strip():
        return []
    try:
        rules = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"SQSLAB_SQS_FAULTS is not JSON: {exc}") from None
    if not isinstance(rules, list):
        raise ValueError("SQSLAB_SQS_FAULTS is not a JSON list of fault rules")
    return [check_rule(r) for r in rules]


# --------------------------------------------------------------------------- client side


class _Body:
    """The raw body of a made-up response, as botocore reads it."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data

    def read(self, *_: Any) -> bytes:
        data, self._data = self._data, b""
        return data


def install(client: Any, plan: FaultPlan, emit: Callable[..., None], sleep: Callable[[float], None] = time.sleep) -> None:
    """Apply `plan` to every call `client` (a boto3 SQS client) makes, each attempt on its
    own, as the emulator would: an error is the HTTP response SQS sends for it (botocore
    parses and retries it as usual), `timeout` a read timeout (here the call is NOT
    carried out: the client cannot do half a request), latency a sleep. `emit(event,
    **fields)` tells of each fault (`sqs_fault`, `side: client`)."""
    from botocore.awsrequest import AWSResponse
    from botocore.exceptions import ReadTimeoutError

    def before_send(request: Any, event_name: str = "", **_: Any) -> Any:
        api = event_name.rsplit(".", 1)[-1]
        decision = plan.decide(api)
        if decision is None:
            return None
        fields = decision.event(api)
        emit(fields.pop("event"), side="client", **fields)
        if decision.latency:
            sleep(decision.latency)
        if decision.error is None:
            return None
        if decision.error == TIMEOUT:
            raise ReadTimeoutError(endpoint_url=request.url)
        protocol = "json" if "X-Amz-Target" in request.headers else "query"
        status, headers, body = error_response(decision.error, protocol)
        return AWSResponse(request.url, status, headers, _Body(body))

    client.meta.events.register("before-send.sqs", before_send)


def observe(client: Any, emit: Callable[..., None]) -> None:
    """Tell of what the SDK did about errors: `retried` before each retry (the attempt
    and the error that caused it), `api_error` for a call that failed after its retries
    (its error code and attempts)."""

    def needs_retry(response: Any = None, caught_exception: Any = None, request_dict: Any = None, **_: Any) -> None:
        # botocore's own retry handler decides; this one only remembers the error.
        if request_dict is not None:
            request_dict["context"]["sqslab_error"] = _error_code(response, caught_exception)

    calls = threading.local()  # the call in progress on this thread: its request context

    def before_call(context: Any = None, **_: Any) -> None:
        calls.context = context

    def before_send(request: Any, event_name: str = "", **_: Any) -> None:
        # request.context is there in recent botocore only; the call's context otherwise.
        context = getattr(request, "context", None) or getattr(calls, "context", None) or {}
        attempt = context.get("retries", {}).get("attempt", 1)
        if attempt > 1:
            emit("retried", api=event_name.rsplit(".", 1)[-1], attempt=attempt, error=context.get("sqslab_error"))

    def after_call(http_response: Any = None, parsed: Any = None, context: Any = None, event_name: str = "", **_: Any) -> None:
        if http_response is not None and http_response.status_code >= 300:
            code = (parsed or {}).get("Error", {}).get("Code") or str(http_response.status_code)
            emit("api_error", api=event_name.rsplit(".", 1)[-1], error=code, attempts=_attempts(context))

    def after_call_error(exception: Any = None, context: Any = None, event_name: str = "", **_: Any) -> None:
        emit("api_error", api=event_name.rsplit(".", 1)[-1], error=type(exception).__name__, attempts=_attempts(context))

    events = client.meta.events
    events.register("before-call.sqs", before_call)
    events.register("needs-retry.sqs", needs_retry)
    events.register_first("before-send.sqs", before_send)
    events.register("after-call.sqs", after_call)
    events.register("after-call-error.sqs", after_call_error)


def _attempts(context: Any) -> int:
    return int(((context or {}).get("retries") or {}).get("attempt", 1))


def _error_code(response: Any, caught_exception: Any) -> str | None:
    if caught_exception is not None:
        return type(caught_exception).__name__
    if response is not None:
        http, parsed = response
        if http is not None and http.status_code >= 300:
            return str((parsed or {}).get("Error", {}).get("Code") or http.status_code)
    return None
