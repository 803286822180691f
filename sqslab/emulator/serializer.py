"""The replacement for ``SQSResponse.serialized``: SQS's JSON answers written by a
serializer compiled once per operation, instead of moto's generic one built per call.

moto serializes every answer by walking the operation's output shape with a value
picker that, for each member, builds a context object and tries several spellings of
its name (``MessageId``, ``message_id``, aliases) on the result: about a third of the
emulator's time per request in a drain (ReceiveMessage's ten messages are ~400 picks).
For the JSON protocol (every current AWS SDK) the answer here is the same document,
written by a function compiled from the shape: a structure member is read from the
result dict under its name, then under botocore's ``xform_name`` of it (the picker's
two spellings for a dict), a list item and a map value are written as moto writes them,
integers and floats converted, blobs base64-encoded.

moto's own serializer still answers:
* the query protocol (XML), errors, and results that are not plain dicts (model
  objects, which moto's picker reads through aliases);
* an operation whose output holds a timestamp (none of SQS's do) or a shape type this
  module does not compile;
* whenever moto's response transformers are set (``RESPONSE_KEY_PATH_TO_TRANSFORMER``:
  none are, for SQS).

tests/test_emulator_serializer.py checks that both serializers write the same answer.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

#: moto's own SQSResponse.serialized (bound by install()).
_stock_serialized: Any = None
#: moto's ActionResult.execute_result: a result class that keeps it is serialized as given.
_plain_execute: Any = None
_content_type = "application/x-amz-json-1.0"
_pretty = False

Writer = Callable[[Any], Any]


class _NotCompiled(Exception):
    """A shape this module leaves to moto's serializer."""


class _NotPlain(Exception):
    """A result (or a part of it) that is not a plain dict where a structure belongs."""


_MISSING = object()


#: Deeper shapes (a recursive one) are left to moto.
_MAX_DEPTH = 16


def _compile(shape: Any, depth: int) -> Writer:
    """A function writing a value of this shape as moto's JSON serializer writes it."""
    if depth > _MAX_DEPTH:
        raise _NotCompiled("too deep")
    kind = shape.type_name
    if kind == "structure":
        if shape.is_document_type:
            return _as_given
        return _structure(shape, depth)
    if kind == "list":
        item = _compile(shape.member, depth + 1)
        if shape.member.serialization.get("name", shape.member.name) != shape.member.name:
            item = _as_given  # moto writes the item under another key, then appends the item itself

        def write_list(value: Any) -> Any:
            out = []
            for entry in value:
                written = item(entry) if entry is not None else None
                out.append(entry if written is None else written)  # moto appends the item itself
            return out

        return write_list
    if kind == "map":
        member = _compile(shape.value, depth + 1)
        structure = shape.value.type_name == "structure"
        fixed = shape.value.serialization.get("name")  # moto writes every entry under it, if set

        def write_map(value: Any) -> Any:
            out = {}
            for key, entry in value.items():
                if entry is None and structure:
                    continue  # moto writes nothing for a None structure
                out[fixed or key] = member(entry) if entry is not None else None
            return out

        return write_map
    if kind in ("integer", "long"):
        return int
    if kind in ("float", "double"):
        return float
    if kind == "blob":
        return _base64
    if kind in ("string", "boolean"):
        return _as_given  # as moto's JSON serializer: written as given
    raise _NotCompiled(kind)


def _as_given(value: Any) -> Any:
    return value


def _base64(value: str | bytes) -> str:
    data = value.encode("utf-8") if isinstance(value, str) else value
    return base64.b64encode(data).strip().decode("utf-8")


def _structure(shape: Any, depth: int) -> Writer:
    from botocore import xform_name

    members = [(key, xform_name(key), member.serialization.get("name", key), _compile(member, depth + 1))
               for key, member in shape.members.items()]

    def write_structure(value: Any) -> Any:
        if type(value) is not dict:
            raise _NotPlain
        out = {}
        for key, snake, name, write in members:
            member_value = value.get(key, _MISSING)
            if member_value is _MISSING:
                member_value = value.get(snake)
            if member_value is not None:
                written = write(member_value)
                if written is not None:
                    out[name] = written
        return out

    return write_structure


#: operation -> (its compiled writer, its answer's HTTP status), or None: moto's serializer.
_compiled: dict[str, tuple[Writer, int] | None] = {}


def service_model() -> Any:
    """botocore's SQS service model, as moto loads it (moto caches it)."""
    from moto.core.utils import get_service_model

    return get_service_model("sqs")


def writer(operation: str) -> Writer | None:
    """The compiled writer of an SQS operation's output (cached), or None: moto's serializer."""
    compiled = _compile_operation(operation)
    return compiled[0] if compiled is not None else None


def _compile_operation(operation: str) -> tuple[Writer, int] | None:
    try:
        return _compiled[operation]
    except KeyError:
        pass
    from botocore.model import OperationNotFoundError

    compiled: tuple[Writer, int] | None
    try:
        model = service_model().operation_model(operation)
        shape = model.output_shape
        compiled = (_compile(shape, 0) if shape is not None else (lambda value: {}), model.http.get("responseCode", 200))
    except (_NotCompiled, OperationNotFoundError):
        compiled = None
    _compiled[operation] = compiled
    return compiled


def serialized(self: Any, action_result: Any) -> Any:
    """SQSResponse.serialized: a JSON-protocol answer with a plain-dict (or empty) result
    from the compiled writer; everything else from moto's."""
    result = action_result.result
    if result is None:
        result = {}  # EmptyResult: moto writes the output shape of nothing, {}
    if (type(result) is dict and type(action_result).execute_result is _plain_execute  # not a PaginatedResult
            and not self.RESPONSE_KEY_PATH_TO_TRANSFORMER
            and self.determine_response_protocol(service_model()) == "json"):
        compiled = _compile_operation(self._get_action())
        if compiled is not None:
            write, status = compiled
            try:
                document = write(result)
            except _NotPlain:
                return _stock_serialized(self, action_result)
            headers = {"Content-Type": _content_type}
            headers.update(self.response_headers)
            return status, headers, json.dumps(document, indent=4 if _pretty else None)
    return _stock_serialized(self, action_result)


def install() -> None:
    """Replace SQSResponse.serialized (moto's is kept for what this module leaves to it)."""
    global _stock_serialized, _plain_execute, _content_type, _pretty
    from moto import settings
    from moto.core.responses import ActionResult
    from moto.sqs import responses

    from sqslab.emulator.guard import _replace

    version = service_model().metadata.get("jsonVersion", "1.0")
    _content_type = f"application/x-amz-json-{version}"
    _pretty = bool(settings.PRETTIFY_RESPONSES)
    _plain_execute = ActionResult.execute_result
    _stock_serialized = responses.SQSResponse.serialized
    _replace(responses.SQSResponse, "serialized", serialized)
