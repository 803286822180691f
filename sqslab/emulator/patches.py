"""Patches to moto 5.2.1's SQS backend, applied in the emulator child before it serves.

Stock moto keeps each queue's messages in one list that every call scans, rewrites
that list without a lock (concurrent DeleteMessageBatch calls lose each other's
deletes), marks messages received without a lock (concurrent receivers get the same
message), recomputes every queue attribute, full-queue counts included, several
times per send and per received message, and reads a datetime-based clock for every
comparison. Here, per queue:

* one re-entrant lock (``LOCK``) is held by every ``SQSBackend`` method; a long-poll
  waits on the queue's condition, which releases the lock, and is woken by a send or
  a visibility change, or by a timer at the next visibility/delay deadline;
* each live message is in exactly one state -- delayed, ready or in flight -- kept
  in a heap (delay deadline, send order, visibility deadline), with a counter per
  state, so receive, delete and GetQueueAttributes counts cost O(log n) or O(1);
* receipt handles are a dict, so a delete or ChangeMessageVisibility is a lookup;
* a monotonic clock anchored to the epoch replaces moto's datetime arithmetic.

Semantics kept from moto (and, as far as documented, from SQS): oldest-ready-first
delivery, visibility timeout and ChangeMessageVisibility (also with stale handles),
DLQ move on the receive after ``maxReceiveCount`` receives, ApproximateReceiveCount,
ApproximateFirstReceiveTimestamp, SentTimestamp, per-message and queue delay,
retention, batch calls, FIFO message groups and deduplication.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import heapq
import inspect
import itertools
import os
import string
import threading
import time
from collections import Counter, deque
from typing import Any, Callable

#: The one lock around the SQS backend. Re-entrant: backend methods call each other.
LOCK = threading.RLock()

_MONO0 = time.monotonic()
_EPOCH0_MS = time.time() * 1000.0

DELAYED, READY, INFLIGHT = "delayed", "ready", "inflight"
DEDUPLICATION_WINDOW_MS = 300_000
#: Receipt handles of deleted messages remembered so a repeated delete succeeds.
DELETED_HANDLES_KEPT = 200_000

_seq = itertools.count(1)
_applied = False


def now_ms() -> float:
    """Milliseconds since the epoch, but monotonic: the clock every patched call reads."""
    return _EPOCH0_MS + (time.monotonic() - _MONO0) * 1000.0


def _unix_time(dt: Any = None) -> float:
    return now_ms() / 1000.0 if dt is None else _orig["unix_time"](dt)


def _unix_time_millis(dt: Any = None) -> float:
    return now_ms() if dt is None else _orig["unix_time_millis"](dt)


def generate_receipt_handle() -> str:
    """A 185-character lowercase handle like moto's, from os.urandom instead of 185 random.choice calls."""
    return base64.b32encode(os.urandom(120)).decode("ascii").lower()[:185]


_orig: dict[str, Any] = {}


# --------------------------------------------------------------------------- queue state


class _Heap:
    """A heap of (key, seq, gen, message) with lazy deletion. In a state heap an entry is
    live while its message is owned by the queue and has the generation it was pushed
    with; in the retention heap (``by_owner``) while the message is owned by the queue."""

    __slots__ = ("items", "by_owner")

    def __init__(self, by_owner: bool = False) -> None:
        self.items: list[tuple[float, int, int, Any]] = []
        self.by_owner = by_owner

    def push(self, key: float, msg: Any) -> None:
        heapq.heappush(self.items, (key, msg._sqslab_seq, msg._sqslab_gen, msg))

    def compact(self, owner: Any, live: int) -> None:
        if len(self.items) > 2 * live + 256:
            if self.by_owner:
                self.items = [e for e in self.items if e[3]._sqslab_owner is owner]
            else:
                self.items = [e for e in self.items if _live(e, owner)]
            heapq.heapify(self.items)


def _live(entry: tuple[float, int, int, Any], owner: Any) -> bool:
    msg = entry[3]
    return msg._sqslab_owner is owner and msg._sqslab_gen == entry[2]


def _init_state(queue: Any) -> None:
    queue._messages = {}  # message id -> Message, live messages in send order
    queue._handles = {}  # every receipt handle of a live message -> Message
    queue.deleted_messages = set()
    queue._deleted_order = deque()
    queue._heaps = {DELAYED: _Heap(), READY: _Heap(), INFLIGHT: _Heap()}
    queue._aging = _Heap(by_owner=True)  # by sent time, for retention
    queue._counts = {DELAYED: 0, READY: 0, INFLIGHT: 0}
    queue._inflight_groups = Counter()
    queue._dedup = {}  # deduplication id -> sent ms (FIFO)
    queue._dedup_order = deque()
    queue._cond = threading.Condition(LOCK)


def _set_state(queue: Any, msg: Any, state: str | None, key: float = 0.0) -> None:
    """Move msg to state (None: out of the queue), keeping counters and heaps right."""
    old = msg._sqslab_state
    if old is not None:
        queue._counts[old] -= 1
        if old == INFLIGHT and msg.group_id is not None:
            _release_group(queue, msg.group_id)
    msg._sqslab_gen += 1
    msg._sqslab_state = state
    if state is None:
        return
    queue._counts[state] += 1
    if state == READY:
        key = msg._sqslab_seq  # oldest first, like stock moto
    elif state == INFLIGHT and msg.group_id is not None:
        queue._inflight_groups[msg.group_id] += 1
    heap = queue._heaps[state]
    heap.push(key, msg)
    heap.compact(queue, queue._counts[state])


def _release_group(queue: Any, group_id: str) -> None:
    left = queue._inflight_groups[group_id] - 1
    if left > 0:
        queue._inflight_groups[group_id] = left
    else:
        del queue._inflight_groups[group_id]


def _adopt(queue: Any, msg: Any, now: float) -> None:
    """Take msg into queue (a send, or a move to the DLQ)."""
    msg._sqslab_owner = queue
    msg._sqslab_state = None
    msg._sqslab_seq = next(_seq)
    queue._messages[msg.id] = msg
    for handle in msg._old_receipt_handles + [msg.receipt_handle]:
        if handle is not None:
            queue._handles[handle] = msg
    queue._aging.push(msg.sent_timestamp or now, msg)
    queue._aging.compact(queue, len(queue._messages))
    if msg.delayed_until > now:
        _set_state(queue, msg, DELAYED, msg.delayed_until)
    else:
        _set_state(queue, msg, READY)
        queue._cond.notify_all()


def _drop(queue: Any, msg: Any, remember_handles: bool) -> None:
    """Take msg out of queue (deleted, expired or moved to the DLQ)."""
    _set_state(queue, msg, None)
    msg._sqslab_owner = None
    queue._messages.pop(msg.id, None)
    for handle in msg._old_receipt_handles + [msg.receipt_handle]:
        if handle is None:
            continue
        queue._handles.pop(handle, None)
        if remember_handles and handle not in queue.deleted_messages:
            queue.deleted_messages.add(handle)
            queue._deleted_order.append(handle)
    while len(queue._deleted_order) > DELETED_HANDLES_KEPT:
        queue.deleted_messages.discard(queue._deleted_order.popleft())


def _promote(queue: Any, now: float) -> None:
    """Apply the clock: delays and visibility timeouts that ended, retention that ran out."""
    woke = False
    for state in (DELAYED, INFLIGHT):
        items = queue._heaps[state].items
        while items and items[0][0] <= now:
            entry = heapq.heappop(items)
            if _live(entry, queue):
                _set_state(queue, entry[3], READY)
                woke = True
    retention_ms = int(queue.message_retention_period) * 1000.0
    aging = queue._aging.items
    while aging and aging[0][0] + retention_ms <= now:
        msg = heapq.heappop(aging)[3]
        if msg._sqslab_owner is queue:
            _drop(queue, msg, remember_handles=False)
    if woke:
        queue._cond.notify_all()


def _next_deadline(queue: Any) -> float | None:
    tops = [h.items[0][0] for h in (queue._heaps[DELAYED], queue._heaps[INFLIGHT]) if h.items]
    return min(tops) if tops else None


def _run_lambda_mappings(queue: Any, m: Any) -> None:
    """Stock moto's Lambda event-source trigger from Queue.add_message, unchanged."""
    backend = m.sqs_backends[queue.account_id][queue.region]
    for arn, esm in queue.lambda_event_source_mappings.items():
        if not esm.enabled:
            continue
        messages = backend.receive_message(
            queue.name, esm.batch_size, queue.receive_message_wait_time_seconds, queue.visibility_timeout
        )
        from moto.awslambda.utils import get_backend

        if get_backend(queue.account_id, queue.region).send_sqs_batch(arn, messages, queue.queue_arn):
            for msg in messages:
                backend.delete_message(queue.name, msg.receipt_handle)
        else:
            for msg in messages:
                backend.change_message_visibility(queue.name, msg.receipt_handle, visibility_timeout=0)


def _shallow_copy(msg: Any) -> Any:
    # Not copy.copy: BaseModel.__new__ would record every copy in a class-level list.
    clone = object.__new__(type(msg))
    clone.__dict__.update(msg.__dict__)
    return clone


# --------------------------------------------------------------------------- the patches


def apply() -> None:
    """Patch moto.sqs.models in place (idempotent). Call before the server handles a request."""
    global _applied
    if _applied:
        return
    from moto.sqs import models as m
    from moto.sqs import responses as r  # noqa: F401  (imported so the patched names are the ones it sees)
    from moto.core import utils as core_utils

    _orig["unix_time"] = m.unix_time
    _orig["unix_time_millis"] = m.unix_time_millis
    m.unix_time = _unix_time
    m.unix_time_millis = _unix_time_millis
    m.generate_receipt_handle = generate_receipt_handle
    # Queue.attributes maps 14+ names through a regex on every call.
    m.camelcase_to_underscores = functools.lru_cache(maxsize=512)(core_utils.camelcase_to_underscores)

    _patch_message(m)
    _patch_queue(m)
    _patch_backend(m)
    _patch_dispatcher()
    _applied = True


def _patch_dispatcher() -> None:
    """moto's server maps each request to a backend under a global lock, and on the way
    lists moto's package directory (one listdir and ~170 stats per request). Memoize it."""
    import moto.backends as backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: iter(modules)
    orig = DomainDispatcherApplication.get_backend_for_host
    memo: dict[str | None, Any] = {}

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        try:
            return memo[host]
        except KeyError:
            backend = orig(self, host)
            if len(memo) < 1024:
                memo[host] = backend
            return backend

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host


def _patch_message(m: Any) -> None:
    Message = m.Message
    orig_init = Message.__init__

    def __new__(cls: type, *args: Any, **kwargs: Any) -> Any:
        # BaseModel.__new__ keeps every instance forever (for moto's dashboard): a leak here.
        return object.__new__(cls)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        orig_init(self, *args, **kwargs)
        self._sqslab_owner = None
        self._sqslab_state = None
        self._sqslab_gen = 0
        self._sqslab_seq = 0

    def mark_sent(self: Any, delay_seconds: int | None = None) -> None:
        self.sent_timestamp = int(now_ms())
        if delay_seconds:
            self.delay(delay_seconds=delay_seconds)

    def mark_received(self: Any, visibility_timeout: int | None = None) -> None:
        now = now_ms()
        if not self.approximate_first_receive_timestamp:
            self.approximate_first_receive_timestamp = int(now)
        self.approximate_receive_count += 1
        if visibility_timeout:
            self.visible_at = now + int(visibility_timeout) * 1000
        if self.receipt_handle is not None:
            self._old_receipt_handles.append(self.receipt_handle)
        self.receipt_handle = generate_receipt_handle()

    def change_visibility(self: Any, visibility_timeout: int) -> None:
        self.visible_at = now_ms() + int(visibility_timeout) * 1000

    def delay(self: Any, delay_seconds: int) -> None:
        self.delayed_until = now_ms() + int(delay_seconds) * 1000

    def had_receipt_handle(self: Any, receipt_handle: str) -> bool:
        return receipt_handle == self.receipt_handle or receipt_handle in self._old_receipt_handles

    Message.__new__ = staticmethod(__new__)
    Message.__init__ = __init__
    Message.mark_sent = mark_sent
    Message.mark_received = mark_received
    Message.change_visibility = change_visibility
    Message.delay = delay
    Message.visible = property(lambda self: now_ms() > self.visible_at)
    Message.delayed = property(lambda self: now_ms() < self.delayed_until)
    Message.had_receipt_handle = had_receipt_handle


def _patch_queue(m: Any) -> None:
    Queue = m.Queue
    orig_init = Queue.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        _init_state(self)
        orig_init(self, *args, **kwargs)
        _init_state(self)  # the original replaced _messages and deleted_messages

    def _counted(state: str) -> property:
        def get(self: Any) -> int:
            with LOCK:
                _promote(self, now_ms())
                return self._counts[state]

        return property(get)

    def messages(self: Any) -> list[Any]:
        with LOCK:
            _promote(self, now_ms())
            return sorted(
                (m for m in self._messages.values() if m._sqslab_state == READY),
                key=lambda m: m._sqslab_seq,
            )

    def pending_messages(self: Any) -> set[Any]:
        return {m for m in self._messages.values() if m._sqslab_state == INFLIGHT}

    def pending_message_groups(self: Any) -> set[str]:
        return set(self._inflight_groups)

    def add_message(self: Any, message: Any) -> None:
        with LOCK:
            now = now_ms()
            _promote(self, now)
            if self.fifo_queue and (self.content_based_deduplication or message.deduplication_id):
                order = self._dedup_order
                while order and order[0][0] + DEDUPLICATION_WINDOW_MS <= now:
                    sent, dedup_id = order.popleft()
                    if self._dedup.get(dedup_id) == sent:
                        del self._dedup[dedup_id]
                if message.deduplication_id in self._dedup:
                    return
                self._dedup[message.deduplication_id] = message.sent_timestamp
                order.append((message.sent_timestamp, message.deduplication_id))
            _adopt(self, message, now)
            if self.lambda_event_source_mappings:
                _run_lambda_mappings(self, m)

    def delete_message(self: Any, receipt_handle: str) -> None:
        with LOCK:
            if receipt_handle in self.deleted_messages:
                return  # deleting twice succeeds, as on SQS
            msg = self._handles.get(receipt_handle)
            if msg is None or msg._sqslab_owner is not self:
                raise m.ReceiptHandleIsInvalid()
            _drop(self, msg, remember_handles=True)

    def wait_for_messages(self: Any, timeout: float) -> None:
        with LOCK:
            if not self._counts[READY]:
                self._cond.wait(timeout)

    Queue.__init__ = __init__
    Queue.approximate_number_of_messages = _counted(READY)
    Queue.approximate_number_of_messages_not_visible = _counted(INFLIGHT)
    Queue.approximate_number_of_messages_delayed = _counted(DELAYED)
    Queue.messages = property(messages)
    Queue.pending_messages = property(pending_messages)
    Queue.pending_message_groups = property(pending_message_groups)
    Queue.add_message = add_message
    Queue.delete_message = delete_message
    Queue.wait_for_messages = wait_for_messages


def _patch_backend(m: Any) -> None:
    SQSBackend = m.SQSBackend

    def _validate_message(
        self: Any,
        queue: Any,
        message_body: str,
        delay_seconds: int,
        deduplication_id: str | None = None,
        group_id: str | None = None,
        validate_group_id: bool = True,
    ) -> None:
        # Stock logic, reading content_based_deduplication instead of rebuilding queue.attributes.
        if queue.fifo_queue:
            if not queue.content_based_deduplication and not group_id:
                raise m.MissingParameter("MessageGroupId")
            if not queue.content_based_deduplication and group_id and not deduplication_id:
                raise m.InvalidParameterValue(
                    "The queue should either have ContentBasedDeduplication enabled or "
                    "MessageDeduplicationId provided explicitly"
                )
            if delay_seconds > 0:
                raise m.InvalidParameterValue(
                    f"Value {delay_seconds} for parameter DelaySeconds is invalid. Reason: "
                    "The request include parameter that is not valid for this queue type."
                )
        if len(message_body) > queue.maximum_message_size:
            raise m.InvalidParameterValue(
                "One or more parameters are invalid. Reason: Message must be shorter than "
                f"{queue.maximum_message_size} bytes."
            )
        if group_id is None and queue.fifo_queue:
            raise m.MissingParameter("MessageGroupId")

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
        if delay_seconds > m.MAXIMUM_MESSAGE_DELAY:
            raise m.InvalidParameterValue(
                f"Value {delay_seconds} for parameter DelaySeconds is invalid. "
                "Reason: DelaySeconds must be >= 0 and <= 900."
            )
        message = m.Message(str(m.random.uuid4()), message_body, system_attributes)
        if queue.content_based_deduplication:
            message.deduplication_id = hashlib.sha256(message_body.encode("utf-8")).hexdigest()
        if deduplication_id is not None:
            message.deduplication_id = deduplication_id
            message.sequence_number = "".join(m.random.choice(string.digits) for _ in range(20))
        if group_id is not None:
            message.group_id = group_id
        if message_attributes:
            message.message_attributes = message_attributes
        message.mark_sent(delay_seconds=delay_seconds)
        queue.add_message(message)
        return message

    def receive_message(
        self: Any,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> list[Any]:
        queue = self.get_queue(queue_name)
        deadline = time.monotonic() + (wait_seconds_timeout or 0)
        while True:
            now = now_ms()
            _promote(queue, now)
            result = _take(queue, count, visibility_timeout, message_attribute_names or [], now)
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

    def _take(queue: Any, count: int, visibility_timeout: int, attribute_names: list[str], now: float) -> list[Any]:
        ready = queue._heaps[READY].items
        fifo = queue.fifo_queue
        blocked = set(queue._inflight_groups) if fifo else ()
        dlq = queue.dead_letter_queue
        max_receives = queue.redrive_policy["maxReceiveCount"] if dlq is not None and queue.redrive_policy else None
        result: list[Any] = []
        skipped: list[tuple[float, int, int, Any]] = []
        back_to_ready: list[Any] = []
        while ready and len(result) < count:
            entry = heapq.heappop(ready)
            if not _live(entry, queue):
                continue
            msg = entry[3]
            if fifo and msg.group_id in blocked:
                skipped.append(entry)
                continue
            if max_receives is not None and msg.approximate_receive_count >= max_receives:
                # The receive after maxReceiveCount receives moves the message instead.
                _drop(queue, msg, remember_handles=False)
                _adopt(dlq, msg, now)
                continue
            msg.mark_received(visibility_timeout=visibility_timeout)
            queue._handles[msg.receipt_handle] = msg
            if visibility_timeout:
                _set_state(queue, msg, INFLIGHT, msg.visible_at)
            else:
                back_to_ready.append(msg)  # visible at once; pushed back after this batch
            clone = _shallow_copy(msg)
            m._filter_message_attributes(clone, attribute_names)
            result.append(clone)
        for entry in skipped:
            heapq.heappush(ready, entry)
        for msg in back_to_ready:
            queue._heaps[READY].push(msg._sqslab_seq, msg)
        return result

    def delete_message(self: Any, queue_name: str, receipt_handle: str) -> None:
        self.get_queue(queue_name).delete_message(receipt_handle)

    def change_message_visibility(self: Any, queue_name: str, receipt_handle: str, visibility_timeout: int) -> None:
        queue = self.get_queue(queue_name)
        msg = queue._handles.get(receipt_handle)
        if msg is None or msg._sqslab_owner is not queue:
            raise m.ReceiptHandleIsInvalid
        now = now_ms()
        visible_at = now + int(visibility_timeout) * 1000
        if visible_at - msg.sent_timestamp > 43200 * 1000:
            raise m.InvalidParameterValue(
                f"Value {visibility_timeout} for parameter VisibilityTimeout is invalid. Reason: Total "
                "VisibilityTimeout for the message is beyond the limit [43200 seconds]"
            )
        msg.visible_at = visible_at
        if int(visibility_timeout) > 0:
            _set_state(queue, msg, INFLIGHT, visible_at)
        elif msg._sqslab_state != READY:
            _set_state(queue, msg, READY)
            queue._cond.notify_all()

    def purge_queue(self: Any, queue_name: str) -> None:
        queue = self.get_queue(queue_name)
        for msg in list(queue._messages.values()):
            _drop(queue, msg, remember_handles=False)
        _init_state_keep_cond(queue)

    def _init_state_keep_cond(queue: Any) -> None:
        cond, deleted, order = queue._cond, queue.deleted_messages, queue._deleted_order
        _init_state(queue)
        queue._cond, queue.deleted_messages, queue._deleted_order = cond, deleted, order

    def delete_queue(self: Any, queue_name: str) -> None:
        queue = self.get_queue(queue_name)
        del self.queues[queue_name]
        queue._cond.notify_all()  # long-polls on it return empty

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        queue = self.get_queue(queue_name)
        return message.sent_timestamp + int(queue.message_retention_period) * 1000 > now_ms()

    def get_queue_attributes(self: Any, queue_name: str, attribute_names: list[str]) -> dict[str, Any]:
        queue = self.get_queue(queue_name)
        if not attribute_names:
            return {}
        valid = {"All", *queue.BASE_ATTRIBUTES, *queue.FIFO_ATTRIBUTES, *queue.KMS_ATTRIBUTES}
        invalid = next((n for n in attribute_names if n not in valid), None)
        if invalid or invalid == "":
            raise m.InvalidAttributeName(invalid)
        attributes = queue.attributes  # once, not three times per name
        if "All" in attribute_names:
            return attributes
        return {n: attributes[n] for n in attribute_names if attributes.get(n) is not None}

    overrides: dict[str, Callable[..., Any]] = {
        "_validate_message": _validate_message,
        "send_message": send_message,
        "receive_message": receive_message,
        "delete_message": delete_message,
        "change_message_visibility": change_message_visibility,
        "purge_queue": purge_queue,
        "delete_queue": delete_queue,
        "is_message_valid_based_on_retention_period": is_message_valid_based_on_retention_period,
        "get_queue_attributes": get_queue_attributes,
    }
    for name, func in overrides.items():
        setattr(SQSBackend, name, func)
    # Every backend call, stock or replaced, runs under the one lock.
    for name, func in list(vars(SQSBackend).items()):
        if inspect.isfunction(func) and not name.startswith("__"):
            setattr(SQSBackend, name, _locked(func))


def _locked(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with LOCK:
            return func(*args, **kwargs)

    return wrapper
