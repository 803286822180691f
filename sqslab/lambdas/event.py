"""The event Lambda hands a function for a batch of SQS messages, and what the function's
answer means for each message.

https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html (the event) and
https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html (partial batch responses)
"""

from __future__ import annotations

import base64
from typing import Any

#: The system attributes a record carries (those SQS returns for the message).
_SYSTEM = ("ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp",
           "SequenceNumber", "MessageGroupId", "MessageDeduplicationId", "AWSTraceHeader", "DeadLetterQueueSourceArn")


def _attribute(value: dict[str, Any]) -> dict[str, Any]:
    """A message attribute as the Lambda event writes it (camelCase, lists always there)."""
    record: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": value.get("DataType")}
    if "StringValue" in value:
        record["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        binary = value["BinaryValue"]
        record["binaryValue"] = base64.b64encode(binary).decode() if isinstance(binary, bytes) else binary
    return record


def record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One Records entry for a message as ReceiveMessage returned it (all attributes asked)."""
    system = message.get("Attributes") or {}
    attributes = message.get("MessageAttributes") or {}
    entry: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": {name: system[name] for name in _SYSTEM if name in system},
        "messageAttributes": {name: _attribute(value) for name, value in attributes.items()},
        "md5OfBody": message.get("MD5OfBody"),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        entry["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return entry


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event for a batch."""
    return {"Records": [record(m, queue_arn, region) for m in messages]}


def failed_ids(response: Any, batch: list[str]) -> tuple[set[str], str]:
    """Which message ids of `batch` failed, by a function's response with
    ReportBatchItemFailures on: (ids, why the whole batch failed or "").

    A complete success: an empty or null `batchItemFailures`, an empty or null response.
    A complete failure: a response that is not a JSON object (an "invalid JSON response"),
    an `itemIdentifier` that is empty, null, missing (a bad key name) or not in the batch."""
    if response is None or response == {}:
        return set(), ""
    if not isinstance(response, dict):
        return set(batch), "the response is not a partial batch response (a JSON object)"
    failures = response.get("batchItemFailures")
    if failures is None or failures == []:
        return set(), ""
    if not isinstance(failures, list):
        return set(batch), "batchItemFailures is not a list"
    ids: set[str] = set()
    known = set(batch)
    for failure in failures:
        ident = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(ident, str) or not ident:
            return set(batch), f"an itemIdentifier is empty, null or missing ({failure!r:.100})"
        if ident not in known:
            return set(batch), f"itemIdentifier {ident!r:.100} is not a message of the batch"
        ids.add(ident)
    return ids, ""
