"""FIFO conformance of the embedded emulator, over HTTP, from several processes: the group
lock, order across redeliveries and visibility expiry, deduplication (a deleted message's
id included), the move of a FIFO message to a FIFO DLQ."""

from __future__ import annotations

import json
import multiprocessing
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from sqslab.emulator import Emulator, client

pytestmark = pytest.mark.integration

FORK = multiprocessing.get_context("fork")
ATTRS = ["ApproximateReceiveCount", "MessageGroupId", "SequenceNumber"]


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator() as running:
        yield running


@pytest.fixture()
def sqs(emu: Emulator) -> Any:
    return client(emu.endpoint_url, max_pool_connections=20)


def fifo(sqs: Any, visibility: int = 30, dlq_receives: int | None = None, **attributes: str) -> tuple[str, str | None]:
    name = f"f-{uuid.uuid4().hex[:10]}"
    dlq_url = None
    attrs = {"FifoQueue": "true", "VisibilityTimeout": str(visibility), **attributes}
    if dlq_receives:
        dlq_url = sqs.create_queue(QueueName=f"{name}-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attrs["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": str(dlq_receives)})
    return sqs.create_queue(QueueName=f"{name}.fifo", Attributes=attrs)["QueueUrl"], dlq_url


def send(sqs: Any, url: str, bodies: list[tuple[str, str]]) -> None:
    """(group, body) pairs, in order; the body doubles as the deduplication id."""
    for group, body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=body)


def _consume(endpoint: str, url: str, out: Any, deadline: float) -> None:
    sqs = client(endpoint)
    while time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageSystemAttributeNames=ATTRS)
        for message in got.get("Messages", []):
            out.put((message["Attributes"]["MessageGroupId"], message["Body"], time.monotonic()))
            time.sleep(0.005)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_several_processes_see_each_group_in_order_and_one_at_a_time(emu: Emulator, sqs: Any) -> None:
    url, _ = fifo(sqs)
    groups = [f"g{i}" for i in range(6)]
    send(sqs, url, [(g, f"{g}-{n:03d}") for n in range(40) for g in groups])
    out: Any = FORK.Queue()
    workers = [FORK.Process(target=_consume, args=(emu.endpoint_url, url, out, time.monotonic() + 8)) for _ in range(4)]
    for worker in workers:
        worker.start()
    seen: list[tuple[str, str, float]] = []
    while len(seen) < 240:
        seen.append(out.get(timeout=20))
    for worker in workers:
        worker.join(15)
    for group in groups:
        bodies = [body for g, body, _ in seen if g == group]
        assert bodies == sorted(bodies), f"{group} out of order: the group lock or the order failed"
        assert len(bodies) == len(set(bodies)) == 40


def test_a_group_is_locked_while_a_message_of_it_is_in_flight(sqs: Any) -> None:
    url, _ = fifo(sqs, visibility=30)
    send(sqs, url, [("a", "a1"), ("a", "a2"), ("b", "b1")])
    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, MessageSystemAttributeNames=ATTRS)["Messages"]
    assert [m["Body"] for m in first] == ["a1"]
    rest = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=ATTRS)["Messages"]
    assert [m["Body"] for m in rest] == ["b1"], "a2 waits for a1"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"])
    after = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in after] == ["a2"]


def test_order_holds_across_a_redelivery_after_the_visibility_timeout(sqs: Any) -> None:
    url, _ = fifo(sqs, visibility=1)
    send(sqs, url, [("g", "1"), ("g", "2"), ("g", "3")])
    batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=ATTRS)["Messages"]
    assert [m["Body"] for m in batch] == ["1", "2", "3"]
    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []) == [], "locked while in flight"
    time.sleep(1.3)  # none deleted: all three come back, in the same order
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=ATTRS)["Messages"]
    assert [(m["Body"], m["Attributes"]["ApproximateReceiveCount"]) for m in again] == [("1", "2"), ("2", "2"), ("3", "2")]


def test_a_message_made_visible_again_goes_before_later_ones_of_its_group(sqs: Any) -> None:
    url, _ = fifo(sqs, visibility=30)
    send(sqs, url, [("g", "1"), ("g", "2")])
    one = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"][0]
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=one["ReceiptHandle"], VisibilityTimeout=0)
    batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in batch] == ["1", "2"]


def test_deduplication_holds_after_the_first_copy_was_deleted(sqs: Any) -> None:
    url, _ = fifo(sqs)
    send(sqs, url, [("g", "once")])
    got = sqs.receive_message(QueueUrl=url)["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
    send(sqs, url, [("g", "once"), ("h", "once")])  # the same deduplication id, any group: dropped
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", []) == []
    send(sqs, url, [("g", "twice")])
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=url)["Messages"]] == ["twice"]


def test_content_based_deduplication_drops_an_identical_body(sqs: Any) -> None:
    url, _ = fifo(sqs, ContentBasedDeduplication="true")
    for _ in range(3):
        sqs.send_message(QueueUrl=url, MessageBody="same", MessageGroupId="g")
    sqs.send_message(QueueUrl=url, MessageBody="other", MessageGroupId="g")
    bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]]
    assert bodies == ["same", "other"]


def test_a_fifo_message_moves_to_a_fifo_dlq_and_unblocks_its_group(sqs: Any) -> None:
    url, dlq = fifo(sqs, visibility=1, dlq_receives=2)
    assert dlq is not None
    send(sqs, url, [("g", "poison"), ("g", "next")])
    for _ in range(2):
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=2)["Messages"]
        assert [m["Body"] for m in batch] == ["poison"], "the group's head, every time"
        time.sleep(1.1)
    after = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2)["Messages"]
    assert [m["Body"] for m in after] == ["next"], "the third receive moved the head to the DLQ"
    moved = sqs.receive_message(QueueUrl=dlq, MessageSystemAttributeNames=ATTRS)["Messages"]
    assert [(m["Body"], m["Attributes"]["MessageGroupId"]) for m in moved] == [("poison", "g")]


def test_a_fifo_queue_refuses_a_message_without_a_group_or_with_its_own_delay(sqs: Any) -> None:
    from botocore.exceptions import ClientError

    url, _ = fifo(sqs)
    with pytest.raises(ClientError, match="MessageGroupId"):
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageDeduplicationId="x")
    with pytest.raises(ClientError, match="DelaySeconds"):
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g", MessageDeduplicationId="y", DelaySeconds=5)
