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

This module is the entry point: ``apply()`` runs the moto version guard, then each
patch module's ``install()``. It re-exports the guard's names, ``LOCK`` and
``now_ms``, which callers and tests import from here. The code lives in:

* ``guard.py`` -- the pinned moto version, ``PATCHED``/``READ``, ``check()``,
  ``guard()``, ``PatchError``, and ``_replace()``, the only way a patch assigns a moto
  attribute (it refuses a pair not declared in ``PATCHED``);
* ``state.py`` -- the lock, the clock and the per-queue message state machine;
* ``sqs_models.py``, ``sqs_message.py``, ``sqs_queue.py``, ``sqs_backend.py`` -- the
  replacements for moto.sqs.models' functions and its ``Message``, ``Queue`` and
  ``SQSBackend`` members, each a module-level function listed in a table;
* ``sqs_responses.py`` -- moto.sqs.responses' ``SQSResponse``: strict request parsing,
  SQS's documented validation and an SQS-shaped answer to whatever still fails;
* ``serializer.py`` -- ``SQSResponse.serialized``: JSON answers from a serializer
  compiled per operation;
* ``dispatcher.py`` -- the memoized request dispatch of moto's server.

A new replacement is a function in the module of the class it patches, one entry in
that module's table and its pair in ``guard.PATCHED``; a new group of replacements is
a module with an ``install()`` added to ``_patch_moto()``.
"""

from __future__ import annotations

from sqslab.emulator import dispatcher, serializer, sqs_backend, sqs_message, sqs_models, sqs_queue, sqs_responses
from sqslab.emulator.guard import (
    ALLOW_VERSION_ENV,
    FIX_HINT,
    GUARDED,
    MOTO_VERSION,
    PATCHED,
    READ,
    PatchError,
    _replace,
    check,
    guard,
    installed_moto_version,
)
from sqslab.emulator.state import LOCK, now_ms

__all__ = [
    "ALLOW_VERSION_ENV",
    "FIX_HINT",
    "GUARDED",
    "LOCK",
    "MOTO_VERSION",
    "PATCHED",
    "READ",
    "PatchError",
    "_replace",
    "apply",
    "check",
    "guard",
    "installed_moto_version",
    "now_ms",
]

_applied = False


def apply() -> None:
    """Patch moto.sqs.models in place (idempotent). Call before the server handles a request.

    Raises PatchError, before patching anything, if guard() finds the installed moto
    is not the one the patches are written for.
    """
    global _applied
    if _applied:
        return
    guard()
    _patch_moto()
    _applied = True


def _patch_moto() -> None:
    """The patches themselves, once guard() has passed. Each install() keeps the stock
    members it still calls before replacing them, so this runs once (apply() sees to it)."""
    from moto.sqs import models
    from moto.sqs import responses as _responses  # noqa: F401  (imported so the patched names are the ones it sees)

    sqs_models.install(models)
    sqs_message.install(models)
    sqs_queue.install(models)
    sqs_backend.install(models)
    sqs_responses.install(models)
    serializer.install()
    dispatcher.install()
