"""Malformed requests against the embedded SQS emulator: each gets SQS's error code and
HTTP status in SQS's shape (never HTML, never a 500), and the emulator keeps serving.

Every case is sent over raw HTTP (moto checks no signature, so a fixed Authorization
header names the caller), in the JSON protocol (``X-Amz-Target``, ``__type`` and the
``x-amzn-query-error`` header) or the query protocol (form body, XML ErrorResponse).
After each one a plain ListQueues must still answer 200.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from sqslab.emulator import Emulator

pytestmark = pytest.mark.integration

AUTH = "AWS4-HMAC-SHA256 Credential=testing/20240101/us-west-1/sqs/aws4_request, SignedHeaders=host, Signature=0"
ACCOUNT = "123456789012"
MIB = 1024 * 1024
#: The queue whose MaximumMessageSize is SQS's old default, 256 KiB.
SMALL = 262_144


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def code(self) -> str:
        """The error code an SDK sees: the query code of x-amzn-query-error, else the
        name in `__type` (JSON); the <Code> of the ErrorResponse (query)."""
        header = self.headers.get("x-amzn-query-error")
        if header:
            return header.split(";", 1)[0]
        if self.body.startswith(b"{"):
            return str(json.loads(self.body).get("__type", "")).rsplit("#", 1)[-1]
        found = re.search(rb"<Code>([^<]*)</Code>", self.body)
        return found.group(1).decode() if found else ""


def _post(endpoint: str, body: bytes, headers: dict[str, str]) -> Answer:
    request = urllib.request.Request(endpoint + "/", data=body, method="POST", headers={"Authorization": AUTH, **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Answer(response.status, {k.lower(): v for k, v in response.headers.items()}, response.read())
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())


def json_call(endpoint: str, api: str, payload: Any, target_prefix: str = "AmazonSQS.") -> Answer:
    """One JSON-protocol call; payload: an object to serialize, or the raw body bytes."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return _post(endpoint, body, {"X-Amz-Target": target_prefix + api, "Content-Type": "application/x-amz-json-1.0"})


def query_call(endpoint: str, params: dict[str, Any]) -> Answer:
    """One query-protocol call (form body)."""
    body = urllib.parse.urlencode({"Version": "2012-11-05", **params}).encode()
    return _post(endpoint, body, {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})


@dataclass
class Queues:
    endpoint: str
    standard: str
    small: str
    fifo: str
    dlq_arn: str


@pytest.fixture(scope="module")
def queues() -> Iterator[Queues]:
    with Emulator() as emu:
        ep = emu.endpoint_url

        def create(name: str, **attributes: str) -> str:
            answer = json_call(ep, "CreateQueue", {"QueueName": name, "Attributes": attributes})
            assert answer.status == 200, answer.body
            return str(json.loads(answer.body)["QueueUrl"])

        dlq = create("hostile-dlq")
        dlq_arn = f"arn:aws:sqs:us-west-1:{ACCOUNT}:hostile-dlq"
        create("hostile-src", RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1}))
        assert dlq
        yield Queues(ep, create("hostile"), create("hostile-small", MaximumMessageSize=str(SMALL)),
                     create("hostile.fifo", FifoQueue="true", ContentBasedDeduplication="true"), dlq_arn)


def _entries(n: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"Id": f"e{i}", **extra} for i in range(n)]


def _attributes(n: int) -> dict[str, Any]:
    return {f"a{i}": {"DataType": "String", "StringValue": "v"} for i in range(n)}


@dataclass
class Case:
    """A request (protocol, api, payload) and SQS's answer: status and error code."""

    name: str
    protocol: str
    api: str
    payload: Callable[[Queues], Any]
    status: int
    code: str


def _j(name: str, api: str, payload: Callable[[Queues], Any], status: int, code: str) -> Case:
    return Case(name, "json", api, payload, status, code)


def _q(name: str, api: str, payload: Callable[[Queues], Any], status: int, code: str) -> Case:
    return Case(name, "query", api, payload, status, code)


IPV = "InvalidParameterValue"
SER = "SerializationException"
CASES = [
    # Bodies that are not a JSON object.
    _j("json_body_is_a_list", "ListQueues", lambda q: b"[]", 400, SER),
    _j("json_body_is_a_string", "ListQueues", lambda q: b'"x"', 400, SER),
    _j("json_body_not_json", "ListQueues", lambda q: b"{nope", 400, SER),
    _j("json_body_invalid_utf8", "CreateQueue", lambda q: b'{"QueueName": "\xff\xfe"}', 400, SER),
    # Unknown actions.
    _j("json_unknown_action", "NoSuchThing", lambda q: {}, 400, "UnknownOperationException"),
    _q("query_unknown_action", "NoSuchThing", lambda q: {"Action": "NoSuchThing"}, 400, "InvalidAction"),
    _q("query_missing_action", "", lambda q: {"QueueName": "x"}, 400, "MissingAction"),
    # Values of the wrong type.
    _j("entries_not_a_list", "SendMessageBatch", lambda q: {"QueueUrl": q.standard, "Entries": "x"}, 400, SER),
    _j("entry_not_an_object", "DeleteMessageBatch", lambda q: {"QueueUrl": q.standard, "Entries": ["x"]}, 400, SER),
    _j("attribute_value_not_an_object", "SendMessage",
       lambda q: {"QueueUrl": q.standard, "MessageBody": "x", "MessageAttributes": {"a": "x"}}, 400, SER),
    _j("wait_time_abc", "ReceiveMessage", lambda q: {"QueueUrl": q.standard, "WaitTimeSeconds": "abc"}, 400, SER),
    _j("wait_time_1.5", "ReceiveMessage", lambda q: {"QueueUrl": q.standard, "WaitTimeSeconds": 1.5}, 400, SER),
    _q("query_wait_time_abc", "ReceiveMessage", lambda q: {"Action": "ReceiveMessage", "QueueUrl": q.standard,
                                                           "WaitTimeSeconds": "abc"}, 400, IPV),
    _q("query_wait_time_1.5", "ReceiveMessage", lambda q: {"Action": "ReceiveMessage", "QueueUrl": q.standard,
                                                           "WaitTimeSeconds": "1.5"}, 400, IPV),
    _j("wait_time_21", "ReceiveMessage", lambda q: {"QueueUrl": q.standard, "WaitTimeSeconds": 21}, 400, IPV),
    _j("wait_time_negative", "ReceiveMessage", lambda q: {"QueueUrl": q.standard, "WaitTimeSeconds": -1}, 400, IPV),
    _j("max_messages_0", "ReceiveMessage", lambda q: {"QueueUrl": q.standard, "MaxNumberOfMessages": 0}, 400, IPV),
    _j("max_messages_11", "ReceiveMessage", lambda q: {"QueueUrl": q.standard, "MaxNumberOfMessages": 11}, 400, IPV),
    _j("receive_visibility_negative", "ReceiveMessage",
       lambda q: {"QueueUrl": q.standard, "VisibilityTimeout": -1}, 400, IPV),
    # Queue attributes.
    _j("create_visibility_abc", "CreateQueue",
       lambda q: {"QueueName": "bad-vt", "Attributes": {"VisibilityTimeout": "abc"}}, 400, "InvalidAttributeValue"),
    _q("query_create_visibility_abc", "CreateQueue", lambda q: {
        "Action": "CreateQueue", "QueueName": "bad-vt", "Attribute.1.Name": "VisibilityTimeout",
        "Attribute.1.Value": "abc"}, 400, "InvalidAttributeValue"),
    _j("create_delay_901", "CreateQueue",
       lambda q: {"QueueName": "bad-delay", "Attributes": {"DelaySeconds": "901"}}, 400, "InvalidAttributeValue"),
    _j("create_fifo_not_boolean", "CreateQueue",
       lambda q: {"QueueName": "bad.fifo", "Attributes": {"FifoQueue": "maybe"}}, 400, "InvalidAttributeValue"),
    _j("policy_1mb", "CreateQueue",
       lambda q: {"QueueName": "bad-policy", "Attributes": {"Policy": "x" * 1_000_000}}, 400, "InvalidAttributeValue"),
    _j("policy_not_json", "SetQueueAttributes",
       lambda q: {"QueueUrl": q.standard, "Attributes": {"Policy": "{nope"}}, 400, "InvalidAttributeValue"),
    _j("redrive_policy_bad_count", "SetQueueAttributes", lambda q: {"QueueUrl": q.standard, "Attributes": {
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": q.dlq_arn, "maxReceiveCount": "abc"})}}, 400, IPV),
    # Missing parameters.
    _j("json_missing_queue_url", "SendMessage", lambda q: {"MessageBody": "x"}, 400, "MissingParameter"),
    _q("query_missing_queue_url", "SendMessage", lambda q: {"Action": "SendMessage", "MessageBody": "x"},
       400, "MissingParameter"),
    _j("missing_receipt_handle", "DeleteMessageBatch",
       lambda q: {"QueueUrl": q.standard, "Entries": [{"Id": "a"}]}, 400, "MissingParameter"),
    _j("attribute_without_data_type", "SendMessage", lambda q: {
        "QueueUrl": q.standard, "MessageBody": "x", "MessageAttributes": {"a": {"StringValue": "v"}}}, 400, "MissingParameter"),
    _j("empty_message_body", "SendMessage", lambda q: {"QueueUrl": q.standard, "MessageBody": ""}, 400, "MissingParameter"),
    # Batches.
    _j("delete_batch_11_entries", "DeleteMessageBatch",
       lambda q: {"QueueUrl": q.standard, "Entries": _entries(11, ReceiptHandle="h")}, 400, "TooManyEntriesInBatchRequest"),
    _j("visibility_batch_11_entries", "ChangeMessageVisibilityBatch", lambda q: {
        "QueueUrl": q.standard, "Entries": _entries(11, ReceiptHandle="h", VisibilityTimeout=1)}, 400, "TooManyEntriesInBatchRequest"),
    _j("visibility_batch_duplicate_ids", "ChangeMessageVisibilityBatch", lambda q: {
        "QueueUrl": q.standard, "Entries": [{"Id": "a", "ReceiptHandle": "h1"}, {"Id": "a", "ReceiptHandle": "h2"}]},
       400, "BatchEntryIdsNotDistinct"),
    _j("visibility_batch_empty", "ChangeMessageVisibilityBatch", lambda q: {"QueueUrl": q.standard, "Entries": []},
       400, "AWS.SimpleQueueService.EmptyBatchRequest"),
    _j("delete_batch_empty", "DeleteMessageBatch", lambda q: {"QueueUrl": q.standard, "Entries": []},
       400, "AWS.SimpleQueueService.EmptyBatchRequest"),
    _j("send_batch_11_entries", "SendMessageBatch",
       lambda q: {"QueueUrl": q.standard, "Entries": _entries(11, MessageBody="x")}, 400, "TooManyEntriesInBatchRequest"),
    _j("send_batch_bad_entry_id", "SendMessageBatch",
       lambda q: {"QueueUrl": q.standard, "Entries": [{"Id": "a b", "MessageBody": "x"}]}, 400, "InvalidBatchEntryId"),
    _j("delete_batch_81_char_id", "DeleteMessageBatch",
       lambda q: {"QueueUrl": q.standard, "Entries": [{"Id": "a" * 81, "ReceiptHandle": "h"}]}, 400, "InvalidBatchEntryId"),
    _j("send_batch_too_long", "SendMessageBatch", lambda q: {
        "QueueUrl": q.standard, "Entries": _entries(2, MessageBody="x" * (MIB // 2 + 1))}, 400, "BatchRequestTooLong"),
    # Message contents and size.
    _j("nul_in_body", "SendMessage", lambda q: {"QueueUrl": q.standard, "MessageBody": "a\x00b"}, 400, "InvalidMessageContents"),
    _q("query_nul_in_body", "SendMessage", lambda q: {"Action": "SendMessage", "QueueUrl": q.standard,
                                                      "MessageBody": "a\x00b"}, 400, "InvalidMessageContents"),
    _j("lone_surrogate_in_body", "SendMessage", lambda q: b'{"QueueUrl": "%s", "MessageBody": "a\\ud800"}' % q.standard.encode(),
       400, "InvalidMessageContents"),
    _j("11_message_attributes", "SendMessage",
       lambda q: {"QueueUrl": q.standard, "MessageBody": "x", "MessageAttributes": _attributes(11)}, 400, IPV),
    _j("1mb_attribute", "SendMessage", lambda q: {"QueueUrl": q.small, "MessageBody": "x", "MessageAttributes": {
        "big": {"DataType": "String", "StringValue": "v" * 1_000_000}}}, 400, IPV),
    _j("attributes_push_over_size", "SendMessage", lambda q: {"QueueUrl": q.small, "MessageBody": "x" * (SMALL - 10),
                                                              "MessageAttributes": _attributes(2)}, 400, IPV),
    _j("body_over_queue_size", "SendMessage", lambda q: {"QueueUrl": q.small, "MessageBody": "x" * (SMALL + 1)}, 400, IPV),
    _j("body_over_1mib", "SendMessage", lambda q: {"QueueUrl": q.standard, "MessageBody": "x" * (MIB + 1)}, 400, IPV),
    _j("utf8_body_over_queue_size", "SendMessage", lambda q: {"QueueUrl": q.small, "MessageBody": "é" * (SMALL // 2 + 1)}, 400, IPV),
    _j("request_over_read_limit", "SendMessage", lambda q: {"QueueUrl": q.standard, "MessageBody": "x" * (5 * MIB)}, 400, IPV),
    # Ranges.
    _j("visibility_negative", "ChangeMessageVisibility",
       lambda q: {"QueueUrl": q.standard, "ReceiptHandle": "h", "VisibilityTimeout": -1}, 400, IPV),
    _j("visibility_43201", "ChangeMessageVisibility",
       lambda q: {"QueueUrl": q.standard, "ReceiptHandle": "h", "VisibilityTimeout": 43201}, 400, IPV),
    _j("delay_negative", "SendMessage", lambda q: {"QueueUrl": q.standard, "MessageBody": "x", "DelaySeconds": -1}, 400, IPV),
    _j("delay_901", "SendMessage", lambda q: {"QueueUrl": q.standard, "MessageBody": "x", "DelaySeconds": 901}, 400, IPV),
    _j("group_id_200_chars", "SendMessage", lambda q: {"QueueUrl": q.fifo, "MessageBody": "x", "MessageGroupId": "g" * 200}, 400, IPV),
    _j("group_id_with_space", "SendMessage", lambda q: {"QueueUrl": q.fifo, "MessageBody": "x", "MessageGroupId": "a b"}, 400, IPV),
    _j("dedup_id_129_chars", "SendMessage", lambda q: {"QueueUrl": q.fifo, "MessageBody": "x", "MessageGroupId": "g",
                                                       "MessageDeduplicationId": "d" * 129}, 400, IPV),
    _j("list_queues_1001", "ListQueues", lambda q: {"MaxResults": 1001}, 400, IPV),
    _q("query_list_queues_1001", "ListQueues", lambda q: {"Action": "ListQueues", "MaxResults": "1001"}, 400, IPV),
    _j("list_queues_0", "ListQueues", lambda q: {"MaxResults": 0}, 400, IPV),
    # The redrive API over the query protocol.
    _q("query_move_task_no_such_source", "StartMessageMoveTask", lambda q: {
        "Action": "StartMessageMoveTask", "SourceArn": f"arn:aws:sqs:us-west-1:{ACCOUNT}:nope"}, 404, "ResourceNotFoundException"),
    _q("query_move_task_not_a_dlq", "StartMessageMoveTask", lambda q: {
        "Action": "StartMessageMoveTask", "SourceArn": f"arn:aws:sqs:us-west-1:{ACCOUNT}:hostile"}, 400, IPV),
    _q("query_move_task_rate_abc", "StartMessageMoveTask", lambda q: {
        "Action": "StartMessageMoveTask", "SourceArn": q.dlq_arn, "MaxNumberOfMessagesPerSecond": "abc"}, 400, IPV),
    _j("json_move_task_rate_string", "StartMessageMoveTask",
       lambda q: {"SourceArn": q.dlq_arn, "MaxNumberOfMessagesPerSecond": "abc"}, 400, SER),
    _j("json_move_task_body_a_list", "ListMessageMoveTasks", lambda q: b"[]", 400, SER),
    _j("json_move_task_missing_source", "ListMessageMoveTasks", lambda q: {}, 400, "MissingParameter"),
]


def _send(queues: Queues, case: Case) -> Answer:
    payload = case.payload(queues)
    if case.protocol == "json":
        return json_call(queues.endpoint, case.api, payload)
    return query_call(queues.endpoint, payload)


def _unprefixed(code: str) -> str:
    """SQS's query codes for some errors carry this prefix (x-amzn-query-error
    `AWS.SimpleQueueService.TooManyEntriesInBatchRequest;Sender`); SDKs accept either."""
    return code.removeprefix("AWS.SimpleQueueService.")


def _still_serving(queues: Queues) -> None:
    answer = json_call(queues.endpoint, "ListQueues", {})
    assert answer.status == 200 and b"QueueUrls" in answer.body, answer


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_malformed_request_gets_sqs_error(queues: Queues, case: Case) -> None:
    answer = _send(queues, case)
    assert b"<html" not in answer.body.lower()
    assert (answer.status, _unprefixed(answer.code())) == (case.status, _unprefixed(case.code)), answer.body[:500]
    if case.protocol == "json":
        assert answer.headers["content-type"].startswith("application/x-amz-json-1.0")
        assert "__type" in json.loads(answer.body)
    else:
        assert answer.body.lstrip().startswith((b"<?xml", b"<ErrorResponse")) and b"<ErrorResponse" in answer.body, answer.body[:300]
    _still_serving(queues)


def test_an_unknown_target_prefix_is_an_unknown_operation(queues: Queues) -> None:
    answer = json_call(queues.endpoint, "ListQueues", {}, target_prefix="AmazonSNS.")
    assert (answer.status, answer.code()) == (400, "UnknownOperationException")
    _still_serving(queues)


ACCEPTED = [
    _j("body_at_queue_size", "SendMessage", lambda q: {"QueueUrl": q.small, "MessageBody": "x" * SMALL}, 200, ""),
    _j("body_of_1mib", "SendMessage", lambda q: {"QueueUrl": q.standard, "MessageBody": "x" * MIB}, 200, ""),
    _j("10_attributes", "SendMessage", lambda q: {"QueueUrl": q.standard, "MessageBody": "x", "MessageAttributes": _attributes(10)},
       200, ""),
    _j("allowed_characters", "SendMessage",
       lambda q: {"QueueUrl": q.standard, "MessageBody": "\t\n\r \ud7ff\ue000\ufffd\U00010000\U0010ffff"}, 200, ""),
    _j("group_id_128_punctuation", "SendMessage", lambda q: {
        "QueueUrl": q.fifo, "MessageBody": "x", "MessageGroupId": "!~" + "g" * 126}, 200, ""),
    _j("send_batch_of_10", "SendMessageBatch", lambda q: {"QueueUrl": q.standard, "Entries": _entries(10, MessageBody="x")}, 200, ""),
    _j("receive_limits", "ReceiveMessage", lambda q: {"QueueUrl": q.standard, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 0,
                                                      "VisibilityTimeout": 0}, 200, ""),
    _j("list_queues_1000", "ListQueues", lambda q: {"MaxResults": 1000}, 200, ""),
    _j("create_with_short_retention", "CreateQueue",
       lambda q: {"QueueName": "short-retention", "Attributes": {"MessageRetentionPeriod": "1", "VisibilityTimeout": "0"}}, 200, ""),
    _q("query_send", "SendMessage", lambda q: {"Action": "SendMessage", "QueueUrl": q.standard, "MessageBody": "x"}, 200, ""),
    _q("query_receive", "ReceiveMessage", lambda q: {"Action": "ReceiveMessage", "QueueUrl": q.standard, "WaitTimeSeconds": "0"},
       200, ""),
]


@pytest.mark.parametrize("case", ACCEPTED, ids=[c.name for c in ACCEPTED])
def test_a_request_at_the_limits_is_accepted(queues: Queues, case: Case) -> None:
    answer = _send(queues, case)
    assert answer.status == 200, answer.body[:500]


def test_a_batch_at_the_limits_works_end_to_end(queues: Queues) -> None:
    url = queues.standard
    json_call(queues.endpoint, "PurgeQueue", {"QueueUrl": url})
    sent = json_call(queues.endpoint, "SendMessageBatch", {"QueueUrl": url, "Entries": _entries(10, MessageBody="m")})
    assert sent.status == 200 and len(json.loads(sent.body)["Successful"]) == 10
    got = json.loads(json_call(queues.endpoint, "ReceiveMessage", {"QueueUrl": url, "MaxNumberOfMessages": 10,
                                                                    "VisibilityTimeout": 30}).body)["Messages"]
    handles = [{"Id": f"e{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
    changed = json_call(queues.endpoint, "ChangeMessageVisibilityBatch", {
        "QueueUrl": url, "Entries": [{**h, "VisibilityTimeout": 60} for h in handles]})
    assert changed.status == 200 and len(json.loads(changed.body)["Successful"]) == len(handles)
    deleted = json_call(queues.endpoint, "DeleteMessageBatch", {"QueueUrl": url, "Entries": handles})
    assert deleted.status == 200 and len(json.loads(deleted.body)["Successful"]) == len(handles)
    # A bad DelaySeconds is that entry's failure, as on SQS; the others are sent.
    mixed = json_call(queues.endpoint, "SendMessageBatch", {"QueueUrl": url, "Entries": [
        {"Id": "ok", "MessageBody": "m"}, {"Id": "neg", "MessageBody": "m", "DelaySeconds": -1}]})
    assert mixed.status == 200, mixed.body
    result = json.loads(mixed.body)
    assert [e["Id"] for e in result["Successful"]] == ["ok"] and [e["Id"] for e in result["Failed"]] == ["neg"]


def test_message_move_tasks_over_the_query_protocol(queues: Queues) -> None:
    started = query_call(queues.endpoint, {"Action": "StartMessageMoveTask", "SourceArn": queues.dlq_arn,
                                           "MaxNumberOfMessagesPerSecond": "10"})
    assert started.status == 200, started.body
    handle = re.search(rb"<TaskHandle>([^<]+)</TaskHandle>", started.body)
    assert handle and b"<StartMessageMoveTaskResponse" in started.body and b"<RequestId>" in started.body
    listed = query_call(queues.endpoint, {"Action": "ListMessageMoveTasks", "SourceArn": queues.dlq_arn, "MaxResults": "10"})
    assert listed.status == 200 and b"<ListMessageMoveTasksResultEntry>" in listed.body, listed.body
    assert b"<SourceArn>" + queues.dlq_arn.encode() + b"</SourceArn>" in listed.body
    cancelled = query_call(queues.endpoint, {"Action": "CancelMessageMoveTask", "TaskHandle": handle.group(1).decode()})
    # The task has nothing to move, so it may have completed already: cancelling it then is refused.
    assert (cancelled.status == 200 and b"<ApproximateNumberOfMessagesMoved>" in cancelled.body) or (
        cancelled.status == 400 and cancelled.code() == IPV), cancelled.body


def test_boto3_sees_the_codes(queues: Queues) -> None:
    """botocore with its own validation off gets the modelled exceptions."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    sqs = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-west-1").client(
        "sqs", endpoint_url=queues.endpoint, config=Config(parameter_validation=False, retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as caught:
        sqs.delete_message_batch(QueueUrl=queues.standard, Entries=_entries(11, ReceiptHandle="h"))
    assert _unprefixed(caught.value.response["Error"]["Code"]) == "TooManyEntriesInBatchRequest"
    with pytest.raises(sqs.exceptions.InvalidMessageContents):
        sqs.send_message(QueueUrl=queues.standard, MessageBody="\x00")
    with pytest.raises(ClientError) as caught:
        sqs.receive_message(QueueUrl=queues.standard, WaitTimeSeconds="abc")
    assert caught.value.response["Error"]["Code"] == SER
    with pytest.raises(ClientError) as caught:
        sqs.list_queues(MaxResults=1001)
    assert caught.value.response["Error"]["Code"] == IPV
