"""Effects as the emulator sees them (sqslab.truth.effects reads them back): a consumer's
result posted to the control endpoint's ``effects``, or a write that took to a DynamoDB
table registered as an effects table. Each is one ``effect`` line of the SQS journal, with
the message id found at the scenario's `effects.id` path and who made it.

DynamoDB writes counted: PutItem (the item), UpdateItem (the key), BatchWriteItem (each
PutRequest's item, less those the answer leaves unprocessed) and TransactWriteItems (each
Put's item and Update's key; all or none). A conditional write that fails is answered 400:
no effect.
"""

from __future__ import annotations

import io
import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

from sqslab.contracts import value_at

#: The largest effect body taken (the control endpoint's own limit).
MAX_EFFECT_BODY = 64 * 1024
#: Who posted an effect: the built-in consumer names its task in this header.
TASK_HEADER = "X-Sqslab-Task"
#: The most DynamoDB request bytes read for an effect (an item is at most 400 KB; a batch 16 MB
#: is refused past this: its writes are not counted, and the journal says so).
MAX_DYNAMODB_BODY = 1024 * 1024
_PREFIX = "DynamoDB_20120810."
WRITES = frozenset({"PutItem", "UpdateItem", "BatchWriteItem", "TransactWriteItems"})


def post(environ: dict[str, Any], body: bytes, lab: Any) -> tuple[int, dict[str, Any]]:
    """One posted effect: (status, answer). The body's value at `?id=PATH` (default `id`)
    is the message id; ValueError for a body that is not a JSON object."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length > MAX_EFFECT_BODY:
        return 413, {"error": f"an effect's body is at most {MAX_EFFECT_BODY} bytes (MAX_CONTROL_BODY); this one is "
                              f"{length}: post the result's id and a summary"}
    data = json.loads(body or b"null")
    if not isinstance(data, dict):
        raise ValueError("POST a JSON object: the effect, with the message's id at ?id=PATH (default id)")
    path = urllib.parse.parse_qs(str(environ.get("QUERY_STRING") or "")).get("id", ["id"])[0]
    value = value_at(data, path)
    ident = value if isinstance(value, str) else str(value) if isinstance(value, int) and not isinstance(value, bool) else None
    task = str(environ.get("HTTP_" + TASK_HEADER.upper().replace("-", "_")) or "")[:100] or "?"
    if lab.journal.fd is not None:
        lab.journal.write("effect", task, {"id": ident, "bytes": length})
    return 200, {"id": ident}


def register_table(request: Any, lab: Any) -> dict[str, Any]:
    """`{"table": name, "id": path}`: that DynamoDB table's writes are effects from now on."""
    if not isinstance(request, dict) or not isinstance(request.get("table"), str) or not isinstance(request.get("id"), str):
        raise ValueError('POST {"table": a DynamoDB table name, "id": the dotted path of the message id in an item}')
    lab.effects_tables[request["table"]] = lab.id_path = request["id"]
    return {"tables": sorted(lab.effects_tables)}


def keep_dynamodb_body(environ: dict[str, Any], lab: Any) -> None:
    """A write to DynamoDB while effects tables exist: its body read (bounded) and left
    readable for moto, so dynamodb_writes can look at it once moto answered."""
    environ["sqslab.body"] = b""
    if not lab.effects_tables or _api(environ) not in WRITES:
        return
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return
    if length > MAX_DYNAMODB_BODY:
        lab.journal.write("effects_unread", "?", {"api": _api(environ), "bytes": length, "limit": "MAX_DYNAMODB_BODY"})
    elif length > 0:
        environ["sqslab.body"] = body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)


def dynamodb_writes(environ: dict[str, Any], status: str, answer: bytes, lab: Any, by: str) -> None:
    """The effects of a DynamoDB write that took (200) to registered effects tables."""
    if not status.startswith("200") or lab.journal.fd is None or not environ.get("sqslab.body"):
        return
    try:
        request = json.loads(environ["sqslab.body"])
        response = json.loads(answer or b"{}")
    except ValueError:
        return
    for table, item in _written(_api(environ), request, response):
        path = lab.effects_tables.get(table)
        if path is not None:
            value = value_at(_untyped({"M": item}), path)
            lab.journal.write("effect", by, {"id": value if isinstance(value, str) else None, "via": "dynamodb",
                                             "table": table[:255]})


def _written(api: str | None, request: dict[str, Any], response: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(table, item or key) of each write a request made, by its API's shape."""
    if api == "PutItem":
        yield str(request.get("TableName")), request.get("Item") or {}
    elif api == "UpdateItem":
        yield str(request.get("TableName")), request.get("Key") or {}
    elif api == "BatchWriteItem":
        unprocessed = response.get("UnprocessedItems") or {}
        for table, requests in (request.get("RequestItems") or {}).items():
            left = [json.dumps(r, sort_keys=True) for r in unprocessed.get(table) or []]
            for entry in requests or []:
                if "PutRequest" in entry and json.dumps(entry, sort_keys=True) not in left:
                    yield table, (entry["PutRequest"] or {}).get("Item") or {}
    elif api == "TransactWriteItems":
        for entry in request.get("TransactItems") or []:
            if "Put" in entry:
                yield str(entry["Put"].get("TableName")), entry["Put"].get("Item") or {}
            elif "Update" in entry:
                yield str(entry["Update"].get("TableName")), entry["Update"].get("Key") or {}


def _api(environ: dict[str, Any]) -> str | None:
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    return target[len(_PREFIX):] if target.startswith(_PREFIX) else None


def _untyped(value: Any) -> Any:
    """A DynamoDB attribute value as plain data ({"S": "x"} -> "x", maps and lists inside)."""
    if not isinstance(value, dict) or len(value) != 1:
        return None
    (kind, inner), = value.items()
    if kind == "M" and isinstance(inner, dict):
        return {k: _untyped(v) for k, v in inner.items()}
    if kind == "L" and isinstance(inner, list):
        return [_untyped(v) for v in inner]
    return inner if kind in ("S", "N", "BOOL") else None
