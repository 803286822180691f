"""The replacements for moto's ``SQSResponse`` members: strict request parsing, SQS's
documented validation, and a safety net that answers every request in SQS's shape.

Stock moto parses a JSON body leniently (a body that is not JSON becomes
``{"message": ...}``, ``1.5`` for an integer becomes 1, a string where a list belongs
is iterated character by character), validates little of what SQS documents, and lets
any exception escape to Flask, which answers HTTP 500 with an HTML page. Here:

* ``parse_parameters``: a JSON body is decoded once, strictly, against the operation's
  input shape (``SerializationException`` for a body that is not a UTF-8 JSON object or
  a value of the wrong type); a query body goes through moto's parser, and a value it
  cannot convert is ``InvalidParameterValue``; in both, a missing required member is
  ``MissingParameter``;
* the action methods listed in ``CHECKS`` first check what SQS documents for them
  (batch sizes and entry ids, message characters, attribute count and size, ranges,
  group ids, queue attribute values), O(entries) on the parameters already parsed;
* ``_dispatch``: whatever still escapes moto becomes an SQS-shaped answer: a
  ``ValueError``/``TypeError``/... (moto choking on input nothing above rejected) is
  ``InvalidParameterValue`` (400), anything else ``InternalFailure`` (500); both are
  written to stderr (the emulator's log) with the traceback.

Each public function is an ``SQSResponse`` member (``self`` is the response);
``install()`` puts them in place, each pair declared in ``guard.PATCHED``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import sys
import traceback
import types
from collections.abc import Callable
from typing import Any

from sqslab.consumer.sqsfaults import error_response, shaped_error
from sqslab.emulator.guard import _replace_all

#: moto.sqs.models and moto.sqs.exceptions (bound by install(), so this module imports no moto code itself).
models: Any = None
exceptions: Any = None
#: moto's own SQSResponse.parse_parameters (used for the query protocol; bound by install()).
_stock_parse_parameters: Any = None
#: moto's own SQSResponse.send_message_batch and receive_message, and moto.core's ActionResult (bound by install()).
_stock_send_message_batch: Any = None
_stock_receive_message: Any = None
_action_result: Any = None

#: SQS's documented limits.
MAX_BATCH_ENTRIES = 10
MAX_MESSAGE_ATTRIBUTES = 10
MAX_VISIBILITY_TIMEOUT = 43200
MAX_DELAY_SECONDS = 900
MAX_WAIT_TIME_SECONDS = 20
MAX_LIST_RESULTS = 1000
#: A batch's messages together, and the largest MaximumMessageSize (1 MiB).
MAX_MESSAGE_LENGTH = 1_048_576
#: SQS's quota on a queue policy document.
MAX_POLICY_BYTES = 8192

_BATCH_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")
#: Characters SQS refuses in a message: all but #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF.
_BAD_CHARACTER = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
#: MessageGroupId and MessageDeduplicationId: 1 to 128 alphanumeric and punctuation characters.
_GROUP_ID = re.compile(r"[!-~]{1,128}")
_COMMON_NAMESPACE = "com.amazon.coral.service"

#: Queue attributes that are integers: (lowest, highest). The emulator deliberately keeps
#: accepting a retention below 60 s and a VisibilityTimeout above 43,200 s at creation
#: (docs/emulator.md: "Limits not validated"); everything else is SQS's range.
_INTEGER_ATTRIBUTES: dict[str, tuple[int, int | None]] = {
    "DelaySeconds": (0, MAX_DELAY_SECONDS),
    "MaximumMessageSize": (1024, MAX_MESSAGE_LENGTH),
    "MessageRetentionPeriod": (1, 1_209_600),
    "ReceiveMessageWaitTimeSeconds": (0, MAX_WAIT_TIME_SECONDS),
    "VisibilityTimeout": (0, None),
    "KmsDataKeyReusePeriodSeconds": (60, 86_400),
}
_BOOLEAN_ATTRIBUTES = frozenset({"FifoQueue", "ContentBasedDeduplication", "SqsManagedSseEnabled"})


class Malformed(Exception):
    """A request SQS's front end refuses before the action sees it (not an SQS error
    shape): `SerializationException`, `UnknownOperationException`."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status

    def answer(self, protocol: str) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) in the request's protocol."""
        return shaped_error(self.status, self.code, self.message, protocol=protocol, namespace=_COMMON_NAMESPACE)


def _protocol(headers: Any) -> str:
    return "json" if headers.get("X-Amz-Target") else "query"


# ---------------------------------------------------------------------------- dispatch


def dispatch(self: Any, request: Any, full_url: str, headers: Any) -> Any:
    """SQSResponse._dispatch: moto's (set up, then call the action), with every failure
    answered in SQS's shape instead of escaping to Flask as an HTML 500."""
    protocol = _protocol(request.headers)
    try:
        self.setup_class(request, full_url, headers)
        return self.call_action()
    except Malformed as exc:
        return exc.answer(protocol)
    except exceptions.SQSException as exc:  # raised while parsing (MissingParameter...)
        return _sqs_error(self, exc, protocol)
    except UnicodeDecodeError as exc:  # setup_class decodes the body as UTF-8
        if protocol == "json":
            return Malformed("SerializationException", f"The request body is not valid UTF-8: {exc.reason}.").answer(protocol)
        return _invalid(f"The request is not valid UTF-8: {exc.reason}.", protocol)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, LookupError, ArithmeticError) as exc:
        # moto choked on input that nothing before it rejected: the request's fault, so
        # a 400 as SQS answers malformed input; logged, as it names a missing check.
        _log(f"malformed {_action_name(self)} request answered InvalidParameterValue", exc)
        return _invalid(f"The request is invalid: {type(exc).__name__}: {exc}"[:1000], protocol)
    except Exception as exc:  # noqa: BLE001  (the emulator's own fault: SQS's 500, never Flask's HTML)
        _log(f"{_action_name(self)} failed inside the emulator", exc)
        return error_response("internal", protocol)


def _action_name(self: Any) -> str:
    """The request's action, for a log line; never raises."""
    try:
        return str(self._get_action())
    except Exception:  # noqa: BLE001  (only names the request in a log line)
        return "an SQS"


def _sqs_error(self: Any, exc: Any, protocol: str) -> Any:
    """moto's own serialization of an SQS error (as call_action does), or ours when the
    request did not get far enough for moto's serializer."""
    try:
        status, headers, body = self.serialized(models_action_result(exc))
        headers["status"] = status
        return status, headers, body
    except Exception:  # noqa: BLE001  (fall back to the same shape, made by sqsfaults)
        code = getattr(exc, "code", "InvalidParameterValue")
        return shaped_error(400, code, getattr(exc, "message", str(exc)), query_code=code, protocol=protocol)


def models_action_result(exc: Exception) -> Any:
    """moto's ActionResult of an exception (imported when first needed)."""
    from moto.core.responses import ActionResult

    return ActionResult(exc)


def _invalid(message: str, protocol: str) -> tuple[int, dict[str, str], bytes]:
    return shaped_error(400, "InvalidParameterValue", message, query_code="InvalidParameterValue", protocol=protocol)


def _log(what: str, exc: BaseException) -> None:
    sys.stderr.write(f"sqslab emulator: {what}:\n{''.join(traceback.format_exception(exc))}")
    sys.stderr.flush()


# ---------------------------------------------------------------------------- parsing


def parse_parameters(self: Any, request: Any) -> None:
    """SQSResponse.parse_parameters: self.params from the request, strictly."""
    operation = _operation(self._get_action())
    if _protocol(request.headers) == "json":
        raw = self.raw_body if isinstance(self.raw_body, bytes) else str(self.raw_body or "").encode("utf-8", "surrogatepass")
        try:
            document = json.loads(raw) if raw.strip() else {}
        except UnicodeDecodeError as exc:
            raise Malformed("SerializationException", f"The request body is not valid UTF-8: {exc.reason}.") from None
        except ValueError as exc:
            raise Malformed("SerializationException", f"The request body is not JSON: {exc}.") from None
        self.params = _strict(operation.input_shape, document, "") if operation.input_shape is not None else {}
        return
    try:
        _stock_parse_parameters(self, request)
    except (ValueError, TypeError, AttributeError, binascii.Error) as exc:
        raise models.InvalidParameterValue(f"One or more parameters are invalid. Reason: {exc}.") from None
    if operation.input_shape is not None:
        _required(operation.input_shape, self.params, "")


_operations: dict[str, Any] = {}


def _operation(action: str) -> Any:
    """The botocore operation model of an SQS action (cached), or UnknownOperationException."""
    try:
        return _operations[action]
    except KeyError:
        pass
    from botocore.model import OperationNotFoundError
    from moto.core.utils import get_service_model

    try:
        operation = get_service_model("sqs").operation_model(action)
    except OperationNotFoundError:
        raise Malformed("UnknownOperationException", f"Unknown operation {action}.") from None
    _operations[action] = operation
    return operation


def _serialization(path: str, expected: str, value: Any) -> Malformed:
    where = f" at {path}" if path else ""
    return Malformed("SerializationException", f"Expected {expected}{where}, got {type(value).__name__}.")


def _strict(shape: Any, value: Any, path: str) -> Any:
    """value (decoded JSON) checked against shape, as moto's JSON parser would return it."""
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            raise _serialization(path, "an object", value)
        parsed: dict[str, Any] = {}
        for name, member in shape.members.items():
            item = value.get(member.serialization.get("name", name))
            if item is not None:
                parsed[name] = _strict(member, item, f"{path}.{name}" if path else name)
        for name in shape.required_members:
            if name not in parsed:
                raise models.MissingParameter(f"{path}.{name}" if path else name)
        return parsed
    if kind == "list":
        if not isinstance(value, list):
            raise _serialization(path, "a list", value)
        return [_strict(shape.member, item, f"{path}.{i}") for i, item in enumerate(value, 1)]
    if kind == "map":
        if not isinstance(value, dict):
            raise _serialization(path, "an object", value)
        return {key: _strict(shape.value, item, f"{path}.{key}") for key, item in value.items()}
    if kind == "string":
        if not isinstance(value, str):
            raise _serialization(path, "a string", value)
        return value
    if kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            raise _serialization(path, "an integer", value)
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _serialization(path, "a boolean", value)
        return value
    if kind == "blob":
        if not isinstance(value, str):
            raise _serialization(path, "a base64 string", value)
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise _serialization(path, "a base64 string", value) from None
    return value


def _required(shape: Any, value: Any, path: str) -> None:
    """MissingParameter for a required member that moto's query parser left out."""
    if shape.type_name == "structure" and isinstance(value, dict):
        for name in shape.required_members:
            if value.get(name) is None:
                raise models.MissingParameter(f"{path}.{name}" if path else name)
        for name, member in shape.members.items():
            if member.type_name in ("structure", "list") and name in value:
                _required(member, value[name], f"{path}.{name}" if path else name)
    elif shape.type_name == "list" and isinstance(value, list):
        for i, item in enumerate(value, 1):
            _required(shape.member, item, f"{path}.{i}")


# ---------------------------------------------------------------------------- checks


#: How SQS words an out-of-range request parameter's reason.
_RANGE_REASONS = {
    "MaxNumberOfMessages": "Must be between {low} and {high}, if provided.",
    "DelaySeconds": "DelaySeconds must be >= {low} and <= {high}.",
}


def _range_error(name: str, value: Any, low: int, high: int) -> Any:
    reason = _RANGE_REASONS.get(name, "Must be >= {low} and <= {high}, if provided.").format(low=low, high=high)
    return models.InvalidParameterValue(f"Value {value} for parameter {name} is invalid. Reason: {reason}")


def _range(name: str, value: Any, low: int, high: int) -> None:
    if value is not None and not low <= value <= high:
        raise _range_error(name, value, low, high)


def _utf8_length(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _message_size(entry: dict[str, Any], where: str) -> int:
    """A message's size as SQS counts it (body and attributes: names, types, values);
    MissingParameter for a missing or empty body."""
    body = entry.get("MessageBody")
    if not body:
        raise models.MissingParameter(f"{where}MessageBody")
    size = _utf8_length(body)
    for name, value in (entry.get("MessageAttributes") or {}).items():
        size += _utf8_length(name) + _utf8_length(str(value.get("DataType") or ""))
        text, binary = value.get("StringValue"), value.get("BinaryValue")
        if isinstance(text, str):
            size += _utf8_length(text)
        if isinstance(binary, (bytes, str)):
            size += len(binary)
    return size


def _message_problem(queue: Any, entry: dict[str, Any], size: int) -> Any:
    """What SQS refuses in a message (its content, attributes, size, ids), or None:
    the whole call's error for SendMessage, the entry's failure in SendMessageBatch."""
    bad = _BAD_CHARACTER.search(entry["MessageBody"])
    if bad:
        return exceptions.SQSException(
            "InvalidMessageContents",
            f"Invalid binary character '#x{ord(bad.group()):X}' was found in the message body, the set of allowed "
            "characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF")
    attributes = entry.get("MessageAttributes") or {}
    if len(attributes) > MAX_MESSAGE_ATTRIBUTES:
        return models.InvalidParameterValue(
            f"Number of message attributes [{len(attributes)}] exceeds the allowed maximum [{MAX_MESSAGE_ATTRIBUTES}].")
    for name, value in attributes.items():
        text, binary, kind = value.get("StringValue"), value.get("BinaryValue"), str(value.get("DataType") or "")
        if (text is not None and not text) or (binary is not None and not binary) or (text is None and binary is None):
            return models.InvalidParameterValue(
                f"Message (user) attribute '{name}' must contain a non-empty value of type '{kind}'.")
        if isinstance(text, str) and _BAD_CHARACTER.search(text):
            return models.InvalidParameterValue(f"Message (user) attribute '{name}' value contains invalid characters.")
    limit = int(queue.maximum_message_size)
    if size > limit:
        return models.InvalidParameterValue(
            f"One or more parameters are invalid. Reason: Message must be shorter than {limit} bytes.")
    for name in ("MessageGroupId", "MessageDeduplicationId"):
        ident = entry.get(name)
        if ident is not None and not _GROUP_ID.fullmatch(ident):
            return models.InvalidParameterValue(
                f"Value {ident[:200]} for parameter {name} is invalid. Reason: {name} can only include alphanumeric "
                "and punctuation characters. 1 to 128 in length.")
    delay = entry.get("DelaySeconds")
    if delay is not None and not 0 <= delay <= MAX_DELAY_SECONDS:
        return _range_error("DelaySeconds", delay, 0, MAX_DELAY_SECONDS)
    return None


def _check_batch(entries: list[dict[str, Any]], action: str) -> None:
    """A batch's SQS checks: 1 to 10 entries with distinct ids of [A-Za-z0-9_-]{1,80}."""
    if not entries:
        raise exceptions.EmptyBatchRequest(action=action)
    if len(entries) > MAX_BATCH_ENTRIES:
        raise exceptions.TooManyEntriesInBatchRequest(len(entries))
    seen: set[str] = set()
    for entry in entries:
        ident = entry.get("Id")
        if not isinstance(ident, str) or not _BATCH_ID.fullmatch(ident):
            raise exceptions.InvalidBatchEntryId()
        if ident in seen:
            raise exceptions.BatchEntryIdsNotDistinct(ident)
        seen.add(ident)


def _check_send_message(self: Any, params: dict[str, Any]) -> None:
    queue = self.sqs_backend.get_queue(self._get_queue_name())
    problem = _message_problem(queue, params, _message_size(params, ""))
    if problem is not None:
        raise problem


def send_message_batch(self: Any) -> Any:
    """SQSResponse.send_message_batch: the batch's checks (entries, ids, 1 MiB in all),
    then each entry's: an entry SQS refuses (characters, attributes, size, delay) is
    that entry's failure, and moto sends the others."""
    params = self.params
    entries = params.get("Entries") or []
    _check_batch(entries, "Send")
    queue = self.sqs_backend.get_queue(self._get_queue_name())
    sizes = [_message_size(entry, f"SendMessageBatchRequestEntry.{i}.") for i, entry in enumerate(entries, 1)]
    if sum(sizes) > MAX_MESSAGE_LENGTH:
        raise exceptions.BatchRequestTooLong(sum(sizes))
    failed, passed = [], []
    for entry, size in zip(entries, sizes, strict=True):
        problem = _message_problem(queue, entry, size)
        if problem is None:
            passed.append(entry)
        else:
            failed.append({"Id": entry["Id"], "SenderFault": True, "Code": problem.code, "Message": problem.message})
    if not failed:
        return _stock_send_message_batch(self)
    if not passed:
        return _action_result({"Successful": [], "Failed": failed})
    params["Entries"] = passed
    answer = _stock_send_message_batch(self)
    answer.result["Failed"] = failed + list(answer.result.get("Failed") or [])
    return answer


def _check_delete_message_batch(self: Any, params: dict[str, Any]) -> None:
    _check_batch(params.get("Entries") or [], "Delete")


def _check_change_message_visibility_batch(self: Any, params: dict[str, Any]) -> None:
    _check_batch(params.get("Entries") or [], "ChangeMessageVisibility")


def _check_change_message_visibility(self: Any, params: dict[str, Any]) -> None:
    _range("VisibilityTimeout", params.get("VisibilityTimeout"), 0, MAX_VISIBILITY_TIMEOUT)


def _check_receive_message(self: Any, params: dict[str, Any]) -> None:
    _range("MaxNumberOfMessages", params.get("MaxNumberOfMessages"), 1, MAX_BATCH_ENTRIES)
    _range("WaitTimeSeconds", params.get("WaitTimeSeconds"), 0, MAX_WAIT_TIME_SECONDS)
    _range("VisibilityTimeout", params.get("VisibilityTimeout"), 0, MAX_VISIBILITY_TIMEOUT)
    names = params.get("MessageAttributeNames")
    if names and "*" in names:  # SQS returns every attribute for "*" as for "All" and ".*"
        params["MessageAttributeNames"] = ["All" if name == "*" else name for name in names]


def receive_message(self: Any) -> Any:
    """SQSResponse.receive_message: SQS's checks, moto's answer, and the system attribute
    DeadLetterQueueSourceArn on a message a DLQ took in, when asked for (or All)."""
    _check_receive_message(self, self.params)
    answer = _stock_receive_message(self)
    asked = set(self.params.get("AttributeNames") or []) | set(self.params.get("MessageSystemAttributeNames") or [])
    if not asked & {"All", "DeadLetterQueueSourceArn"}:
        return answer
    queue = self.sqs_backend.get_queue(self._get_queue_name())
    for item in answer.result.get("Messages") or []:
        msg = queue._messages.get(item["MessageId"])
        arn = getattr(msg, "_sqslab_source_arn", None)
        if arn:
            item.setdefault("Attributes", {})["DeadLetterQueueSourceArn"] = arn
    return answer


def _check_list_queues(self: Any, params: dict[str, Any]) -> None:
    _range("MaxResults", params.get("MaxResults"), 1, MAX_LIST_RESULTS)


def _check_queue_attributes(self: Any, params: dict[str, Any]) -> None:
    for name, value in (params.get("Attributes") or {}).items():
        if not isinstance(value, str):
            raise exceptions.InvalidAttributeValue(name)
        if name in _INTEGER_ATTRIBUTES:
            low, high = _INTEGER_ATTRIBUTES[name]
            text = value.strip()
            if not text.lstrip("-").isdigit() or not low <= int(text) <= (high if high is not None else int(text)):
                raise exceptions.InvalidAttributeValue(name)
        elif name in _BOOLEAN_ATTRIBUTES:
            if value.lower() not in ("true", "false"):
                raise exceptions.InvalidAttributeValue(name)
        elif name == "RedrivePolicy" and value:
            try:
                document = json.loads(value)
            except ValueError:
                document = None
            if not isinstance(document, dict):
                raise exceptions.SQSException(
                    "InvalidAttributeValue",
                    "Invalid value for the parameter RedrivePolicy. Reason: Redrive policy is not a valid JSON map.")
        elif name == "Policy" and value:
            try:
                document = json.loads(value) if len(value) <= MAX_POLICY_BYTES else None
            except ValueError:
                document = None
            if not isinstance(document, dict):
                raise exceptions.InvalidAttributeValue(name)


#: SQSResponse action method -> the checks run on its parsed parameters before it.
CHECKS: dict[str, Callable[[Any, dict[str, Any]], None]] = {
    "send_message": _check_send_message,
    "delete_message_batch": _check_delete_message_batch,
    "change_message_visibility_batch": _check_change_message_visibility_batch,
    "change_message_visibility": _check_change_message_visibility,
    "list_queues": _check_list_queues,
    "create_queue": _check_queue_attributes,
    "set_queue_attributes": _check_queue_attributes,
}


def _checked(stock: Callable[[Any], Any], check: Callable[[Any, dict[str, Any]], None]) -> Callable[[Any], Any]:
    """The action method stock, after check(self, self.params)."""

    def action(self: Any) -> Any:
        check(self, self.params)
        return stock(self)

    action.__name__, action.__doc__ = stock.__name__, f"SQSResponse.{stock.__name__}: SQS's checks, then moto's."
    action.__wrapped__ = stock  # type: ignore[attr-defined]
    return action


def install(moto_models: types.ModuleType) -> None:
    """Replace moto.sqs.responses.SQSResponse's dispatch, parsing and checked actions."""
    global models, exceptions, _stock_parse_parameters, _stock_send_message_batch, _stock_receive_message, _action_result
    from moto.core.responses import ActionResult
    from moto.sqs import exceptions as moto_exceptions
    from moto.sqs import responses

    models, exceptions, _action_result = moto_models, moto_exceptions, ActionResult
    response = responses.SQSResponse
    _stock_parse_parameters = response.parse_parameters
    _stock_send_message_batch, _stock_receive_message = response.send_message_batch, response.receive_message
    members: dict[str, Any] = {"_dispatch": dispatch, "parse_parameters": parse_parameters,
                               "send_message_batch": send_message_batch, "receive_message": receive_message}
    members.update({name: _checked(getattr(response, name), check) for name, check in CHECKS.items()})
    _replace_all(response, members)
