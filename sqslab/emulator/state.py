"""What the patched SQS classes share: the lock, the clock and each queue's message states.

* ``LOCK``, one re-entrant lock held by every ``SQSBackend`` method and by the
  patched ``Queue`` members that read or change messages. A long-poll waits on its
  queue's condition, built on this lock, which releases it; a send or a visibility
  change wakes it, or a timer at the next visibility/delay deadline.
* ``now_ms()``, a monotonic clock anchored to the epoch, which replaces moto's
  datetime arithmetic in every comparison.
* The per-queue state machine: each live message is in exactly one state --
  ``DELAYED``, ``READY`` or ``INFLIGHT`` -- kept in a heap (delay deadline, send
  order, visibility deadline) with a counter per state, so receive, delete and
  GetQueueAttributes counts cost O(log n) or O(1). Receipt handles are a dict, so a
  delete or ChangeMessageVisibility is a lookup.

Nothing here imports or patches moto: the functions take moto ``Queue`` and
``Message`` objects and read or set the ``_sqslab_*`` and state attributes that the
patched ``__init__`` methods (sqs_message.py, sqs_queue.py) give them. The state
functions expect their caller to hold ``LOCK``.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import Counter, deque
from typing import Any

from sqslab.emulator.lab import current as current_lab

#: The one lock around the SQS backend. Re-entrant: backend methods call each other.
LOCK = threading.RLock()

_MONO0 = time.monotonic()
_EPOCH0_MS = time.time() * 1000.0

DELAYED, READY, INFLIGHT = "delayed", "ready", "inflight"
DEDUPLICATION_WINDOW_MS = 300_000
#: Receipt handles of deleted messages remembered so a repeated delete succeeds.
DELETED_HANDLES_KEPT = 200_000

#: Send order across all queues: the READY heap key, and the tie-breaker in the others.
_seq = itertools.count(1)


def now_ms() -> float:
    """Milliseconds since the epoch, but monotonic: the clock every patched call reads."""
    return _EPOCH0_MS + (time.monotonic() - _MONO0) * 1000.0


class _Heap:
    """A heap of (key, seq, gen, message) with lazy deletion. In a state heap an entry is
    live while its message is owned by the queue and has the generation it was pushed
    with; in the retention heap (``by_owner``) while the message is owned by the queue."""

    __slots__ = ("by_owner", "items")

    def __init__(self, by_owner: bool = False) -> None:
        self.items: list[tuple[float, int, int, Any]] = []
        self.by_owner = by_owner

    def push(self, key: float, msg: Any) -> None:
        """Add msg under key, stamped with its current send order and generation."""
        heapq.heappush(self.items, (key, msg._sqslab_seq, msg._sqslab_gen, msg))

    def compact(self, owner: Any, live: int) -> None:
        """Drop the dead entries once they outnumber the live ones (plus some slack)."""
        if len(self.items) > 2 * live + 256:
            self.prune(owner)

    def prune(self, owner: Any) -> None:
        """Drop the dead entries now."""
        if self.by_owner:
            self.items = [e for e in self.items if e[3]._sqslab_owner is owner]
        else:
            self.items = [e for e in self.items if _live(e, owner)]
        heapq.heapify(self.items)


def _live(entry: tuple[float, int, int, Any], owner: Any) -> bool:
    """Whether a state-heap entry still stands for its message's state in owner."""
    msg = entry[3]
    return msg._sqslab_owner is owner and msg._sqslab_gen == entry[2]


def _init_state(queue: Any) -> None:
    """Give queue empty state: no messages, handles, deletions or deduplication ids."""
    queue._messages = {}  # message id -> Message, live messages in send order
    queue._handles = {}  # every receipt handle of a live message -> Message
    queue.deleted_messages = set()
    queue._deleted_order = deque()
    queue._heaps = {DELAYED: _Heap(), READY: _Heap(), INFLIGHT: _Heap()}
    queue._aging = _Heap(by_owner=True)  # by sent time, for retention
    queue._counts = {DELAYED: 0, READY: 0, INFLIGHT: 0}
    queue._inflight_groups = Counter()
    queue._group_ready = {}  # FIFO: group id -> _Heap of its ready messages (send order)
    queue._group_entries = 0  # entries in those heaps, dead ones included
    queue._dedup = {}  # deduplication id -> sent ms (FIFO)
    queue._dedup_order = deque()
    queue._cond = threading.Condition(LOCK)


def _init_state_keep_cond(queue: Any) -> None:
    """_init_state(), keeping the condition (long-polls wait on it) and the handles of
    deleted messages (deleting them again still succeeds): PurgeQueue."""
    cond, deleted, order = queue._cond, queue.deleted_messages, queue._deleted_order
    _init_state(queue)
    queue._cond, queue.deleted_messages, queue._deleted_order = cond, deleted, order


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
    if state == READY and msg.group_id is not None and queue.fifo_queue:
        _push_group(queue, msg)


def _push_group(queue: Any, msg: Any) -> None:
    """Index a ready FIFO message by its group, so a receive can fill its batch from one
    group; the group heaps are compacted together once their dead entries pile up."""
    groups = queue._group_ready
    heap = groups.get(msg.group_id)
    if heap is None:
        heap = groups[msg.group_id] = _Heap()
    heap.push(msg._sqslab_seq, msg)
    queue._group_entries += 1
    if queue._group_entries > 2 * queue._counts[READY] + 256:
        for group, group_heap in list(groups.items()):
            group_heap.prune(queue)
            if not group_heap.items:
                del groups[group]
        queue._group_entries = sum(len(h.items) for h in groups.values())


def pop_group_ready(queue: Any, group_id: str) -> Any:
    """The next live ready entry of a FIFO group (send order), taken off its index, or None."""
    heap = queue._group_ready.get(group_id)
    while heap is not None and heap.items:
        entry = heapq.heappop(heap.items)
        queue._group_entries -= 1
        if _live(entry, queue) and entry[3]._sqslab_state == READY:
            return entry
    queue._group_ready.pop(group_id, None)
    return None


def _release_group(queue: Any, group_id: str) -> None:
    """One message of a FIFO group left flight: unblock the group when it was the last."""
    left = queue._inflight_groups[group_id] - 1
    if left > 0:
        queue._inflight_groups[group_id] = left
    else:
        del queue._inflight_groups[group_id]
        if group_id in queue._group_ready:
            queue._cond.notify_all()  # a long poll waiting on this group's next message gets it now


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
            current_lab().record("expired", q=queue.name, mid=msg.id)
    if woke:
        queue._cond.notify_all()


def _next_deadline(queue: Any) -> float | None:
    """The earliest delay or visibility deadline in queue (ms; may be a dead entry's), or None."""
    tops = [h.items[0][0] for h in (queue._heaps[DELAYED], queue._heaps[INFLIGHT]) if h.items]
    return min(tops) if tops else None


def snapshot(queue: Any, messages: bool, limit: int) -> dict[str, Any]:
    """The queue's exact state, as the lab reads it (never what the behaviour profile, the
    faults or a FIFO group lock make of it for a consumer): its counts and, with
    `messages`, up to `limit` live messages in send order, each with sqslab's id (`?` and
    the MessageId for a message not ours), its state, the epoch second its delay or
    visibility timeout ends, its receive count and FIFO group."""
    from sqslab.contracts import sqslab_id

    path = current_lab().id_path
    with LOCK:
        now = now_ms()
        _promote(queue, now)
        state: dict[str, Any] = {"visible": queue._counts[READY], "in_flight": queue._counts[INFLIGHT],
                                 "delayed": queue._counts[DELAYED]}
        if not messages:
            return state
        listed = []
        for msg in itertools.islice(queue._messages.values(), limit):
            kind = msg._sqslab_state
            until = msg.visible_at if kind == INFLIGHT else msg.delayed_until if kind == DELAYED else None
            listed.append({"id": sqslab_id(msg.body, msg.message_attributes, path) or f"?{msg.id}", "state": kind,
                           "until": round(until / 1000.0, 3) if until else None, "rc": msg.approximate_receive_count,
                           "group": msg.group_id})
        state["messages"] = listed
        state["truncated"] = len(queue._messages) > limit
        return state
