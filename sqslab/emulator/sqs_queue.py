"""The replacements for moto's SQS ``Queue`` members.

Stock ``Queue`` keeps its messages in one list that every call scans and rewrites
without a lock, and recomputes full-queue counts on every attribute read. Here the
members read and change the per-queue state kept by state.py (heaps, counters,
receipt-handle dict) under ``LOCK``, so counts are O(1) and a delete is a lookup.

Each function is a ``Queue`` method or property getter (``self`` is the queue);
``METHODS`` maps member names to what replaces them, and ``install()`` puts them on
the class. A new replacement is a function here, an entry in ``METHODS`` and its
pair in ``guard.PATCHED``.
"""

from __future__ import annotations

import types
from typing import Any

from sqslab.contracts import sqslab_id
from sqslab.emulator.guard import _replace_all
from sqslab.emulator.journal import journal_handle
from sqslab.emulator.lab import current as current_lab
from sqslab.emulator.state import (
    DEDUPLICATION_WINDOW_MS,
    DELAYED,
    INFLIGHT,
    LOCK,
    READY,
    _adopt,
    _drop,
    _init_state,
    _promote,
    now_ms,
)

#: moto.sqs.models (bound by install(), so this module imports no moto code itself).
models: Any = None
#: moto's own Queue.__init__, which the replacement runs (bound by install()).
_stock_init: Any = None


def init(self: Any, *args: Any, **kwargs: Any) -> None:
    """Queue.__init__: moto's, with the state machine's state (state.py) around it."""
    _init_state(self)
    _stock_init(self, *args, **kwargs)
    _init_state(self)  # the original replaced _messages and deleted_messages


def _counted(state: str) -> property:
    """A property reading the number of messages in state, after applying the clock."""

    def get(self: Any) -> int:
        with LOCK:
            _promote(self, now_ms())
            return self._counts[state]

    return property(get)


def messages(self: Any) -> list[Any]:
    """Queue.messages (a property): the ready messages, oldest first."""
    with LOCK:
        _promote(self, now_ms())
        return sorted(
            (m for m in self._messages.values() if m._sqslab_state == READY),
            key=lambda m: m._sqslab_seq,
        )


def pending_messages(self: Any) -> set[Any]:
    """Queue.pending_messages (a property): the messages in flight."""
    return {m for m in self._messages.values() if m._sqslab_state == INFLIGHT}


def pending_message_groups(self: Any) -> set[str]:
    """Queue.pending_message_groups (a property): the FIFO groups with a message in flight."""
    return set(self._inflight_groups)


def add_message(self: Any, message: Any) -> None:
    """Take a sent message in, unless a FIFO queue saw its deduplication id in the window."""
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
            _run_lambda_mappings(self)


def delete_message(self: Any, receipt_handle: str) -> None:
    """Delete the message with receipt_handle (current or older); again is a no-op. On a
    FIFO queue only the latest handle works, and only while the message is in flight:
    otherwise InvalidParameterValue "The receipt handle has expired", as on SQS.

    The lab's behaviour: with stale_receipt `ignore`, a handle that is not the message's
    latest succeeds and deletes nothing (SQS: "the message might not be deleted"); on a
    standard queue, with probability `duplicates` the delete succeeds but one copy of
    the message survives it and is delivered again when its visibility timeout ends."""
    with LOCK:
        lab = current_lab()
        journal = journal_handle(lab, "delete", self.name, receipt_handle)
        if receipt_handle in self.deleted_messages:
            journal("again")
            return  # deleting twice succeeds, as on SQS
        msg = self._handles.get(receipt_handle)
        if msg is None or msg._sqslab_owner is not self:
            journal("invalid")
            raise models.ReceiptHandleIsInvalid()
        if self.fifo_queue:
            _promote(self, now_ms())
            if msg._sqslab_state != INFLIGHT or receipt_handle != msg.receipt_handle:
                journal("expired")  # FIFO: only the latest receive's handle, within its visibility timeout
                raise receipt_handle_expired(receipt_handle)
        if receipt_handle != msg.receipt_handle and lab.ignores_stale("DeleteMessage", self.name, msg.id):
            journal("stale_ignored")
            return
        if not self.fifo_queue and lab.chance(lab.behavior.duplicates):
            lab.behavior_event("duplicate", "DeleteMessage", queue=self.name, message_id=msg.id,
                               receive_count=msg.approximate_receive_count)
            journal("copy_kept", id=sqslab_id(msg.body, msg.message_attributes, lab.id_path))  # the caller's delete took, for it
            self._handles.pop(receipt_handle, None)
            self.deleted_messages.add(receipt_handle)
            self._deleted_order.append(receipt_handle)
            return
        if lab.journal.fd is not None:
            effect = "deleted" if receipt_handle == msg.receipt_handle else "stale_deleted"
            journal(effect, id=sqslab_id(msg.body, msg.message_attributes, lab.id_path))
        _drop(self, msg, remember_handles=True)


def receipt_handle_expired(receipt_handle: str) -> Exception:
    """SQS's answer to a FIFO delete with a handle whose visibility timeout ended (or that
    a later receive replaced): InvalidParameterValue; in a batch, the entry's failure
    ReceiptHandleIsInvalid (``batch_failure``)."""
    exc = models.InvalidParameterValue(
        f"Value {receipt_handle} for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired.")
    exc.batch_failure = ("ReceiptHandleIsInvalid", "The receipt handle has expired.")
    return exc


def wait_for_messages(self: Any, timeout: float) -> None:
    """Wait up to timeout seconds for a ready message (releases LOCK while waiting)."""
    with LOCK:
        if not self._counts[READY]:
            self._cond.wait(timeout)


def _run_lambda_mappings(queue: Any) -> None:
    """Stock moto's Lambda event-source trigger from Queue.add_message, unchanged."""
    backend = models.sqs_backends[queue.account_id][queue.region]
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


#: Queue member name -> its replacement, installed in this order.
METHODS: dict[str, Any] = {
    "__init__": init,
    "approximate_number_of_messages": _counted(READY),
    "approximate_number_of_messages_not_visible": _counted(INFLIGHT),
    "approximate_number_of_messages_delayed": _counted(DELAYED),
    "messages": property(messages),
    "pending_messages": property(pending_messages),
    "pending_message_groups": property(pending_message_groups),
    "add_message": add_message,
    "delete_message": delete_message,
    "wait_for_messages": wait_for_messages,
}


def install(moto_models: types.ModuleType) -> None:
    """Replace moto.sqs.models.Queue's members with METHODS (keeping its __init__ to call)."""
    global models, _stock_init
    models = moto_models
    _stock_init = moto_models.Queue.__init__
    _replace_all(moto_models.Queue, METHODS)
