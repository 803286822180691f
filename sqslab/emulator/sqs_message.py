"""The replacements for moto's SQS ``Message`` members.

Stock ``Message`` computes every timestamp from a datetime clock and registers each
instance in a class-level list (for moto's dashboard) that is never emptied. Here
the timestamps come from ``now_ms()`` and messages are plain objects. ``__init__``
also gives each message the ``_sqslab_*`` attributes the queue state machine
(state.py) keeps: owning queue, state, generation and send order.

Each function is a ``Message`` method (``self`` is the message); ``METHODS`` maps
member names to what replaces them, and ``install()`` puts them on the class. A new
replacement is a function here, an entry in ``METHODS`` and its pair in
``guard.PATCHED``.
"""

from __future__ import annotations

import types
from typing import Any

from sqslab.emulator.guard import _replace_all
from sqslab.emulator.journal import receipt_handle
from sqslab.emulator.state import now_ms

#: moto's own Message.__init__, which the replacement runs first (bound by install()).
_stock_init: Any = None


def new(cls: type, *args: Any, **kwargs: Any) -> Any:
    """Message.__new__: a plain object. BaseModel.__new__ keeps every instance forever
    (for moto's dashboard): a leak in an emulator that runs millions of messages."""
    return object.__new__(cls)


def init(self: Any, *args: Any, **kwargs: Any) -> None:
    """Message.__init__: moto's, plus the state machine's attributes (not in a queue yet)."""
    _stock_init(self, *args, **kwargs)
    self._sqslab_owner = None
    self._sqslab_state = None
    self._sqslab_gen = 0
    self._sqslab_seq = 0


def mark_sent(self: Any, delay_seconds: int | None = None) -> None:
    """Stamp the send time and start the delay, on the patched clock."""
    self.sent_timestamp = int(now_ms())
    if delay_seconds:
        self.delay(delay_seconds=delay_seconds)


def mark_received(self: Any, visibility_timeout: int | None = None) -> None:
    """Count a receive, start the visibility timeout and issue a new receipt handle;
    the old handles stay valid for ChangeMessageVisibility and delete, as on SQS."""
    now = now_ms()
    if not self.approximate_first_receive_timestamp:
        self.approximate_first_receive_timestamp = int(now)
    self.approximate_receive_count += 1
    if visibility_timeout:
        self.visible_at = now + int(visibility_timeout) * 1000
    if self.receipt_handle is not None:
        self._old_receipt_handles.append(self.receipt_handle)
    self.receipt_handle = receipt_handle(self.id, self.approximate_receive_count)


def change_visibility(self: Any, visibility_timeout: int) -> None:
    """Make the message visible visibility_timeout seconds from now."""
    self.visible_at = now_ms() + int(visibility_timeout) * 1000


def delay(self: Any, delay_seconds: int) -> None:
    """Delay the message delay_seconds seconds from now."""
    self.delayed_until = now_ms() + int(delay_seconds) * 1000


def visible(self: Any) -> bool:
    """Message.visible (a property): the visibility timeout has ended."""
    return now_ms() > self.visible_at


def delayed(self: Any) -> bool:
    """Message.delayed (a property): the delay has not ended."""
    return now_ms() < self.delayed_until


def had_receipt_handle(self: Any, receipt_handle: str) -> bool:
    """Whether receipt_handle is the message's current handle or one it had before."""
    return receipt_handle == self.receipt_handle or receipt_handle in self._old_receipt_handles


#: Message member name -> its replacement, installed in this order.
METHODS: dict[str, Any] = {
    "__new__": staticmethod(new),
    "__init__": init,
    "mark_sent": mark_sent,
    "mark_received": mark_received,
    "change_visibility": change_visibility,
    "delay": delay,
    "visible": property(visible),
    "delayed": property(delayed),
    "had_receipt_handle": had_receipt_handle,
}


def install(models: types.ModuleType) -> None:
    """Replace moto.sqs.models.Message's members with METHODS (keeping its __init__ to call)."""
    global _stock_init
    _stock_init = models.Message.__init__
    _replace_all(models.Message, METHODS)
