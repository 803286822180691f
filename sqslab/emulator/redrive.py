"""DLQ redrive in the emulator: StartMessageMoveTask, ListMessageMoveTasks and
CancelMessageMoveTask, which moto does not implement, with SQS's semantics.

As the SQS Developer Guide documents them ("Learn how to configure a dead-letter queue
redrive"; the API reference of the three actions):

* the source must be the dead-letter queue of some queue, else InvalidParameterValue
  "Source queue must be configured as a Dead Letter Queue.";
* without DestinationArn each message goes back to the queue it was dead-lettered from;
  a FIFO DLQ redrives to a FIFO queue only;
* MaxNumberOfMessagesPerSecond is at most 500; without it the emulator moves
  DEFAULT_RATE per second (SQS: "system optimized");
* one active task per source queue;
* "All redriven messages are considered new messages with a new messageID and
  enqueueTime": a moved message gets a new MessageId, SentTimestamp and retention
  period, and its receive count starts again at 0 (it is sent anew). The ledger follows
  it by the payload's id, as it follows any message;
* a task moves the messages that were visible when it started, oldest first (in-flight
  ones stay); cancelling stops it between two messages, and what moved stays moved.

Each request is answered here, before moto sees it, in the AWS JSON protocol (what every
current SDK sends) or the query protocol (form parameters in, XML out). Tasks run on one thread each and take the emulator's lock to move.
"""

from __future__ import annotations

import base64
import heapq
import json
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape as xml_escape

from sqslab.consumer.sqsfaults import error_response, shaped_error
from sqslab.emulator.lab import current as current_lab
from sqslab.emulator.state import LOCK, READY, _drop, _live, _promote, now_ms

APIS = ("StartMessageMoveTask", "ListMessageMoveTasks", "CancelMessageMoveTask")
MAX_RATE = 500
DEFAULT_RATE = 500
#: Finished tasks kept per source queue for ListMessageMoveTasks (which shows 10 at most).
KEPT_PER_SOURCE = 10
_TICK = 0.05


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class MoveTask:
    """One message movement task."""

    task_id: str
    source_arn: str
    destination_arn: str | None
    rate: int | None
    to_move: int
    started_ms: int
    status: str = "RUNNING"
    moved: int = 0
    failure: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def handle(self) -> str:
        """The TaskHandle: which source and which task, as SQS's own handles say."""
        raw = json.dumps({"taskId": self.task_id, "sourceArn": self.source_arn}, separators=(",", ":"))
        return base64.b64encode(raw.encode()).decode()

    def listing(self) -> dict[str, Any]:
        """The task as ListMessageMoveTasks shows it."""
        out: dict[str, Any] = {"Status": self.status, "SourceArn": self.source_arn,
                               "ApproximateNumberOfMessagesMoved": self.moved,
                               "ApproximateNumberOfMessagesToMove": self.to_move, "StartedTimestamp": self.started_ms}
        if self.status == "RUNNING":
            out["TaskHandle"] = self.handle
        if self.destination_arn:
            out["DestinationArn"] = self.destination_arn
        if self.rate is not None:
            out["MaxNumberOfMessagesPerSecond"] = self.rate
        if self.failure:
            out["FailureReason"] = self.failure
        return out


_tasks: dict[str, list[MoveTask]] = {}  # source ARN -> its tasks, newest first
_tasks_lock = threading.Lock()


#: Each API's parameters: name -> (type, required), as SQS's API reference gives them.
_PARAMETERS: dict[str, dict[str, tuple[type, bool]]] = {
    "StartMessageMoveTask": {"SourceArn": (str, True), "DestinationArn": (str, False), "MaxNumberOfMessagesPerSecond": (int, False)},
    "ListMessageMoveTasks": {"SourceArn": (str, True), "MaxResults": (int, False)},
    "CancelMessageMoveTask": {"TaskHandle": (str, True)},
}
_XMLNS = "http://queue.amazonaws.com/doc/2012-11-05/"


def answer(api: str, body: bytes, protocol: str = "json") -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of SQS's answer to one of APIS, in the request's protocol
    (json: AWS JSON 1.0; query: form parameters in, XML out)."""
    try:
        request = _request(api, body, protocol)
        result = {"StartMessageMoveTask": start, "ListMessageMoveTasks": list_tasks, "CancelMessageMoveTask": cancel}[api](request)
    except _Refused as exc:
        namespace = "com.amazon.coral.service" if exc.code == "SerializationException" else "com.amazonaws.sqs"
        query_code = None if exc.code == "SerializationException" else exc.code
        return shaped_error(exc.status, exc.code, exc.message, query_code=query_code, protocol=protocol, namespace=namespace)
    except Exception as exc:  # noqa: BLE001  (SQS's 500, never Flask's HTML page)
        sys.stderr.write(f"sqslab emulator: {api} failed: {''.join(traceback.format_exception(exc))}")
        return error_response("internal", protocol)
    request_id = str(uuid.uuid4())
    if protocol == "json":
        data = json.dumps(result).encode()
        content_type = "application/x-amz-json-1.0"
    else:
        data = (f'<?xml version="1.0"?><{api}Response xmlns="{_XMLNS}"><{api}Result>{_xml(result)}</{api}Result>'
                f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{api}Response>").encode()
        content_type = "text/xml"
    return 200, {"Content-Type": content_type, "x-amzn-RequestId": request_id, "Content-Length": str(len(data))}, data


def _request(api: str, body: bytes, protocol: str) -> dict[str, Any]:
    """The request's parameters, checked against _PARAMETERS (SQS's error for what is wrong)."""
    expected = _PARAMETERS[api]
    if protocol == "json":
        try:
            request = json.loads(body) if body.strip() else {}
        except ValueError as exc:  # UnicodeDecodeError included
            raise _Refused(400, "SerializationException", f"The request body is not UTF-8 JSON: {exc}.") from None
        if not isinstance(request, dict):
            raise _Refused(400, "SerializationException", "The request body is not a JSON object.")
        for name, (kind, _) in expected.items():
            value = request.get(name)
            if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
                raise _Refused(400, "SerializationException", f"Expected {kind.__name__} for {name}, got {type(value).__name__}.")
    else:
        try:
            form = urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise _Refused(400, "InvalidParameterValue", "The request is not valid UTF-8.") from None
        request = {}
        for name, (kind, _) in expected.items():
            if name in form:
                text = form[name][0]
                try:
                    request[name] = kind(text)
                except ValueError:
                    raise _Refused(400, "InvalidParameterValue",
                                   f"Value {text[:100]} for parameter {name} is invalid. Reason: must be an integer.") from None
    for name, (_, required) in expected.items():
        if required and request.get(name) is None:
            raise _Refused(400, "MissingParameter", f"The request must contain the parameter {name}.")
    return request


def _xml(value: Any, name: str | None = None) -> str:
    """A result as query-protocol XML; a list is flattened, each item named as SQS names
    it (ListMessageMoveTasksResultEntry)."""
    if isinstance(value, dict):
        return "".join(_xml(item, key) for key, item in value.items())
    if isinstance(value, list):
        return "".join(f"<ListMessageMoveTasksResultEntry>{_xml(item)}</ListMessageMoveTasksResultEntry>" for item in value)
    return f"<{name}>{xml_escape(str(value))}</{name}>"


def _backend_and_queue(arn: Any, parameter: str) -> tuple[Any, Any]:
    """The moto backend and queue an ARN names, or ResourceNotFoundException."""
    from moto.sqs.models import sqs_backends

    parts = arn.split(":") if isinstance(arn, str) else []
    if len(parts) != 6 or parts[:3] != ["arn", "aws", "sqs"]:
        raise _Refused(400, "InvalidParameterValue", f"Value {arn} for parameter {parameter} is invalid. Reason: not a queue ARN.")
    _, _, _, region, account, name = parts
    try:
        backend = sqs_backends[account][region]
    except KeyError:  # a region moto does not know: no such queue either
        backend = None
    queue = backend.queues.get(name) if backend is not None else None
    if queue is None:
        raise _Refused(404, "ResourceNotFoundException", f"The resource that you specified for the {parameter} parameter doesn't exist.")
    return backend, queue


def start(request: dict[str, Any]) -> dict[str, Any]:
    """StartMessageMoveTask."""
    source_arn = str(request.get("SourceArn"))
    backend, source = _backend_and_queue(source_arn, "SourceArn")
    sources = [q for q in list(backend.queues.values()) if (q.redrive_policy or {}).get("deadLetterTargetArn") == source_arn]
    if not sources:
        raise _Refused(400, "InvalidParameterValue", "Source queue must be configured as a Dead Letter Queue.")
    destination_arn = request.get("DestinationArn")
    if destination_arn is not None:
        _, destination = _backend_and_queue(destination_arn, "DestinationArn")
        if bool(destination.fifo_queue) != bool(source.fifo_queue):
            raise _Refused(400, "InvalidParameterValue", "The destination queue must be of the same type as the source queue "
                                                         "(a FIFO dead-letter queue redrives to a FIFO queue).")
    rate = request.get("MaxNumberOfMessagesPerSecond")
    if rate is not None and (not isinstance(rate, int) or isinstance(rate, bool) or not 1 <= rate <= MAX_RATE):
        raise _Refused(400, "InvalidParameterValue",
                       f"Value {rate} for parameter MaxNumberOfMessagesPerSecond is invalid. Reason: must be from 1 to {MAX_RATE}.")
    with _tasks_lock:
        if any(t.status in ("RUNNING", "CANCELLING") for t in _tasks.get(source_arn, [])):
            raise _Refused(400, "InvalidParameterValue", "There is already a task running. Only one active task is allowed "
                                                         "for a source queue arn at a given time.")
        with LOCK:
            _promote(source, now_ms())
            to_move = source._counts[READY]
        task = MoveTask(uuid.uuid4().hex, source_arn, destination_arn, rate, to_move, int(time.time() * 1000))
        kept = _tasks.setdefault(source_arn, [])
        kept.insert(0, task)
        del kept[KEPT_PER_SOURCE:]
    current_lab().emit("sqs_move_task", status="RUNNING", source=source.name, to_move=to_move, task=task.task_id)
    threading.Thread(target=_run, args=(task, backend, source), name="sqslab-move-task", daemon=True).start()
    return {"TaskHandle": task.handle}


def list_tasks(request: dict[str, Any]) -> dict[str, Any]:
    """ListMessageMoveTasks: the most recent tasks of a source queue, newest first."""
    source_arn = str(request.get("SourceArn"))
    _backend_and_queue(source_arn, "SourceArn")
    limit = request.get("MaxResults", 1)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 10:
        raise _Refused(400, "InvalidParameterValue", f"Value {limit} for parameter MaxResults is invalid. Reason: must be from 1 to 10.")
    with _tasks_lock:
        return {"Results": [t.listing() for t in _tasks.get(source_arn, [])[:limit]]}


def cancel(request: dict[str, Any]) -> dict[str, Any]:
    """CancelMessageMoveTask: stop a running task; what moved stays moved."""
    handle = request.get("TaskHandle")
    try:
        decoded = json.loads(base64.b64decode(str(handle), validate=True))
        task_id, source_arn = decoded["taskId"], decoded["sourceArn"]
    except (ValueError, KeyError, TypeError):
        raise _Refused(400, "InvalidParameterValue", "Value for parameter TaskHandle is invalid.") from None
    _backend_and_queue(source_arn, "SourceArn")
    with _tasks_lock:
        task = next((t for t in _tasks.get(source_arn, []) if t.task_id == task_id), None)
        if task is None:
            raise _Refused(404, "ResourceNotFoundException", "Task does not exist.")
        if task.status != "RUNNING":
            raise _Refused(400, "InvalidParameterValue", f"Only a RUNNING task can be cancelled; this one is {task.status}.")
        task.status = "CANCELLING"
        task.cancel.set()
        return {"ApproximateNumberOfMessagesMoved": task.moved}


def _run(task: MoveTask, backend: Any, source: Any) -> None:
    """Move the task's messages at its rate until done, cancelled or failed."""
    rate = task.rate or DEFAULT_RATE
    current_lab().calls.by = "sqs:redrive"  # the journal's caller for the moves' sends
    budget, last = 1.0, time.monotonic()
    while not task.cancel.is_set() and task.moved < task.to_move:
        now = time.monotonic()
        budget, last = min(budget + (now - last) * rate, float(rate)), now
        if budget < 1:
            time.sleep(_TICK)
            continue
        if not _move_one(task, backend, source):
            break
        budget -= 1
    with _tasks_lock:
        if task.failure is None:
            task.status = "CANCELLED" if task.cancel.is_set() else "COMPLETED"
    current_lab().emit("sqs_move_task", status=task.status, source=source.name, moved=task.moved, task=task.task_id,
                       **({"reason": task.failure} if task.failure else {}))


def _move_one(task: MoveTask, backend: Any, source: Any) -> bool:
    """Move the oldest visible message that has somewhere to go; False when there is
    none, or the task failed (a queue is gone)."""
    with LOCK:
        if backend.queues.get(source.name) is not source:
            return _fail(task, "AWS.SimpleQueueService.NonExistentQueue")
        _promote(source, now_ms())
        ready = source._heaps[READY].items
        passed: list[Any] = []
        msg = None
        while ready:
            entry = heapq.heappop(ready)
            if not _live(entry, source):
                continue
            if task.destination_arn or getattr(entry[3], "_sqslab_source_arn", None):
                msg = entry[3]
                break
            passed.append(entry)  # sent to the DLQ directly: no source queue to go back to
        for entry in passed:
            heapq.heappush(ready, entry)
        if msg is None:
            return False
        arn = task.destination_arn or msg._sqslab_source_arn
        destination = backend.queues.get(arn.rsplit(":", 1)[-1])
        if destination is None:
            return _fail(task, "AWS.SimpleQueueService.NonExistentQueue")
        fifo = bool(destination.fifo_queue)
        moved = backend.send_message(destination.name, msg.body, message_attributes=msg.message_attributes or None,
                                     deduplication_id=(msg.deduplication_id or msg.id) if fifo else None,
                                     group_id=msg.group_id if fifo else None)
        _drop(source, msg, remember_handles=True)
        current_lab().record("redrive", q=source.name, mid=msg.id, to=destination.name, new=moved.id)
        task.moved += 1
        return True


def _fail(task: MoveTask, reason: str) -> bool:
    with _tasks_lock:
        task.status, task.failure = "FAILED", reason
    task.cancel.set()
    return False
