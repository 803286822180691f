"""SQS parity: the emulator answers as Amazon SQS does on the rules a consumer or producer meets.

Written from the SQS API reference (each action's Errors section and parameter limits) and
the developer guide (FIFO delivery, receipt handles, dead-letter queues), not from the
emulator's code. Every rule is checked over HTTP with boto3, as a user's code meets it:
the error code botocore reports, the HTTP status, and SQS's message where programs parse it.
The rules hold in both behaviour profiles (``exact`` and ``aws``: SQS's misbehaviour is added
on top, never its validation removed); the delivery rules are checked in ``exact``, where no
drawn behaviour hides them. Where the emulator still differs, docs/emulator.md's table says so.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sqslab.emulator import Emulator

PROFILES = ["exact", "aws"]


def _client(endpoint: str) -> Any:
    return boto3.client("sqs", endpoint_url=endpoint, region_name="us-west-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing",
                        config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=30))


@pytest.fixture(scope="module", params=PROFILES)
def sqs(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A boto3 client on an emulator in each behaviour profile (the aws profile without
    receive loss and duplicates, which would make single-message checks flaky)."""
    lab = {"behavior": {"behavior": request.param, **({"receive_loss": 0.0, "duplicates": 0.0, "short_poll_sample": 1.0}
                                                      if request.param == "aws" else {})}, "seed": 1}
    with Emulator(lab=lab) as emu:
        yield _client(emu.endpoint_url)


@pytest.fixture(scope="module")
def exact() -> Iterator[Any]:
    with Emulator(lab={"behavior": {"behavior": "exact"}}) as emu:
        yield _client(emu.endpoint_url)


def _queue(sqs: Any, fifo: bool = False, **attributes: str) -> str:
    name = f"parity-{uuid.uuid4().hex[:10]}" + (".fifo" if fifo else "")
    if fifo:
        attributes = {"FifoQueue": "true", **attributes}
    return str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])


def _error(call: Any, **kwargs: Any) -> tuple[str, int, str]:
    """(code, HTTP status, message) of the ClientError call(**kwargs) raises."""
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    error = raised.value.response["Error"]
    return error["Code"], raised.value.response["ResponseMetadata"]["HTTPStatusCode"], error.get("Message", "")


def _code(code: str) -> str:
    """An error code as boto3 reports it over either protocol (query codes carry a prefix)."""
    return code.removeprefix("AWS.SimpleQueueService.")


def _arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


# --------------------------------------------------------------------------- SendMessage


def test_send_message_refuses_what_sqs_documents(sqs: Any) -> None:
    url = _queue(sqs, MaximumMessageSize="1024")
    send = sqs.send_message
    assert _error(send, QueueUrl=url, MessageBody="")[:2] == ("MissingParameter", 400)
    code, status, message = _error(send, QueueUrl=url, MessageBody="a\x01b")
    assert (code, status) == ("InvalidMessageContents", 400) and "#x1" in message
    # Attributes count toward MaximumMessageSize: names, types and values.
    code, _, message = _error(send, QueueUrl=url, MessageBody="x" * 1000,
                              MessageAttributes={"colour": {"DataType": "String", "StringValue": "y" * 30}})
    assert code == "InvalidParameterValue" and "1024 bytes" in message
    code, _, message = _error(send, QueueUrl=url, MessageBody="x",
                              MessageAttributes={"empty": {"DataType": "String", "StringValue": ""}})
    assert (code, message) == ("InvalidParameterValue",
                               "Message (user) attribute 'empty' must contain a non-empty value of type 'String'.")
    many = {f"a{i}": {"DataType": "String", "StringValue": "v"} for i in range(11)}
    assert _error(send, QueueUrl=url, MessageBody="x", MessageAttributes=many)[0] == "InvalidParameterValue"
    code, _, message = _error(send, QueueUrl=url, MessageBody="x", DelaySeconds=901)
    assert code == "InvalidParameterValue" and "DelaySeconds" in message
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_send_message_to_a_fifo_queue_needs_a_group_and_a_deduplication_id(sqs: Any) -> None:
    url = _queue(sqs, fifo=True)
    assert _error(sqs.send_message, QueueUrl=url, MessageBody="x")[0] == "MissingParameter"
    code, _, message = _error(sqs.send_message, QueueUrl=url, MessageBody="x", MessageGroupId="g")
    assert code == "InvalidParameterValue" and "ContentBasedDeduplication" in message
    assert _error(sqs.send_message, QueueUrl=url, MessageBody="x", MessageGroupId="g" * 129,
                  MessageDeduplicationId="d")[0] == "InvalidParameterValue"


def test_a_missing_queue_is_queue_does_not_exist(sqs: Any) -> None:
    code, status, _ = _error(sqs.get_queue_url, QueueName="parity-no-such-queue")
    assert (_code(code), status) in {("NonExistentQueue", 400), ("QueueDoesNotExist", 400)}


# ---------------------------------------------------------------------- SendMessageBatch


def test_send_message_batch_limits_fail_the_whole_call(sqs: Any) -> None:
    url = _queue(sqs)
    send = sqs.send_message_batch
    assert _code(_error(send, QueueUrl=url, Entries=[])[0]) == "EmptyBatchRequest"
    eleven = [{"Id": f"e{i}", "MessageBody": "x"} for i in range(11)]
    assert _code(_error(send, QueueUrl=url, Entries=eleven)[0]) == "TooManyEntriesInBatchRequest"
    twice = [{"Id": "same", "MessageBody": "x"}, {"Id": "same", "MessageBody": "y"}]
    assert _code(_error(send, QueueUrl=url, Entries=twice)[0]) == "BatchEntryIdsNotDistinct"
    assert _code(_error(send, QueueUrl=url, Entries=[{"Id": "not ok", "MessageBody": "x"}])[0]) == "InvalidBatchEntryId"
    big = [{"Id": f"e{i}", "MessageBody": "x" * 200_000} for i in range(6)]  # each fits, 1.2 MB together
    code, status, message = _error(send, QueueUrl=url, Entries=big)
    assert (_code(code), status) == ("BatchRequestTooLong", 400) and "1048576" in message
    assert sqs.receive_message(QueueUrl=url).get("Messages") is None


def test_send_message_batch_refuses_an_entry_in_failed_and_sends_the_others(sqs: Any) -> None:
    url = _queue(sqs, MaximumMessageSize="1024")
    answer = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "ok", "MessageBody": "fine"},
        {"Id": "binary", "MessageBody": "a\x01"},
        {"Id": "oversized", "MessageBody": "x" * 2000},
        {"Id": "late", "MessageBody": "x", "DelaySeconds": 901},
    ])
    assert [e["Id"] for e in answer["Successful"]] == ["ok"]
    failed = {e["Id"]: e for e in answer["Failed"]}
    assert set(failed) == {"binary", "oversized", "late"}
    assert failed["binary"]["Code"] == "InvalidMessageContents" and failed["binary"]["SenderFault"] is True
    assert failed["oversized"]["Code"] == failed["late"]["Code"] == "InvalidParameterValue"
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in got] == ["fine"]


# ------------------------------------------------------------------------ ReceiveMessage


def test_receive_message_parameters_in_range(sqs: Any) -> None:
    url = _queue(sqs)
    code, _, message = _error(sqs.receive_message, QueueUrl=url, WaitTimeSeconds=21)
    assert (code, message) == ("InvalidParameterValue",
                               "Value 21 for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.")
    code, _, message = _error(sqs.receive_message, QueueUrl=url, MaxNumberOfMessages=11)
    assert (code, message) == ("InvalidParameterValue",
                               "Value 11 for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.")
    assert _error(sqs.receive_message, QueueUrl=url, VisibilityTimeout=43201)[0] == "InvalidParameterValue"


@pytest.mark.parametrize("names", [["All"], [".*"], ["*"], ["col.*"], ["colour"]])
def test_receive_message_returns_the_attributes_asked_for(sqs: Any, names: list[str]) -> None:
    url = _queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes={
        "colour": {"DataType": "String", "StringValue": "red"}})
    got = sqs.receive_message(QueueUrl=url, MessageAttributeNames=names)["Messages"][0]
    assert got["MessageAttributes"] == {"colour": {"DataType": "String", "StringValue": "red"}}


def test_a_dead_lettered_message_names_its_source_queue(sqs: Any) -> None:
    dlq = _queue(sqs)
    source = _queue(sqs, VisibilityTimeout="0",
                    RedrivePolicy=json.dumps({"deadLetterTargetArn": _arn(sqs, dlq), "maxReceiveCount": 1}))
    sqs.send_message(QueueUrl=source, MessageBody="poison")
    assert sqs.receive_message(QueueUrl=source)["Messages"]
    assert sqs.receive_message(QueueUrl=source).get("Messages") is None  # the second receive moves it
    got = sqs.receive_message(QueueUrl=dlq, MessageSystemAttributeNames=["All"])["Messages"][0]
    assert got["Attributes"]["DeadLetterQueueSourceArn"] == _arn(sqs, source)
    assert got["Attributes"]["ApproximateReceiveCount"] == "2"
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"][0].endswith(source.rsplit("/", 1)[1])


# ------------------------------------------------------------- DeleteMessage (and batch)


def test_delete_message_receipt_handles(sqs: Any) -> None:
    url = _queue(sqs)
    assert _error(sqs.delete_message, QueueUrl=url, ReceiptHandle="not-a-handle")[0] == "ReceiptHandleIsInvalid"
    sqs.send_message(QueueUrl=url, MessageBody="x")
    handle = sqs.receive_message(QueueUrl=url)["Messages"][0]["ReceiptHandle"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)  # deleting again succeeds


def test_delete_message_batch_limits_and_entry_failures(sqs: Any) -> None:
    url = _queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="x")
    handle = sqs.receive_message(QueueUrl=url)["Messages"][0]["ReceiptHandle"]
    twenty = [{"Id": f"e{i}", "ReceiptHandle": handle} for i in range(20)]
    assert _code(_error(sqs.delete_message_batch, QueueUrl=url, Entries=twenty)[0]) == "TooManyEntriesInBatchRequest"
    assert _code(_error(sqs.delete_message_batch, QueueUrl=url, Entries=[
        {"Id": "a.b", "ReceiptHandle": handle}])[0]) == "InvalidBatchEntryId"
    assert _code(_error(sqs.delete_message_batch, QueueUrl=url, Entries=[])[0]) == "EmptyBatchRequest"
    answer = sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": "good", "ReceiptHandle": handle},
                                                            {"Id": "bad", "ReceiptHandle": "nonsense"}])
    assert [e["Id"] for e in answer["Successful"]] == ["good"]
    assert [(e["Id"], e["Code"], e["SenderFault"]) for e in answer["Failed"]] == [("bad", "ReceiptHandleIsInvalid", True)]


def test_fifo_delete_with_an_expired_receipt_handle_is_refused_and_the_message_comes_back(sqs: Any) -> None:
    url = _queue(sqs, fifo=True, ContentBasedDeduplication="true", VisibilityTimeout="1")
    sqs.send_message(QueueUrl=url, MessageBody="slow", MessageGroupId="g")
    handle = sqs.receive_message(QueueUrl=url)["Messages"][0]["ReceiptHandle"]
    time.sleep(1.2)
    code, status, message = _error(sqs.delete_message, QueueUrl=url, ReceiptHandle=handle)
    assert (code, status) == ("InvalidParameterValue", 400) and message.endswith("Reason: The receipt handle has expired.")
    again = sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["ApproximateReceiveCount"])["Messages"][0]
    assert again["Body"] == "slow" and again["Attributes"]["ApproximateReceiveCount"] == "2"
    # The first receive's handle stays expired while the second receive holds the message.
    answer = sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": "old", "ReceiptHandle": handle}])
    assert [(e["Id"], e["Code"]) for e in answer["Failed"]] == [("old", "ReceiptHandleIsInvalid")]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"])  # the latest handle works
    assert sqs.receive_message(QueueUrl=url).get("Messages") is None


# ------------------------------------------------------ ChangeMessageVisibility (and batch)


def test_change_message_visibility_rules(sqs: Any) -> None:
    url = _queue(sqs)
    assert _error(sqs.change_message_visibility, QueueUrl=url, ReceiptHandle="nonsense",
                  VisibilityTimeout=5)[0] == "ReceiptHandleIsInvalid"
    sqs.send_message(QueueUrl=url, MessageBody="x")
    handle = sqs.receive_message(QueueUrl=url)["Messages"][0]["ReceiptHandle"]
    assert _error(sqs.change_message_visibility, QueueUrl=url, ReceiptHandle=handle,
                  VisibilityTimeout=43201)[0] == "InvalidParameterValue"
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=60)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)
    code, status, message = _error(sqs.change_message_visibility, QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=5)
    assert (code, status) == ("InvalidParameterValue", 400)
    assert message.endswith("Reason: Message does not exist or is not available for visibility timeout change.")
    twenty = [{"Id": f"e{i}", "ReceiptHandle": handle, "VisibilityTimeout": 0} for i in range(20)]
    assert _code(_error(sqs.change_message_visibility_batch, QueueUrl=url, Entries=twenty)[0]) == "TooManyEntriesInBatchRequest"
    assert _code(_error(sqs.change_message_visibility_batch, QueueUrl=url, Entries=[
        {"Id": "x y", "ReceiptHandle": handle, "VisibilityTimeout": 0}])[0]) == "InvalidBatchEntryId"


# ------------------------------------------------------------------ PurgeQueue, attributes


def test_one_purge_per_queue_every_60_seconds(sqs: Any) -> None:
    url, other = _queue(sqs), _queue(sqs)
    sqs.purge_queue(QueueUrl=url)
    code, status, message = _error(sqs.purge_queue, QueueUrl=url)
    assert (_code(code), status) == ("PurgeQueueInProgress", 403)
    assert message == f"Only one PurgeQueue operation on {url.rsplit('/', 1)[1]} is allowed every 60 seconds."
    sqs.purge_queue(QueueUrl=other)  # the limit is per queue


def test_queue_attributes_are_validated(sqs: Any) -> None:
    url = _queue(sqs, VisibilityTimeout="30")
    name = url.rsplit("/", 1)[1]
    assert sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "30"})["QueueUrl"] == url
    code, _, message = _error(sqs.create_queue, QueueName=name, Attributes={"VisibilityTimeout": "31"})
    expected = "A queue already exists with the same name and a different value for attribute VisibilityTimeout"
    assert (_code(code), message) == ("QueueAlreadyExists", expected)
    code, status, message = _error(sqs.set_queue_attributes, QueueUrl=url, Attributes={"RedrivePolicy": "{not json"})
    assert (code, status) == ("InvalidAttributeValue", 400) and "not a valid JSON map" in message
    assert _error(sqs.set_queue_attributes, QueueUrl=url, Attributes={"DelaySeconds": "901"})[0] == "InvalidAttributeValue"
    assert _error(sqs.set_queue_attributes, QueueUrl=url, Attributes={"MaximumMessageSize": "1023"})[0] == "InvalidAttributeValue"
    assert _error(sqs.get_queue_attributes, QueueUrl=url, AttributeNames=["NoSuchAttribute"])[0] == "InvalidAttributeName"


def test_a_move_task_needs_a_dead_letter_queue_as_its_source(sqs: Any) -> None:
    url = _queue(sqs)
    code, _, message = _error(sqs.start_message_move_task, SourceArn=_arn(sqs, url))
    assert code == "InvalidParameterValue" and "Dead Letter Queue" in message


# --------------------------------------------------------------------- FIFO delivery rules


def test_a_fifo_receive_takes_as_many_messages_of_one_group_as_it_can(exact: Any) -> None:
    url = _queue(exact, fifo=True, ContentBasedDeduplication="true")
    for i in range(6):  # interleaved: a1 b1 a2 b2 a3 b3
        for group in ("a", "b"):
            exact.send_message(QueueUrl=url, MessageBody=f"{group}{i}", MessageGroupId=group)
    first = [m["Body"] for m in exact.receive_message(QueueUrl=url, MaxNumberOfMessages=4)["Messages"]]
    assert first == ["a0", "a1", "a2", "a3"]
    second = [m["Body"] for m in exact.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]]
    assert second == [f"b{i}" for i in range(6)]  # group a is in flight: another consumer gets group b
    assert exact.receive_message(QueueUrl=url).get("Messages") is None


def test_a_waiting_long_poll_gets_the_next_message_of_a_group_as_soon_as_its_head_is_deleted(exact: Any) -> None:
    url = _queue(exact, fifo=True, ContentBasedDeduplication="true")
    for body in ("head", "next"):
        exact.send_message(QueueUrl=url, MessageBody=body, MessageGroupId="g")
    head = exact.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"][0]
    got: dict[str, Any] = {}

    def long_poll() -> None:
        started = time.monotonic()
        answer = exact.receive_message(QueueUrl=url, WaitTimeSeconds=10)
        got.update(answer=answer, after=time.monotonic() - started)

    poller = threading.Thread(target=long_poll)
    poller.start()
    time.sleep(0.5)
    exact.delete_message(QueueUrl=url, ReceiptHandle=head["ReceiptHandle"])
    poller.join(timeout=15)
    assert [m["Body"] for m in got["answer"]["Messages"]] == ["next"]
    assert got["after"] < 3.0, got["after"]  # woken by the delete, not by its 10 s wait running out
