"""The emulator's compiled JSON serializer (sqslab/emulator/serializer.py) writes the
answer moto's own serializer writes, for every SQS operation and every kind of result
the actions return: drawn at random from each output shape, with members missing, None,
spelled in snake_case, binary as bytes or text, and SQS's hot answers as moto's actions
build them."""

from __future__ import annotations

import json
import random
import string
from types import SimpleNamespace
from typing import Any

import pytest
from moto.core.responses import ActionContext, ActionResult
from moto.core.serialize import get_serializer_class

from sqslab.emulator import serializer

MODEL = serializer.service_model()
OPERATIONS = sorted(MODEL.operation_names)


def stock(operation: str, result: Any) -> tuple[int, dict[str, str], Any]:
    """moto's answer: its JSON serializer, as SQSResponse.serialized runs it."""
    context = ActionContext(MODEL, MODEL.operation_model(operation), get_serializer_class("sqs", "json"),
                            SimpleNamespace(RESPONSE_KEY_PATH_TO_TRANSFORMER={}))
    status, headers, body = ActionResult(result).execute_result(context)
    return status, headers, json.loads(body)


def ours(operation: str, result: Any) -> Any:
    write = serializer.writer(operation)
    assert write is not None, f"{operation}: not compiled"
    return json.loads(json.dumps(write(result if result is not None else {})))


def draw(shape: Any, rng: random.Random, depth: int = 0) -> Any:
    """A value of this shape as a moto action might return it."""
    kind = shape.type_name
    if kind == "structure":
        out: dict[str, Any] = {}
        for key, member in shape.members.items():
            roll = rng.random()
            if roll < 0.15:
                continue  # missing
            name = key if roll > 0.3 else _snake(key)
            out[name] = None if roll > 0.92 else draw(member, rng, depth + 1)
        return out
    if kind == "list":
        return [draw(shape.member, rng, depth + 1) for _ in range(rng.randint(0, 3 if depth < 4 else 0))]
    if kind == "map":
        return {_text(rng, 6): draw(shape.value, rng, depth + 1) for _ in range(rng.randint(0, 3 if depth < 4 else 0))}
    if kind in ("integer", "long"):
        return rng.choice([rng.randint(0, 10**6), str(rng.randint(0, 999))])
    if kind in ("float", "double"):
        return rng.random() * 100
    if kind == "boolean":
        return rng.choice([True, False, "true", "false"])
    if kind == "blob":
        return rng.choice([bytes(rng.randrange(256) for _ in range(8)), _text(rng, 8)])
    return _text(rng, rng.randint(0, 12))


def _snake(key: str) -> str:
    from botocore import xform_name

    return xform_name(key)


def _text(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_letters + "é\n\"<&") for _ in range(n))


@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_operation_is_written_as_moto_writes_it(operation):
    output = MODEL.operation_model(operation).output_shape
    rng = random.Random(operation)
    for _ in range(60):
        result = draw(output, rng) if output is not None else None
        status, headers, body = stock(operation, result)
        assert ours(operation, result) == body, (operation, result)
        assert status == 200 and headers["Content-Type"] == serializer._content_type


def test_the_hot_answers_as_moto_builds_them():
    received = {"Messages": [{
        "MessageId": "m-1", "ReceiptHandle": "r" * 185, "MD5OfBody": "x", "Body": '{"id": 1}',
        "MessageAttributes": {"sqslab-id": {"DataType": "String", "StringValue": "id-1"},
                              "raw": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
                              "n": {"DataType": "Number", "StringValue": "1.5"}},
        "MD5OfMessageAttributes": "y",
        "Attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1700000000000"},
    }]}
    answers = {
        "ReceiveMessage": received,
        "SendMessageBatch": {"Successful": [{"Id": "0", "MessageId": "m", "MD5OfMessageBody": "x"}],
                             "Failed": [{"Id": "1", "SenderFault": True, "Code": "InvalidParameterValue", "Message": "no"}]},
        "DeleteMessageBatch": {"Successful": [{"Id": "0"}],
                               "Failed": [{"Id": "1", "SenderFault": "true", "Code": "ReceiptHandleIsInvalid"}]},
        "GetQueueAttributes": {"Attributes": {"ApproximateNumberOfMessages": "3", "VisibilityTimeout": "30"}},
        "ChangeMessageVisibility": None,
        "DeleteMessage": None,
    }
    for operation, result in answers.items():
        assert ours(operation, result) == stock(operation, result)[2], operation


def test_what_is_not_a_plain_dict_is_left_to_moto():
    write = serializer.writer("ReceiveMessage")
    assert write is not None
    with pytest.raises(serializer._NotPlain):
        write({"Messages": [SimpleNamespace(message_id="m")]})
