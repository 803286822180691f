"""The replacements for moto's ``SQSBackend`` methods, and the lock around all of them.

Stock ``SQSBackend`` marks messages received and rewrites a queue's message list
without a lock (concurrent receivers get the same message, concurrent
DeleteMessageBatch calls lose each other's deletes), and rebuilds every queue
attribute several times per send and per received message. Here the methods work
on the per-queue state of state.py, and ``install()`` wraps every function
``SQSBackend`` defines, stock or replaced, in ``LOCK``; a long-poll releases it
while it waits on the queue's condition.

Each public function is an ``SQSBackend`` method (``self`` is the backend);
``METHODS`` maps method names to their replacements. A new replacement is a
function here, an entry in ``METHODS`` and its pair in ``guard.PATCHED``; it runs
under ``LOCK`` without further ado.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import inspect
import string
import time
import types
from collections.abc import Callable
from typing import Any

from sqslab.contracts import sqslab_id
from sqslab.emulator.guard import _replace_all
from sqslab.emulator.journal import journal_handle
from sqslab.emulator.lab import REORDER_WINDOW
from sqslab.emulator.lab import current as current_lab
from sqslab.emulator.state import (
    INFLIGHT,
    LOCK,
    READY,
    _adopt,
    _drop,
    _init_state_keep_cond,
    _live,
    _next_deadline,
    _promote,
    _set_state,
    now_ms,
    pop_group_ready,
)
from sqslab.emulator.usage import message_bytes

#: moto.sqs.models and moto.sqs.exceptions (bound by install(), so this module imports no moto code itself).
models: Any = None
exceptions: Any = None
#: moto's own SQSBackend.create_queue (bound by install()).
_stock_create_queue: Any = None
#: SQS allows one PurgeQueue per queue in this many seconds.
PURGE_INTERVAL_S = 60.0


def _validate_message(
    self: Any,
    queue: Any,
    message_body: str,
    delay_seconds: int,
    deduplication_id: str | None = None,
    group_id: str | None = None,
    validate_group_id: bool = True,
) -> None:
    """SQSBackend._validate_message: raise moto's error for a message queue does not take."""
    # Stock logic, reading content_based_deduplication instead of rebuilding queue.attributes.
    if queue.fifo_queue:
        if not queue.content_based_deduplication and not group_id:
            raise models.MissingParameter("MessageGroupId")
        if not queue.content_based_deduplication and group_id and not deduplication_id:
            raise models.InvalidParameterValue(
                "The queue should either have ContentBasedDeduplication enabled or "
                "MessageDeduplicationId provided explicitly"
            )
        if delay_seconds > 0:
            raise models.InvalidParameterValue(
                f"Value {delay_seconds} for parameter DelaySeconds is invalid. Reason: "
                "The request include parameter that is not valid for this queue type."
            )
    if len(message_body) > queue.maximum_message_size:
        raise models.InvalidParameterValue(
            "One or more parameters are invalid. Reason: Message must be shorter than "
            f"{queue.maximum_message_size} bytes."
        )
    if group_id is None and queue.fifo_queue:
        raise models.MissingParameter("MessageGroupId")


def send_message(
    self: Any,
    queue_name: str,
    message_body: str,
    message_attributes: dict[str, Any] | None = None,
    delay_seconds: int | None = None,
    deduplication_id: str | None = None,
    group_id: str | None = None,
    system_attributes: dict[str, Any] | None = None,
    validate_group_id: bool = True,
) -> Any:
    """SQSBackend.send_message: validate, build the Message and add it to the queue."""
    queue = self.get_queue(queue_name)
    self._validate_message(
        queue,
        message_body=message_body,
        delay_seconds=int(delay_seconds or 0),
        deduplication_id=deduplication_id,
        group_id=group_id,
        validate_group_id=validate_group_id,
    )
    delay_seconds = int(delay_seconds) if delay_seconds is not None else int(queue.delay_seconds)
    # Negative too (stock moto checks only the top): SendMessageBatch reports it per entry, as SQS does.
    if not 0 <= delay_seconds <= models.MAXIMUM_MESSAGE_DELAY:
        raise models.InvalidParameterValue(
            f"Value {delay_seconds} for parameter DelaySeconds is invalid. "
            "Reason: DelaySeconds must be >= 0 and <= 900."
        )
    message = models.Message(str(models.random.uuid4()), message_body, system_attributes)
    if queue.content_based_deduplication:
        message.deduplication_id = hashlib.sha256(message_body.encode("utf-8")).hexdigest()
    if deduplication_id is not None:
        message.deduplication_id = deduplication_id
        message.sequence_number = "".join(models.random.choice(string.digits) for _ in range(20))
    if group_id is not None:
        message.group_id = group_id
    if message_attributes:
        message.message_attributes = message_attributes
    message.mark_sent(delay_seconds=delay_seconds)
    queue.add_message(message)
    lab = current_lab()
    lab.moved(message_bytes(message_body, message_attributes))
    if lab.journal.fd is not None:
        taken = message._sqslab_owner is queue
        lab.record("send", q=queue.name, mid=message.id, id=sqslab_id(message_body, message_attributes, lab.id_path),
                   **({"group": group_id} if group_id is not None else {}), **({} if taken else {"dropped": "deduplicated"}))
    return message


def receive_message(
    self: Any,
    queue_name: str,
    count: int,
    wait_seconds_timeout: int,
    visibility_timeout: int,
    message_attribute_names: list[str] | None = None,
) -> list[Any]:
    """SQSBackend.receive_message: up to count ready messages, long-polling up to
    wait_seconds_timeout on the queue's condition (which releases LOCK) when none is.
    Past the lab's inflight_limit a short poll fails with OverLimit and a long poll
    answers empty, as SQS does."""
    queue = self.get_queue(queue_name)
    lab = current_lab()
    deadline = time.monotonic() + (wait_seconds_timeout or 0)
    while True:
        now = now_ms()
        _promote(queue, now)
        if queue._counts[INFLIGHT] >= lab.behavior.inflight_limit:
            lab.behavior_event("over_limit", "ReceiveMessage", queue=queue.name, in_flight=queue._counts[INFLIGHT])
            if not wait_seconds_timeout:
                raise exceptions.SQSException("OverLimit", f"Too many messages in flight (over {lab.behavior.inflight_limit}).")
            result = []
        else:
            result = _take(queue, count, visibility_timeout, message_attribute_names or [], now, short_poll=not wait_seconds_timeout)
        if result or not wait_seconds_timeout:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return result
        nxt = _next_deadline(queue)
        if nxt is not None:
            remaining = min(remaining, max(0.0, (nxt - now) / 1000.0) + 0.001)
        queue._cond.wait(remaining)  # releases LOCK while waiting
        if self.queues.get(queue_name) is not queue:
            return []  # deleted or purged-and-recreated while we waited


def _take(queue: Any, count: int, visibility_timeout: int, attribute_names: list[str], now: float,
          short_poll: bool = False) -> list[Any]:
    """Receive up to count ready messages, oldest first, skipping FIFO groups in flight
    and moving to the DLQ those past maxReceiveCount; returns copies for the response.

    The lab's behaviour on a standard queue: a short poll sees each ready message with
    probability short_poll_sample; with reorder, the batch is drawn from the oldest
    REORDER_WINDOW x count ready messages; receive_loss marks a message received but
    leaves it out of the answer (any queue)."""
    lab = current_lab()
    behavior = lab.behavior
    fifo = queue.fifo_queue
    sample = behavior.short_poll_sample if short_poll and not fifo else 1.0
    reorder = behavior.reorder and not fifo
    candidates, skipped, sampled_out = _candidates(queue, count * REORDER_WINDOW if reorder else count, sample, now)
    if reorder and len(candidates) > 1:
        lab.shuffle(candidates)
        rest = candidates[count:]
        del candidates[count:]
        skipped.extend(rest)
        newest = max(entry[1] for entry in candidates)
        passed = sum(1 for entry in rest if entry[1] < newest)
        order = [entry[1] for entry in candidates]
        if passed or order != sorted(order):
            lab.behavior_event("reorder", "ReceiveMessage", queue=queue.name, passed_over=passed)
    result: list[Any] = []
    back_to_ready: list[Any] = []
    journal = lab.journal.fd is not None
    for entry in candidates:
        msg = entry[3]
        msg.mark_received(visibility_timeout=visibility_timeout)
        queue._handles[msg.receipt_handle] = msg
        if visibility_timeout:
            _set_state(queue, msg, INFLIGHT, msg.visible_at)
        else:
            back_to_ready.append(msg)  # visible at once; pushed back after this batch
        if behavior.receive_loss and lab.chance(behavior.receive_loss):
            lab.behavior_event("receive_loss", "ReceiveMessage", queue=queue.name, message_id=msg.id,
                               receive_count=msg.approximate_receive_count)
            if journal:
                lab.record("receive", q=queue.name, mid=msg.id, rc=msg.approximate_receive_count, vt=visibility_timeout, lost=True)
            continue
        if journal:
            lab.record("receive", q=queue.name, mid=msg.id, rc=msg.approximate_receive_count, vt=visibility_timeout)
        clone = _shallow_copy(msg)
        models._filter_message_attributes(clone, attribute_names)
        lab.moved(message_bytes(clone.body, clone.message_attributes), received=1)
        result.append(clone)
    ready = queue._heaps[READY].items
    for entry in skipped:
        heapq.heappush(ready, entry)
    for msg in back_to_ready:
        _set_state(queue, msg, READY)  # a new generation: its older heap entries are dead
    if sampled_out and not result:
        lab.behavior_event("empty_receive", "ReceiveMessage", queue=queue.name, visible=queue._counts[READY])
    return result


def _candidates(queue: Any, want: int, sample: float, now: float) -> tuple[list[Any], list[Any], int]:
    """Pop up to `want` deliverable ready entries, oldest first: (taken, skipped, how
    many a short poll's sample missed). On a FIFO queue groups in flight are skipped,
    and the batch takes as many messages of the oldest deliverable message's group as it
    can before it goes on to the next group, as SQS documents. A message at
    maxReceiveCount moves to the DLQ instead (see _dead_letter)."""
    lab = current_lab()
    ready = queue._heaps[READY].items
    fifo = queue.fifo_queue
    blocked: set[Any] = set(queue._inflight_groups) if fifo else set()
    max_receives = queue.redrive_policy["maxReceiveCount"] if queue.dead_letter_queue is not None and queue.redrive_policy else None
    taken: list[Any] = []
    skipped: list[Any] = []
    sampled_out = 0
    while ready and len(taken) < want:
        entry = heapq.heappop(ready)
        if not _live(entry, queue):
            continue
        msg = entry[3]
        if fifo and msg.group_id in blocked:
            skipped.append(entry)
            continue
        if max_receives is not None and msg.approximate_receive_count >= max_receives:
            _dead_letter(queue, msg, now)
            continue
        if sample < 1.0 and not lab.chance(sample):
            skipped.append(entry)
            sampled_out += 1
            continue
        taken.append(entry)
        if fifo:
            _fill_from_group(queue, msg, taken, want, max_receives, now)
            blocked.add(msg.group_id)  # every ready message of it is taken, or the batch is full
    return taken, skipped, sampled_out


def _fill_from_group(queue: Any, first: Any, taken: list[Any], want: int, max_receives: int | None, now: float) -> None:
    """Add to taken the next ready messages of first's FIFO group, in order, up to want."""
    group = first.group_id
    while len(taken) < want:
        entry = pop_group_ready(queue, group)
        if entry is None:
            return
        msg = entry[3]
        if msg is first:
            continue
        if max_receives is not None and msg.approximate_receive_count >= max_receives:
            _dead_letter(queue, msg, now)
            continue
        taken.append(entry)


def _dead_letter(queue: Any, msg: Any, now: float) -> None:
    """The receive after maxReceiveCount receives moves msg to the DLQ: with its original
    id; on a FIFO queue its deduplication id becomes that id and its enqueue time resets,
    as SQS documents; it remembers the source for DeadLetterQueueSourceArn and redrive."""
    dlq = queue.dead_letter_queue
    _drop(queue, msg, remember_handles=False)
    msg._sqslab_source_arn = queue.queue_arn
    if queue.fifo_queue:
        msg.deduplication_id = msg.id
        msg.sent_timestamp = int(now)
    _adopt(dlq, msg, now)
    lab = current_lab()
    if lab.journal.fd is not None:
        lab.record("dead_letter", q=queue.name, mid=msg.id, rc=msg.approximate_receive_count, to=dlq.name)


def _shallow_copy(msg: Any) -> Any:
    """A copy of msg sharing its attribute values, for one response to filter."""
    # Not copy.copy: BaseModel.__new__ would record every copy in a class-level list.
    clone = object.__new__(type(msg))
    clone.__dict__.update(msg.__dict__)
    return clone


def delete_message(self: Any, queue_name: str, receipt_handle: str) -> None:
    """SQSBackend.delete_message: the queue's (patched) delete_message."""
    self.get_queue(queue_name).delete_message(receipt_handle)


def change_message_visibility(self: Any, queue_name: str, receipt_handle: str, visibility_timeout: int) -> None:
    """SQSBackend.change_message_visibility: in flight until now + visibility_timeout,
    or ready at once for 0 (waking long-polls); any handle the message had works.

    The lab's behaviour: with not_inflight `error`, a message no longer in flight fails
    with MessageNotInflight; with stale_receipt `ignore`, a handle that is not the
    message's latest succeeds and does nothing."""
    queue = self.get_queue(queue_name)
    msg = queue._handles.get(receipt_handle)
    lab = current_lab()
    journal = journal_handle(lab, "visibility", queue.name, receipt_handle, vt=int(visibility_timeout))
    if msg is None or msg._sqslab_owner is not queue:
        journal("invalid")
        if receipt_handle in queue.deleted_messages:
            raise models.InvalidParameterValue(
                f"Value {receipt_handle} for parameter ReceiptHandle is invalid. Reason: Message does not exist or is "
                "not available for visibility timeout change.")
        raise models.ReceiptHandleIsInvalid
    _promote(queue, now_ms())  # a visibility timeout that ended makes the message ready first
    if msg._sqslab_state != INFLIGHT:
        lab.behavior_event("not_inflight", "ChangeMessageVisibility", queue=queue.name, message_id=msg.id,
                           refused=lab.behavior.not_inflight == "error")
        if lab.behavior.not_inflight == "error":
            journal("not_inflight")
            raise exceptions.SQSException("MessageNotInflight", "The message referred to isn't in flight.")
    if receipt_handle != msg.receipt_handle and lab.ignores_stale("ChangeMessageVisibility", queue.name, msg.id):
        journal("stale_ignored")
        return
    now = now_ms()
    visible_at = now + int(visibility_timeout) * 1000
    if visible_at - msg.sent_timestamp > 43200 * 1000:
        raise models.InvalidParameterValue(
            f"Value {visibility_timeout} for parameter VisibilityTimeout is invalid. Reason: Total "
            "VisibilityTimeout for the message is beyond the limit [43200 seconds]"
        )
    journal("changed" if receipt_handle == msg.receipt_handle else "stale_changed")  # once it is sure to take effect
    msg.visible_at = visible_at
    if int(visibility_timeout) > 0:
        _set_state(queue, msg, INFLIGHT, visible_at)
    elif msg._sqslab_state != READY:
        _set_state(queue, msg, READY)
        queue._cond.notify_all()


def change_message_visibility_batch(self: Any, queue_name: str, entries: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """SQSBackend.change_message_visibility_batch: stock, except that every SQS error of
    an entry (MessageNotInflight too, not only ReceiptHandleIsInvalid) is that entry's
    failure, as on SQS, instead of failing the whole call."""
    success: list[str] = []
    failed: list[dict[str, Any]] = []
    for entry in entries:
        try:
            timeout = int(entry["VisibilityTimeout"])
            if not 0 <= timeout <= models.MAXIMUM_VISIBILITY_TIMEOUT:
                raise ValueError(timeout)
        except (KeyError, TypeError, ValueError):
            failed.append({"Id": entry["Id"], "SenderFault": True, "Code": "InvalidParameterValue",
                           "Message": "Visibility timeout invalid"})
            continue
        try:
            self.change_message_visibility(queue_name=queue_name, receipt_handle=entry["ReceiptHandle"], visibility_timeout=timeout)
            success.append(entry["Id"])
        except exceptions.SQSException as exc:
            failed.append(_failure(entry, exc))
    return success, failed


def delete_message_batch(self: Any, queue_name: str, receipts: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """SQSBackend.delete_message_batch: each entry's SQS error (an invalid handle, a
    FIFO handle that expired) is that entry's failure, as on SQS."""
    success: list[str] = []
    failed: list[dict[str, Any]] = []
    for entry in receipts:
        try:
            self.delete_message(queue_name, entry["ReceiptHandle"])
            success.append(entry["Id"])
        except exceptions.SQSException as exc:
            failed.append(_failure(entry, exc))
    return success, failed


def _failure(entry: dict[str, Any], exc: Any) -> dict[str, Any]:
    """A batch entry's failure for exc, with the code SQS gives it in a batch."""
    code, message = getattr(exc, "batch_failure", None) or (exc.code, getattr(exc, "message", ""))
    if code == "ReceiptHandleIsInvalid" and message == "The input receipt handle is invalid.":
        message = f'The input receipt handle "{entry.get("ReceiptHandle")}" is not a valid receipt handle.'
    return {"Id": entry["Id"], "SenderFault": True, "Code": code, "Message": message}


def purge_queue(self: Any, queue_name: str) -> None:
    """SQSBackend.purge_queue: drop every message; long-polls keep waiting on the queue.
    One purge per queue every 60 s, as on SQS (PurgeQueueInProgress, HTTP 403)."""
    queue = self.get_queue(queue_name)
    now = time.monotonic()
    last = getattr(queue, "_sqslab_purged_at", None)
    if last is not None and now - last < PURGE_INTERVAL_S:
        raise exceptions.SQSException(
            "PurgeQueueInProgress", f"Only one PurgeQueue operation on {queue.name} is allowed every 60 seconds.")
    queue._sqslab_purged_at = now
    lab = current_lab()
    for msg in list(queue._messages.values()):
        _drop(queue, msg, remember_handles=False)
        lab.record("purged", q=queue.name, mid=msg.id)
    _init_state_keep_cond(queue)


def create_queue(self: Any, name: str, tags: dict[str, str] | None = None, **kwargs: Any) -> Any:
    """SQSBackend.create_queue: stock, but QueueAlreadyExists names the attribute that
    differs, as SQS does."""
    try:
        return _stock_create_queue(self, name, tags, **kwargs)
    except exceptions.QueueAlreadyExists:
        existing = self.queues[name].attributes
        kwargs.pop("region", None)
        wanted = models.Queue(name, region=self.region_name, account_id=self.account_id, **kwargs).attributes
        differs = next((key for key in kwargs if existing.get(key) != wanted.get(key)), None)
        raise exceptions.QueueAlreadyExists(
            f"A queue already exists with the same name and a different value for attribute {differs}") from None


def delete_queue(self: Any, queue_name: str) -> None:
    """SQSBackend.delete_queue: forget the queue and wake its long-polls (they return empty)."""
    queue = self.get_queue(queue_name)
    del self.queues[queue_name]
    queue._cond.notify_all()  # long-polls on it return empty


def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
    """SQSBackend.is_message_valid_based_on_retention_period, on the patched clock."""
    queue = self.get_queue(queue_name)
    return message.sent_timestamp + int(queue.message_retention_period) * 1000 > now_ms()


def get_queue_attributes(self: Any, queue_name: str, attribute_names: list[str]) -> dict[str, Any]:
    """SQSBackend.get_queue_attributes: stock validation, queue.attributes built once."""
    queue = self.get_queue(queue_name)
    if not attribute_names:
        return {}
    valid = {"All", *queue.BASE_ATTRIBUTES, *queue.FIFO_ATTRIBUTES, *queue.KMS_ATTRIBUTES}
    invalid = next((n for n in attribute_names if n not in valid), None)
    if invalid or invalid == "":
        raise models.InvalidAttributeName(invalid)
    attributes = queue.attributes  # once, not three times per name
    lab = current_lab()
    if lab.behavior.count_lag > 0:
        truth = {name: attributes[name] for name in _COUNTS}
        attributes.update(lab.lagged_counts(queue.name, truth))
    if "All" in attribute_names:
        return attributes
    return {n: attributes[n] for n in attribute_names if attributes.get(n) is not None}


_COUNTS = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed")

#: SQSBackend method name -> its replacement, installed in this order.
METHODS: dict[str, Callable[..., Any]] = {
    "_validate_message": _validate_message,
    "send_message": send_message,
    "receive_message": receive_message,
    "delete_message": delete_message,
    "delete_message_batch": delete_message_batch,
    "create_queue": create_queue,
    "change_message_visibility": change_message_visibility,
    "change_message_visibility_batch": change_message_visibility_batch,
    "purge_queue": purge_queue,
    "delete_queue": delete_queue,
    "is_message_valid_based_on_retention_period": is_message_valid_based_on_retention_period,
    "get_queue_attributes": get_queue_attributes,
}


def install(moto_models: types.ModuleType) -> None:
    """Replace moto.sqs.models.SQSBackend's methods with METHODS, then wrap every
    function the class defines in LOCK."""
    global models, exceptions, _stock_create_queue
    from moto.sqs import exceptions as moto_exceptions

    models, exceptions = moto_models, moto_exceptions
    backend = moto_models.SQSBackend
    _stock_create_queue = backend.create_queue
    _replace_all(backend, METHODS)
    # Every backend call, stock or replaced, runs under the one lock. Not through
    # _replace: this wraps whatever functions this moto's SQSBackend has.
    for name, func in list(vars(backend).items()):
        if inspect.isfunction(func) and not name.startswith("__"):
            setattr(backend, name, _locked(func))


def _locked(func: Callable[..., Any]) -> Callable[..., Any]:
    """func, called with LOCK held (keeps its name and docs; __wrapped__ is func)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with LOCK:
            return func(*args, **kwargs)

    return wrapper
