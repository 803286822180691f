"""After the load: settle until the queue is drained, then audit what the queues hold.

The audit reads the queues without changing them: each message read is made visible
again, and the redrive policy is switched off while the queue is read (a receive counts
towards maxReceiveCount) and put back after, so a kept stack or your own endpoint is
left as it was, but for the receive counts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from sqslab.backends import Endpoints, TargetError
from sqslab.contracts import ID_ATTRIBUTE, sqslab_id
from sqslab.ledger import Audit
from sqslab.recorder import Recorder
from sqslab.sampler import Sampler

SETTLE_POLL = 0.25
#: The most message ids the audit reads from one queue; beyond it the rest is counted, not read.
AUDIT_LIMIT = 1_000_000
#: The long poll (seconds) that confirms an empty short poll where SQS samples its servers.
CONFIRM_WAIT = 1


def settle(sampler: Sampler, recorder: Recorder, until: str, deadline: float, interrupted: threading.Event,
           check: Callable[[], None]) -> bool:
    """Wait until the queue is drained (visible + in flight + delayed = 0) or the deadline
    (monotonic); True when it drained. Raises TargetError when the queue cannot be read,
    and whatever `check` raises (called on every poll: Ctrl-C, a dead emulator)."""
    recorder.emit({"event": "settle_started", "until": until})
    drain = sampler.drain
    while True:
        check()
        try:
            depths = sampler.depths()
        except Exception as exc:
            raise TargetError(f"cannot read the queue while settling: {exc}") from exc
        drain.note(depths, time.monotonic())
        if drain.drained_at is not None:
            recorder.emit({"event": "drained", "drain_time": round(drain.drain_time() or 0.0, 3)})
            return True
        if until == "none" or time.monotonic() >= deadline:
            recorder.emit({"event": "settle_timeout" if until == "drained" else "settle_skipped", "depths": depths})
            return False
        if interrupted.wait(SETTLE_POLL):
            return False


def audit_queues(sqs: Any, endpoints: Endpoints, sampler: Sampler, recorder: Recorder, visibility_timeout: float, delay: float,
                 exact: bool = False) -> Audit:
    """What the queues hold now that the consumers are stopped: the DLQ's ids, and the ids
    of whatever is still visible in the queue. `exact`: the target's SQS answers a short
    poll with every visible message (the emulator in exact mode); else an empty short
    poll is confirmed by a long poll, as SQS's short polls sample its servers."""
    audit = Audit(at=time.time(), visibility_timeout=visibility_timeout, delay=delay)
    depths = sampler.depths()
    audit.queue_visible, audit.queue_in_flight = depths["queue.visible"], depths["queue.in_flight"]
    audit.dlq_messages = depths["dlq.messages"]
    queue_url, dlq_url = endpoints.queue_url, endpoints.dlq_url
    if dlq_url:
        audit.dlq_ids = read_ids(sqs, dlq_url, confirm_wait=0 if exact else CONFIRM_WAIT)
    if depths["queue.visible"] > 0:
        policy = None
        if dlq_url:
            policy = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])["Attributes"].get("RedrivePolicy")
            sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"RedrivePolicy": ""})
        try:
            audit.queued_ids = read_ids(sqs, queue_url, confirm_wait=0 if exact else CONFIRM_WAIT)
        finally:
            if policy:
                sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"RedrivePolicy": policy})
    recorder.emit({"event": "audit", "dlq_ids": len(audit.dlq_ids), "queued_ids": len(audit.queued_ids),
                   "queue_visible": audit.queue_visible, "queue_in_flight": audit.queue_in_flight})
    return audit


def read_ids(client: Any, queue_url: str, limit: int = AUDIT_LIMIT, confirm_wait: int = 0) -> set[str]:
    """The payload ids of every message that can be received from a queue now, each read
    once (hidden while reading, then made visible again). Bodies not ours count as `?ID`.
    Short polls, and after an empty one a long poll of confirm_wait seconds (when given):
    a long poll asks every SQS server, so it finds what a short poll's sample missed."""
    ids: set[str] = set()
    handles: list[str] = []
    empty = 0
    try:
        while empty < 2 and len(ids) < limit:
            wait = confirm_wait if empty else 0
            response = client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=600, WaitTimeSeconds=wait,
                                              MessageAttributeNames=[ID_ATTRIBUTE])
            messages = response.get("Messages", [])
            if not messages:
                empty += 1
                continue
            empty = 0
            for message in messages:
                handles.append(message["ReceiptHandle"])
                ids.add(message_id_of(message))
    finally:
        for start in range(0, len(handles), 10):
            entries = [{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(handles[start:start + 10])]
            client.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
    return ids


def message_id_of(message: dict[str, Any]) -> str:
    """sqslab's id of a received message (its `sqslab-id` attribute, else its JSON payload's
    `id`), or `?MessageId` for a message not ours."""
    return sqslab_id(message.get("Body", ""), message.get("MessageAttributes")) or f"?{message['MessageId']}"
