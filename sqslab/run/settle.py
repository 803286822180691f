"""After the load: settle until the queue is drained, then audit what the queues hold.

Settling and the audit judge by the truth the lab has. On the embedded emulator they
read its exact state through the lab's own channel (Target.queue_states): never the
lagging counts, sampled polls, lost receives, in-flight limit, faults or FIFO group
locks that the behaviour profile gives the consumer, and a message held under any
visibility timeout is seen where it is. Elsewhere (real SQS, your own endpoint) the
queues are read through SQS: a standard queue's messages are made visible again, a
FIFO queue's deleted as read (a group's messages in flight lock the rest of it), the
redrive policy is off while the queue is read, and what could not be read is said.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from sqslab.contracts import ID_ATTRIBUTE, sqslab_id
from sqslab.run.recorder import Recorder
from sqslab.run.sampler import Sampler
from sqslab.targets import Endpoints, Target, TargetError
from sqslab.truth.store import Audit

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


def audit_queues(target: Target, sqs: Any, endpoints: Endpoints, sampler: Sampler, recorder: Recorder, visibility_timeout: float,
                 delay: float, fifo: bool = False) -> Audit:
    """What the queues hold now that the consumers are stopped: the ids in the DLQ and in
    the queue. Where the target has an exact view (the embedded emulator), every message
    either holds, in whatever state (a message in flight until T is still queued); else
    the queues are read through SQS (read_queues)."""
    urls = [endpoints.queue_url] + ([endpoints.dlq_url] if endpoints.dlq_url else [])
    states = target.queue_states(urls, messages=True)
    audit = Audit(at=time.time(), visibility_timeout=visibility_timeout, delay=delay)
    if states is None:
        read_queues(audit, sqs, endpoints, sampler, fifo)
    else:
        queue, dlq = states[0], states[1] if len(states) > 1 else None
        audit.exact = True
        audit.queue_visible, audit.queue_in_flight = queue.visible, queue.in_flight
        audit.queued_ids = {m.id for m in queue.messages or ()}
        audit.held = {m.id: (m.state, m.until) for m in queue.messages or () if m.state != "ready"}
        if dlq is not None:
            audit.dlq_messages = dlq.visible + dlq.in_flight + dlq.delayed
            audit.dlq_ids = {m.id for m in dlq.messages or ()}
            audit.dlq_extra_copies = len(dlq.messages or ()) - len(audit.dlq_ids)
        for name, state in (("queue", queue), ("DLQ", dlq)):
            if state is not None and state.truncated:
                audit.notes.append(f"the {name} holds more messages than the audit lists ({len(state.messages or ())}); "
                                   "the rest were counted, not read")
    recorder.emit({"event": "audit", "exact": audit.exact, "dlq_ids": len(audit.dlq_ids), "queued_ids": len(audit.queued_ids),
                   "held": len(audit.held), "queue_visible": audit.queue_visible, "queue_in_flight": audit.queue_in_flight,
                   "notes": audit.notes})
    return audit


def read_queues(audit: Audit, sqs: Any, endpoints: Endpoints, sampler: Sampler, fifo: bool) -> None:
    """The audit through SQS (real SQS, your own endpoint): receive whatever is visible.
    The queue's redrive policy is off while it is read (a receive counts towards
    maxReceiveCount) and put back after. A FIFO queue's messages are deleted as they are
    read (the run owns them), since a group's messages in flight lock the rest of it;
    a standard queue's are made visible again. Messages in flight cannot be read: the
    audit says how many there were."""
    depths = sampler.depths()
    audit.queue_visible, audit.queue_in_flight = depths["queue.visible"], depths["queue.in_flight"]
    audit.dlq_messages = depths["dlq.messages"]
    queue_url, dlq_url = endpoints.queue_url, endpoints.dlq_url
    if dlq_url:
        audit.dlq_ids = read_ids(sqs, dlq_url, confirm_wait=CONFIRM_WAIT, consume=fifo)
    if depths["queue.visible"] > 0:
        policy = None
        if dlq_url:
            policy = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])["Attributes"].get("RedrivePolicy")
            sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"RedrivePolicy": ""})
        try:
            audit.queued_ids = read_ids(sqs, queue_url, confirm_wait=CONFIRM_WAIT, consume=fifo)
        finally:
            if policy:
                sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"RedrivePolicy": policy})
    if audit.queue_in_flight:
        audit.notes.append(f"{audit.queue_in_flight} message(s) were in flight in the queue at the audit and could not be read: "
                           "an id neither processed nor found may be one of them")


def read_ids(client: Any, queue_url: str, limit: int = AUDIT_LIMIT, confirm_wait: int = 0, consume: bool = False) -> set[str]:
    """The payload ids of every message that can be received from a queue now, each read
    once (hidden while reading, then made visible again; `consume`: deleted instead, so a
    FIFO group's next messages can be read). Bodies not ours count as `?ID`.
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
                ids.add(message_id_of(message))
            if consume:
                entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
                client.delete_message_batch(QueueUrl=queue_url, Entries=entries)
            else:
                handles.extend(m["ReceiptHandle"] for m in messages)
    finally:
        for start in range(0, len(handles), 10):
            entries = [{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(handles[start:start + 10])]
            client.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
    return ids


def message_id_of(message: dict[str, Any]) -> str:
    """sqslab's id of a received message (its `sqslab-id` attribute, else its JSON payload's
    `id`), or `?MessageId` for a message not ours."""
    return sqslab_id(message.get("Body", ""), message.get("MessageAttributes")) or f"?{message['MessageId']}"
